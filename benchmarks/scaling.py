"""MPI scaling of population evaluation, measured in one run, with a model for 100 and 1000 ranks.

    python benchmarks/scaling.py [--env proxy1d-detector] [--members 64] [--events 100000] [--gens 6]

Launches ``mpiexec -n 1`` and ``mpiexec -n 2`` (the mpiexec next to this Python) on this
script and prints:

- evaluations per second with 1 and 2 ranks (generational, collective ``--evaluator mpi``)
  and the parallel efficiency;
- the same with the last rank slowed 5x (it sleeps 4x its compute time per task):
  generational-collective, generational-farm (``mpi-async`` map: dynamic chunks, still one
  barrier per generation) and steady-state (one candidate per task, no barrier), each
  against the ideal throughput of ranks working at their own speeds;
- the communication cost per generation (header bcast + scatter of Z + gather of scores with
  a trivial evaluation) and the farm's cost per task (round trip of a one-member task);
- a model of efficiency at 100 and 1000 ranks from these figures (see ``model``).

Thread pools are pinned to one thread per rank. The machine may be shared: read ratios
measured in the same run, not absolute rates.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

SLOW = 5.0


class Trivial:
    """A Problem stand-in whose evaluation costs nothing: what is left is communication."""

    def evaluate(self, Z: np.ndarray, seed: int) -> np.ndarray:
        """Zeros."""
        return np.zeros(len(Z))


def _phase(comm, problem, mode: str, slow_rank: int | None, fn) -> dict | None:
    """Run ``fn(evaluator)`` on rank 0 while the other ranks serve ``problem``; rank 0's figures.

    ``fn`` returns its timed window (monotonic clock). From each rank's log of evaluations:
    ``busy``, the fraction of the window it spent evaluating (injected slow-down included), and
    ``ideal``, the throughput if every rank had worked the whole window at the speed it showed
    while evaluating (sum over ranks of members / evaluating time): the reference for
    "fraction of ideal", immune to how loaded the machine was during this phase.
    """
    from quantom_gf.evaluate.mpi import MPIEvaluator

    ev = MPIEvaluator(mode=mode, comm=comm)
    ev.runner.log = []
    if slow_rank is not None and comm.Get_rank() == slow_rank:
        ev.runner.slow = SLOW
    if ev.is_root:
        out = fn(ev)
        ev.close()
    else:
        ev.serve(problem)
        out = None
    window = comm.bcast(out.pop("window", None) if out else None, root=0)
    busy = members = 0.0
    if window is not None:
        a, b = window
        for t0, t1, m in ev.runner.log:
            overlap = max(0.0, min(t1, b) - max(t0, a))
            busy, members = busy + overlap, members + m * overlap / max(t1 - t0, 1e-12)
    stats = comm.gather((busy, members), root=0)
    if out is not None and window is not None:
        out["busy"] = [round(t / (window[1] - window[0]), 3) for t, _ in stats]
        out["ideal"] = float(sum(m / t for t, m in stats if t > 0))
    return out


def _generational(problem, P: int, d: int, gens: int):
    from quantom_gf.rng import generation_seed

    def fn(ev) -> dict:
        Z = np.random.default_rng(0).random((P, d))
        ev.map(problem, Z, generation_seed(0, 10**6))  # warm-up (JIT caches, pages)
        t0 = time.monotonic()
        for g in range(gens):
            ev.map(problem, Z, generation_seed(0, g))  # a fresh seed per generation, as in a run
        t1 = time.monotonic()
        share = np.bincount(ev.last_workers, minlength=ev.size).tolist()
        return {"rate": gens * P / (t1 - t0), "s_per_gen": (t1 - t0) / gens, "share": share, "window": (t0, t1)}

    return fn


def _steady(problem, P: int, d: int, n: int):
    from quantom_gf.rng import generation_seed

    def fn(ev) -> dict:
        rng = np.random.default_rng(1)
        ev.map(problem, rng.random((P, d)), generation_seed(0, 10**6))  # warm-up
        done, submitted, workers = 0, 0, []
        t0 = time.monotonic()
        while done < n:
            while ev.in_flight < ev.slots and submitted < n:
                # Seeds by cohort of P candidates, as ga-steady does.
                ev.submit(problem, rng.random((1, d)), generation_seed(0, submitted // P), key=submitted)
                submitted += 1
            _, _, w = ev.wait_one(problem)
            workers.append(w)
            done += 1
        t1 = time.monotonic()
        share = np.bincount(workers, minlength=ev.size).tolist()
        return {"rate": n / (t1 - t0), "share": share, "window": (t0, t1)}

    return fn


def _comm(P: int, d: int, reps: int):
    def fn(ev) -> dict:
        Z = np.random.default_rng(0).random((P, d))
        trivial = Trivial()
        for _ in range(10):
            ev.map(trivial, Z, 1)
        t0 = time.perf_counter()
        for _ in range(reps):
            ev.map(trivial, Z, 1)
        return {"s_per_gen": (time.perf_counter() - t0) / reps}

    return fn


def _farm_task(d: int, reps: int):
    def fn(ev) -> dict:
        trivial, z = Trivial(), np.zeros((1, d))
        # Only remote ranks: rank 0 would answer its own tasks without any message.
        ev._take = lambda worker, _t=ev._take: None if worker == 0 else _t(worker)
        t0 = time.perf_counter()
        for k in range(reps):
            ev.submit(trivial, z, 1, key=k)
            ev.wait_one(trivial)
        return {"s_per_task": (time.perf_counter() - t0) / reps}

    return fn


def _single_rank_costs(problem, P: int, d: int) -> dict:
    """Per-member compute, replicated per-seed noise cost and a GA generation's own time."""
    from quantom_gf.solvers.ga import GASolver

    Z = np.random.default_rng(2).random((P, d))
    problem.evaluate(Z[:1], 12345)
    best = {"fresh": np.inf, "cached": np.inf, "tell": np.inf}
    for i in range(5):
        t0 = time.perf_counter()
        problem.evaluate(Z[:1], 777 + i)  # draws the seed's random numbers
        t1 = time.perf_counter()
        problem.evaluate(Z[:P], 777 + i)  # same seed: the numbers are cached
        t2 = time.perf_counter()
        best["fresh"], best["cached"] = min(best["fresh"], t1 - t0), min(best["cached"], (t2 - t1) / P)
    ga = GASolver(d, 0, population=P)
    scores = np.random.default_rng(3).random(P)
    for _ in range(5):
        t0 = time.perf_counter()
        ga.tell(ga.ask(), scores)
        best["tell"] = min(best["tell"], time.perf_counter() - t0)
    return {"t_member": best["cached"], "t_noise": best["fresh"] - best["cached"], "t_solver": best["tell"]}


