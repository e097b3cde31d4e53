"""python -m quantom_gf.run --strategy NAME [--env NAME] [--data FILE] [--budget N] [--seed S] ...

The main job: fit an env's measured data with a strategy, write a run directory, print the
parameter table and the closure verdict. See ``--help`` for the strategies and envs there are.
"""

from __future__ import annotations

import argparse
import inspect
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__, config, solvers
from .cli import guarded
from .errors import ConfigError

STRATEGY_KEYS = {"name", "source", "description", "solver", "budget", "settings", "uq"}
UQ_KEYS = {"sim_factor", "max_steps", "polish"}


def _parser() -> argparse.ArgumentParser:
    epilog = (
        f"strategies: {', '.join(_strategies())} (and nevergrad:<Optimizer> if nevergrad is installed)\n"
        f"envs: {', '.join(config.available('envs'))}\n"
        "Presets are TOML files in strategies/ and envs/; a path to your own file works too."
    )
    ap = argparse.ArgumentParser(
        prog="python -m quantom_gf.run",
        description="Fit measured events with a gradient-free strategy and write a run directory.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--strategy", default="cmaes", help="strategy preset name or path (default: cmaes)")
    ap.add_argument("--env", default="proxy1d-detector", help="env preset name or path (default: proxy1d-detector)")
    ap.add_argument("--data", default=None, help="measured data .npz (default: generated at the env's truth)")
    ap.add_argument("--budget", type=int, default=None, help="evaluations (default: the strategy preset's)")
    ap.add_argument("--seed", type=int, default=0, help="solver seed (default 0)")
    ap.add_argument("--out", default=None, help="run directory (default: runs/<env>-<strategy>-s<seed>-<time>)")
    ap.add_argument("--resume", default=None, metavar="DIR", help="continue the run in DIR")
    ap.add_argument("--evaluator", default="auto", help="serial, mpi, or auto (mpi under mpiexec with >1 rank)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    ap.add_argument("--no-plots", action="store_true", help="skip the figures")
    return ap


def _strategies() -> list[str]:
    """Strategy presets and registered solvers (a solver without a preset needs --budget)."""
    names = set(config.available("strategies")) | set(solvers.available())
    names.discard("nevergrad")
    return sorted(names)


def _strategy(name: str) -> tuple[str, dict]:
    """Solver name and the strategy preset (nevergrad:<Opt> maps to the bridge)."""
    if name.startswith("nevergrad:"):
        preset = config.load_preset("strategies", "nevergrad") if "nevergrad" in config.available("strategies") else {}
        preset = {**preset, "name": name}
        preset.setdefault("settings", {})
        preset["settings"] = {**preset["settings"], "optimizer": name.split(":", 1)[1]}
        return "nevergrad", preset
    if name in solvers.available() and name not in config.available("strategies"):
        return name, {"name": name, "solver": name}
    preset = config.load_preset("strategies", name)
    config.check_keys(preset, STRATEGY_KEYS, f"strategy '{preset['name']}'")
    return str(preset.get("solver", preset["name"])), preset


def _make_solver(solver_name: str, dim: int, seed: int, settings: dict) -> solvers.Solver:
    cls = solvers.get(solver_name)
    params = inspect.signature(cls.__init__).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        config.check_keys(settings, set(params) - {"self", "dim", "seed"}, f"[settings] of strategy '{solver_name}'")
    try:
        return cls(dim, seed, **settings)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[settings] of strategy '{solver_name}': {exc}") from None


def _resolved_settings(solver: solvers.Solver, settings: dict) -> dict:
    params = inspect.signature(type(solver).__init__).parameters
    out = {k: p.default for k, p in params.items() if k not in ("self", "dim", "seed") and p.default is not p.empty}
    out.update(settings)
    return out


class _Progress:
    """A progress bar on a terminal (tqdm), silent in CI or when output is not a TTY."""

    def __init__(self, total: int, initial: int, quiet: bool) -> None:
        self.bar = None
        if not quiet and sys.stderr.isatty() and not os.environ.get("CI"):
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, initial=initial, unit="eval", dynamic_ncols=True, leave=False)
            except ImportError:
                pass

    def update(self, evaluations: int, best: float) -> None:
        if self.bar is not None:
            self.bar.n = evaluations
            self.bar.set_postfix(best=f"{best:.1f}", refresh=False)
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _run(args: argparse.Namespace) -> int:
    from .build import build_problem
    from .evaluate import make_evaluator
    from .rundir import DATA, RunDir, default_name

    resuming = args.resume is not None
    if resuming:
        rd = RunDir.open(args.resume)
        cfg = rd.read_config()
        ckpt = rd.load_checkpoint()
        if rd.has_result():
            print(f"{rd.path}: this run has finished; its answer is in {rd.path / 'result.json'}")
            return 0
        run_cfg = cfg["run"]
        solver_name, settings, uq_cfg = run_cfg["solver"], cfg.get("settings", {}), cfg.get("uq", {})
        budget, seed, strategy, env_name = (
            int(run_cfg["budget"]),
            int(run_cfg["seed"]),
            run_cfg["strategy"],
            run_cfg["env"],
        )
        problem = build_problem(cfg["env_preset"], data=str(rd.path / DATA))
    else:
        solver_name, preset = _strategy(args.strategy)
        strategy = preset["name"]
        settings = dict(preset.get("settings", {}))
        uq_cfg = dict(preset.get("uq", {}))
        config.check_keys(uq_cfg, UQ_KEYS, f"[uq] of strategy '{strategy}'")
        budget = args.budget if args.budget is not None else preset.get("budget")
        if budget is None:
            raise ConfigError(f"strategy '{strategy}' sets no budget; pass --budget N")
        if not isinstance(budget, int) or budget <= 0:
            raise ConfigError(f"budget must be a positive integer; got {budget}")
        if args.seed < 0:
            raise ConfigError(f"--seed must be a non-negative integer; got {args.seed}")
        seed = args.seed
        env_preset = config.load_preset("envs", args.env) if isinstance(args.env, str) else args.env
        problem = build_problem(env_preset, data=args.data)
        env_name = problem.name
        ckpt = None
    solver = _make_solver(solver_name, problem.dim, seed, settings)
    evaluator = make_evaluator(args.evaluator)
    if not evaluator.is_root:
        # Worker ranks serve evaluations until rank 0 is done.
        evaluator.serve(problem)
        return 0
    if resuming:
        solver.load_state_dict(ckpt["solver_state"])
    else:
        out = args.out or str(Path("runs") / default_name(env_name, strategy, seed))
        rd = RunDir.create(out)
        try:
            _write_new(rd, strategy, solver_name, env_name, seed, budget, solver, settings, uq_cfg, env_preset, problem)
        except BaseException:
            shutil.rmtree(rd.path, ignore_errors=True)  # never leave half a run directory
            raise
    return _fit(args, rd, problem, solver, evaluator, budget, seed, strategy, env_name, uq_cfg, ckpt)


