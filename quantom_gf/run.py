"""python -m quantom_gf.run --strategy NAME [--env NAME] [--data FILE] [--budget N] [--seed S] ...

The main job: fit an env's measured data with a strategy, write a run directory, print the
parameter table and the closure verdict. See ``--help`` for the strategies and envs there are.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from . import config, convergence
from .cli import guarded
from .errors import ConfigError
from .fit import strategies


def _parser() -> argparse.ArgumentParser:
    epilog = (
        f"strategies: {', '.join(strategies())} (and nevergrad:<Optimizer> if nevergrad is installed)\n"
        f"envs: {', '.join(config.available('envs'))}\n"
        "Presets are TOML files in strategies/ and envs/; a path to your own file works too."
    )
    ap = argparse.ArgumentParser(
        prog="python -m quantom_gf.run",
        description="Fit measured events with a gradient-free strategy and write a run directory.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--strategy", default="ga", help="strategy preset name or path (default: ga)")
    ap.add_argument("--env", default="proxy1d-detector", help="env preset name or path (default: proxy1d-detector)")
    ap.add_argument("--data", default=None, help="measured data .npz (default: generated at the env's truth)")
    ap.add_argument("--budget", type=int, default=None, help="evaluations (default: the strategy preset's)")
    ap.add_argument("--seed", type=int, default=0, help="solver seed (default 0)")
    ap.add_argument("--out", default=None, help="run directory (default: runs/<env>-<strategy>-s<seed>-<time>)")
    ap.add_argument("--resume", default=None, metavar="DIR", help="continue the run in DIR")
    ap.add_argument("--evaluator", default="auto", help="serial, mpi, mpi-async, or auto (mpi under mpiexec, >1 rank)")
    ap.add_argument("--workers", default="single", choices=("single", "async"),
                    help="async: one RL learner per MPI rank, population-based training (default: single)")  # fmt: skip
    ap.add_argument("--ensemble", type=int, default=None, metavar="K", help="K independent fits (seeds S..S+K-1)")
    ap.add_argument("--replicas", type=int, default=0, metavar="R", help="refit R Monte Carlo replicas of the data")
    ap.add_argument("--device", default=None, help="torch device of the gan and RL strategies: cpu, cuda or auto")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    ap.add_argument("--no-plots", action="store_true", help="skip the figures")
    return ap


def print_result(result: dict) -> None:
    """The run's summary: header, parameter table, uncertainty method, convergence, closure verdict."""
    from .report import table

    def arr(k):
        return None if result.get(k) is None else np.asarray(result[k], dtype=np.float64)

    print(f"{result['strategy']} on {result['env']} (seed {result['seed']}): {result['evaluations']} evaluations "
          f"+ {result['uq_evaluations']} for the uncertainty, {result['wall_time_s']:.1f} s")  # fmt: skip
    print(table(result["parameter_names"], arr("estimate"), arr("uncertainty"), arr("truth"), arr("pull")))
    print(f"uncertainty: {result['uncertainty_method']}")
    print(convergence.describe(result["convergence"]))
    rep = result.get("replicas")
    if rep and rep.get("n"):
        stds = ", ".join(f"{n} {s:.3g}" for n, s in zip(result["parameter_names"], rep["std"]))
        print(f"data replicas ({rep['n']} refits, statistical spread): {stds}")
    print(result["verdict"])
    if result.get("solver_verdict") and result.get("truth") is not None:
        print(result["solver_verdict"])
    if result.get("run_dir"):
        print(f"run directory: {result['run_dir']}")


@guarded
def main(argv: list[str] | None = None) -> int:
    """Entry point of python -m quantom_gf.run."""
    from .fit import Interrupted, fit, resume

    args = _parser().parse_args(argv)
    kw = {"evaluator": args.evaluator, "quiet": args.quiet, "plots": not args.no_plots, "workers": args.workers}
    if args.replicas < 0:
        raise ConfigError(f"--replicas must be >= 0; got {args.replicas}")
    try:
        if args.ensemble is not None:
            return _ensemble(args, kw)
        if args.resume is not None:
            result = resume(args.resume, **kw)
        else:
            result = fit(args.strategy, args.env, args.data, args.budget, args.seed, args.out, device=args.device, **kw)
    except Interrupted as exc:
        print(exc, file=sys.stderr)
        return exc.code
    if result is None:  # an MPI worker rank
        return 0
    if args.replicas:
        _replicas(result, args.replicas, args.seed)
    print_result(result)
    return 0


def _ensemble(args: argparse.Namespace, kw: dict) -> int:
    from .ensemble import run_ensemble
    from .fit import strategy_preset
    from .rundir import default_name

    if args.resume is not None:
        raise ConfigError("--ensemble cannot be combined with --resume; resume each member-NN directory instead")
    name = strategy_preset(args.strategy)[1]["name"]
    env = args.env if isinstance(args.env, str) else "env"
    out = args.out or f"runs/{default_name(env.replace('/', '_'), name, args.seed)}-ens{args.ensemble}"
    res = run_ensemble(args.ensemble, out, args.seed, strategy=args.strategy, env=args.env, data=args.data,
                       device=args.device,
                       budget=args.budget, **kw)  # fmt: skip
    if res is None:
        return 0
    from .report import closure, table

    arr = lambda k: None if res.get(k) is None else np.asarray(res[k], dtype=np.float64)  # noqa: E731
    print(f"ensemble of {res['members']} {res['strategy']} fits on {res['env']}: {res['evaluations']} evaluations")
    print(table(res["parameter_names"], arr("estimate"), arr("uncertainty"), arr("truth"), arr("pull")))
    print(
        "ensemble spread (optimizer): "
        + ", ".join(f"{n} {s:.3g}" for n, s in zip(res["parameter_names"], res["ensemble_std"]))
    )
    print(f"members converged: {sum(res['converged_members'])}/{res['members']}; "
          f"members with closure: {sum(bool(c) for c in res['closure_members'])}/{res['members']}")  # fmt: skip
    print(closure(arr("pull"))[1])
    print(f"ensemble directory: {out}")
    return 0


def _replicas(result: dict, n: int, seed: int) -> None:
    """Refit n data replicas around the result and add their spread to result.json."""
    from .build import build_problem
    from .ensemble import replicas
    from .rundir import DATA, RunDir

    rd = RunDir.open(result["run_dir"])
    problem = build_problem(rd.read_config()["env_preset"], data=str(rd.path / DATA))
    rep = replicas(problem, problem.space.to_unit(np.asarray(result["estimate"])), n, seed)
    result["replicas"] = {"n": rep["n"], "failed": rep["failed"]}
    if rep["n"]:
        result["replicas"].update({"mean": rep["mean"], "std": rep["std"], "bands": rep["bands"]})
    out = {k: v for k, v in result.items() if k != "run_dir"}
    rd.write_result(out)


if __name__ == "__main__":
    sys.exit(main())