def inner(args: argparse.Namespace) -> None:
    """Under mpiexec: every phase on this communicator; rank 0 prints one JSON line."""
    from mpi4py import MPI

    from quantom_gf.build import build_problem

    comm = MPI.COMM_WORLD
    size = comm.Get_size()
    problem = build_problem(args.env, overrides={"simulation": {"n_events": args.events}})
    P, d, G = args.members, problem.dim, args.gens
    res: dict = {"ranks": size}
    res["gen"] = _phase(comm, problem, "collective", None, _generational(problem, P, d, G))
    if size > 1:
        last = size - 1
        res["gen_slow"] = _phase(comm, problem, "collective", last, _generational(problem, P, d, G))
        res["farm_slow"] = _phase(comm, problem, "farm", last, _generational(problem, P, d, G))
        res["steady_slow"] = _phase(comm, problem, "farm", last, _steady(problem, P, d, G * P))
        res["steady"] = _phase(comm, problem, "farm", None, _steady(problem, P, d, G * P))
        res["comm"] = _phase(comm, Trivial(), "collective", None, _comm(P, d, 300))
        res["farm_task"] = _phase(comm, Trivial(), "farm", None, _farm_task(d, 300))
    else:
        res["steady"] = _phase(comm, problem, "farm", None, _steady(problem, P, d, G * P))
        res["costs"] = _single_rank_costs(problem, P, d)
    if comm.Get_rank() == 0:
        print("RESULT " + json.dumps(res), flush=True)


def model(costs: dict, comm2: float, task_msg: float, P: int, n: int, per_rank: int | None = None) -> float:
    """Efficiency of the generational (collective) evaluator at ``n`` ranks (Amdahl with costs).

    One generation of a population of Pn: T(n) = Pn s + t_noise + ceil(Pn / n) t_member +
    t_comm(n), where s is rank 0's solver time per member (the GA's tell, serial), the random
    numbers of the generation's seed are drawn on every rank (replicated, t_noise), and the
    collectives are trees: t_comm(n) = t_comm(2) log2(n). Pn = P (strong scaling) or, with
    ``per_rank``, per_rank n (weak scaling). E = T(1) / (n T(n)) for the same Pn.
    """
    Pn = per_rank * n if per_rank else P
    serial = Pn * costs["t_solver"] / P + costs["t_noise"]
    t1 = serial + Pn * costs["t_member"]
    tn = serial + math.ceil(Pn / n) * costs["t_member"] + comm2 * math.log2(max(n, 2))
    return t1 / (n * tn)