def _write_new(
    rd, strategy, solver_name, env_name, seed, budget, solver, settings, uq_cfg, env_preset, problem
) -> None:
    from .rundir import DATA

    run = {"strategy": strategy, "solver": solver_name, "env": env_name, "seed": seed, "budget": budget}
    run.update({"quantom_gf": __version__, "command": " ".join(sys.argv)})
    rd.write_config(
        {
            "run": run,
            "settings": _resolved_settings(solver, settings),
            "uq": uq_cfg,
            "env_preset": {k: v for k, v in env_preset.items() if k != "source"},
            "env": problem.config,
        }
    )
    problem.data.save(rd.path / DATA)


def _fit(args, rd, problem, solver, evaluator, budget, seed, strategy, env_name, uq_cfg, ckpt) -> int:
    from .rundir import HISTORY, History

    names = list(problem.space.names)
    extra_cols = sorted(solver.history_extra().keys()) if hasattr(solver, "history_extra") else []
    columns = ["generation", "evaluations", "seed", "best_score", "median_score", "mean_score", "wall_time_s"]
    columns += [f"z_{n}" for n in names] + extra_cols
    keep = None if ckpt is None else int(ckpt["history_rows"])
    history = History(rd.path / HISTORY, columns, keep_rows=keep)
    elapsed0 = 0.0 if ckpt is None else float(ckpt["wall_time_s"])
    t0 = time.perf_counter()
    stop = {"signal": None}

    def on_signal(signum, frame):  # noqa: ARG001 - signal handler signature
        stop["signal"] = signum

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    bar = _Progress(budget, solver.evaluations, args.quiet)
    rows = {"n": keep or 0}

    def callback(sv, info) -> bool:
        sc = info.scores
        row = {"generation": info.generation, "evaluations": info.evaluations, "seed": info.seed,
               "best_score": float(sc.min()) if sc.size else np.nan,
               "median_score": float(np.median(sc)) if sc.size else np.nan,
               "mean_score": float(sc.mean()) if sc.size else np.nan,
               "wall_time_s": elapsed0 + time.perf_counter() - t0}  # fmt: skip
        row.update({f"z_{n}": float(v) for n, v in zip(names, info.recommendation)})
        row.update(info.extra)
        history.append(row)
        rows["n"] += 1
        rd.save_checkpoint(
            {"solver_state": sv.state_dict(), "history_rows": rows["n"], "wall_time_s": row["wall_time_s"]}
        )
        bar.update(info.evaluations, row["best_score"])
        return stop["signal"] is not None

    try:
        res = solver.run(problem, budget, evaluator, callback)
    finally:
        bar.close()
        history.close()
        for s, h in old.items():
            signal.signal(s, h)
    if stop["signal"] is not None:
        evaluator.close()
        name = signal.Signals(stop["signal"]).name
        print(f"{name}: checkpoint written after {solver.evaluations} evaluations; "
              f"continue with: python -m quantom_gf.run --resume {rd.path}", file=sys.stderr)  # fmt: skip
        return 128 + int(stop["signal"])
    result = _finish(rd, problem, res, evaluator, seed, strategy, env_name, uq_cfg, elapsed0 + time.perf_counter() - t0)
    evaluator.close()
    if not args.no_plots:
        from .report import plot_run
        from .rundir import read_history

        plot_run(rd.path, problem, result, read_history(rd.path / HISTORY))
    _print_result(result, rd.path)
    return 0


