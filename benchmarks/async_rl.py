"""Asynchronous RL workers (PBT over SB3 learners, --workers async) against one worker.

    python benchmarks/async_rl.py [--strategy ppo] [--budget 8000] [--ranks 2]

Runs the same strategy, env, data and seed once with one worker and once as ``--ranks``
asynchronous learners under mpiexec (the budget is per learner), and prints the wall time of
each, their ratio, and both closure verdicts (final estimate and the solver's own answer).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(cmd: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--strategy", default="ppo")
    ap.add_argument("--budget", type=int, default=8000)
    ap.add_argument("--ranks", type=int, default=2)
    args = ap.parse_args()
    mpiexec = str(Path(sys.executable).parent / "mpiexec")
    base = ["-m", "quantom_gf.run", "--strategy", args.strategy, "--budget", str(args.budget), "--no-plots"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t1 = run([sys.executable, *base, "--out", str(tmp / "one")], tmp)
        tn = run([mpiexec, "-n", str(args.ranks), sys.executable, *base, "--workers", "async",
                  "--out", str(tmp / "async")], tmp)  # fmt: skip
        res = {k: json.loads((tmp / k / "result.json").read_text()) for k in ("one", "async")}
    print(f"{args.strategy}, budget {args.budget} per learner, proxy1d-detector")
    print("| workers | wall (s) | closure (final) | closure (solver's own) | converged |")
    print("|---|---|---|---|---|")
    for name, wall in (("one", t1), (f"{args.ranks} async (PBT)", tn)):
        r = res["one" if name == "one" else "async"]
        print(f"| {name} | {wall:.1f} | {r['closure']} | {r['solver_closure']} | {r['converged']} |")
    print(f"wall ratio async/one: {tn / t1:.2f}")


if __name__ == "__main__":
    main()