def driver(args: argparse.Namespace) -> None:
    """Launch the MPI runs and print the figures and the model."""
    mpiexec = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
    if mpiexec is None:
        sys.exit("mpiexec not found (pip install mpich mpi4py, or load your MPI module)")
    out = {}
    for n in (1, 2):
        cmd = [mpiexec, "-n", str(n), sys.executable, str(Path(__file__).resolve()), "--inner"]
        cmd += ["--env", args.env, "--members", str(args.members), "--events", str(args.events)]
        cmd += ["--gens", str(args.gens)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not line:
            sys.exit(f"mpiexec -n {n} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        out[n] = json.loads(line[-1][7:])
    one, two = out[1], out[2]
    r1, r2 = one["gen"]["rate"], two["gen"]["rate"]
    P, E = args.members, args.events
    print(f"population {P} x {E} events, env {args.env}; evaluations per second (higher is better)")
    print(f"  generational, 1 rank : {r1:8.1f}/s")
    print(f"  generational, 2 ranks: {r2:8.1f}/s   speed-up {r2 / r1:.2f}, parallel efficiency {r2 / r1 / 2:.2f}; "
          f"of ideal {r2 / two['gen']['ideal']:.2f} (ranks busy {two['gen']['busy']})")  # fmt: skip
    s1, s2 = one["steady"]["rate"], two["steady"]["rate"]
    print(f"  steady-state, 1 rank : {s1:8.1f}/s   2 ranks: {s2:8.1f}/s   of ideal {s2 / two['steady']['ideal']:.2f} "
          f"(ranks busy {two['steady']['busy']})")  # fmt: skip
    print(f"last rank slowed {SLOW:.0f}x (sleeps {SLOW - 1:.0f}x its compute time per task); ideal = every rank "
          "busy all the time at its own measured speed")  # fmt: skip
    for key, label in (
        ("gen_slow", "generational, collective (--evaluator mpi)  "),
        ("farm_slow", "generational, farmed (--evaluator mpi-async)"),
        ("steady_slow", "steady-state, farmed (ga-steady)            "),
    ):
        r, ideal = two[key]["rate"], two[key]["ideal"]
        print(f"  {label}: {r:7.1f}/s of ideal {ideal:7.1f}/s = {r / ideal:.2f}; "
              f"members per rank {two[key]['share']}, ranks busy {two[key]['busy']}")  # fmt: skip
    costs = one["costs"]
    comm2, task = two["comm"]["s_per_gen"], two["farm_task"]["s_per_task"]
    print(f"communication per generation (bcast + scatter Z + gather scores, 2 ranks): {comm2 * 1e6:.0f} us")
    print(f"farm round trip per one-member task (2 ranks): {task * 1e6:.0f} us")
    print(f"per member {costs['t_member'] * 1e3:.2f} ms; noise draw per seed per rank "
          f"{costs['t_noise'] * 1e3:.1f} ms; GA tell {costs['t_solver'] * 1e3:.2f} ms")  # fmt: skip
    print("model (generational): T(n) = P s + t_noise + ceil(P/n) t_member + t_comm(2) log2 n, s = GA tell / P")
    for n in (2, 100, 1000):
        strong = model(costs, comm2, task, P, n)
        weak = model(costs, comm2, task, P, n, per_rank=P)
        print(f"  {n:5d} ranks: efficiency {strong:.3f} with P = {P}; {weak:.3f} with P = {P} per rank")
    cap = costs["t_member"] / task
    print(f"model (steady-state farm): rank 0 serves one task per {task * 1e6:.0f} us, a task takes "
          f"{costs['t_member'] * 1e3:.2f} ms: it saturates near {cap:.0f} workers with one-member tasks; "
          f"k-member tasks move that to ~{cap:.0f} k")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="proxy1d-detector")
    ap.add_argument("--members", type=int, default=64)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--gens", type=int, default=6)
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    (inner if args.inner else driver)(args)


if __name__ == "__main__":
    main()