def _finish(rd, problem, res, evaluator, seed, strategy, env_name, uq_cfg, wall) -> dict[str, Any]:
    from . import rng as rngmod
    from . import uq
    from .report import closure

    space = problem.space
    polish = bool(uq_cfg.get("polish", True))
    kw = {k: uq_cfg[k] for k in ("sim_factor", "max_steps") if k in uq_cfg}
    t0 = time.perf_counter()
    curv = uq.curvature(problem, res.z, seed, **kw)
    z_est = curv.minimum if (curv.ok and polish) else res.z
    est = space.to_physical(z_est)
    solver_est = space.to_physical(res.z)
    unc = np.sqrt(np.diag(curv.cov)) * space.width if curv.ok else np.full(space.dim, np.nan)
    cov_phys = curv.cov * np.outer(space.width, space.width) if curv.ok else None
    truth = space.truth
    pull = None if truth is None else (est - truth) / unc
    solver_pull = None if truth is None else (solver_est - truth) / unc
    ok, verdict = closure(pull)
    objective = float(problem.evaluate(z_est[None], rngmod.generation_seed(seed, 10**6 + 1))[0])
    dof = getattr(problem.objective, "dof", None)
    gof = uq.goodness_of_fit(curv.score_min, dof - space.dim) if (curv.ok and problem.objective.is_likelihood) else None
    converged = bool(curv.ok and curv.distance < uq.converged_threshold(space.dim))
    result = {
        "parameter_names": list(space.names),
        "estimate": est,
        "uncertainty": unc,
        "truth": truth,
        "pull": pull,
        "closure": ok,
        "verdict": verdict,
        "objective": objective,
        "evaluations": int(res.evaluations),
        "uq_evaluations": int(curv.evaluations),
        "wall_time_s": wall + time.perf_counter() - t0,
        "converged": converged,
        "strategy": strategy,
        "env": env_name,
        "seed": seed,
        "solver_estimate": solver_est,
        "solver_pull": solver_pull,
        "solver_message": res.message,
        "solver_converged": bool(res.converged),
        "estimate_method": (
            "solver answer refined by one Newton step on the fitted score surface"
            if (curv.ok and polish)
            else "solver answer"
        ),  # fmt: skip
        "uncertainty_method": (
            "curvature (HESSE-like): covariance 2 H^-1 of the binned likelihood at its minimum, "
            f"on a reweighted synthetic sample {kw.get('sim_factor', 4)}x the data (its fluctuation included)"
            if curv.ok
            else f"unavailable: {curv.message}"
        ),
        "covariance": cov_phys,
        "correlation": None if cov_phys is None else cov_phys / np.outer(unc, unc),
        "distance_to_minimum_sigma": curv.distance if curv.ok else None,
        "goodness_of_fit": None
        if gof is None
        else {"deviance": curv.score_min, "ndf": dof - space.dim, "p_value": gof},
        "versions": _versions(),
    }
    rd.write_result(result)
    return result


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": sys.version.split()[0]}
    for pkg in ("quantom_gf", "numpy", "scipy", "numba", "deap", "cma", "gymnasium"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def _print_result(result: dict, path: Path) -> None:
    from .report import table

    def arr(k):
        return None if result.get(k) is None else np.asarray(result[k], dtype=np.float64)

    print(f"{result['strategy']} on {result['env']} (seed {result['seed']}): {result['evaluations']} evaluations "
          f"+ {result['uq_evaluations']} for the uncertainty, {result['wall_time_s']:.1f} s")  # fmt: skip
    print(table(result["parameter_names"], arr("estimate"), arr("uncertainty"), arr("truth"), arr("pull")))
    print(f"uncertainty: {result['uncertainty_method']}")
    gof = result.get("goodness_of_fit")
    conv = "converged" if result["converged"] else "NOT converged"
    dist = result["distance_to_minimum_sigma"]
    dist = float("nan") if dist is None else dist
    extra = f"; fit p-value {gof['p_value']:.3f} (deviance {gof['deviance']:.1f} / {gof['ndf']} ndf)" if gof else ""
    print(
        f"convergence: {conv} (answer {dist:.2f} sigma from the fitted minimum){extra}"
    )
    print(result["verdict"])
    print(f"run directory: {path}")


@guarded
def main(argv: list[str] | None = None) -> int:
    """Entry point of python -m quantom_gf.run."""
    args = _parser().parse_args(argv)
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
