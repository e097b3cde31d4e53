"""Programmatic fits: the run command's machinery as functions (used by run, compare, ensembles).

``fit(strategy, env, ...)`` prepares a Problem and a solver, writes a run directory, runs the
solver with history and checkpoints, computes the uncertainty and returns the result dict
(also written to result.json). ``resume(dir)`` continues a run directory bit-identically.
"""

from __future__ import annotations

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
from .errors import ConfigError, QuantomError

STRATEGY_KEYS = {"name", "source", "description", "solver", "budget", "settings", "uq"}
UQ_KEYS = {"sim_factor", "max_steps", "polish"}


class Interrupted(QuantomError):
    """The run stopped on a signal after writing its checkpoint; ``code`` is the exit status."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def strategies() -> list[str]:
    """Strategy presets and registered solvers (a solver without a preset needs --budget)."""
    names = set(config.available("strategies")) | set(solvers.available())
    names.discard("nevergrad")
    return sorted(names)


def strategy_preset(name: str) -> tuple[str, dict]:
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


def make_solver(solver_name: str, dim: int, seed: int, settings: dict) -> solvers.Solver:
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


def fit(
    strategy: str = "ga",
    env: str | dict = "proxy1d-detector",
    data: Any = None,
    budget: int | None = None,
    seed: int = 0,
    out: str | os.PathLike | None = None,
    evaluator: Any = "auto",
    quiet: bool = True,
    plots: bool = True,
    data_seed: int | None = None,
    workers: str = "single",
    device: str | None = None,
) -> dict[str, Any] | None:
    """Fit measured data with a strategy; write a run directory; return the result (None on MPI workers)."""
    from .build import build_problem
    from .rundir import RunDir, default_name

    solver_name, preset = strategy_preset(strategy)
    strategy = preset["name"]
    settings = dict(preset.get("settings", {}))
    if device is not None:
        if "device" not in inspect.signature(solvers.get(solver_name).__init__).parameters:
            raise ConfigError(
                f"--device: strategy '{strategy}' runs on the CPU only (the gan and RL strategies take it)"
            )
        settings["device"] = device
    uq_cfg = dict(preset.get("uq", {}))
    config.check_keys(uq_cfg, UQ_KEYS, f"[uq] of strategy '{strategy}'")
    budget = budget if budget is not None else preset.get("budget")
    if budget is None:
        raise ConfigError(f"strategy '{strategy}' sets no budget; pass --budget N")
    if isinstance(budget, bool) or not isinstance(budget, int) or budget <= 0:
        raise ConfigError(f"budget must be a positive integer; got {budget}")
    if seed < 0:
        raise ConfigError(f"--seed must be a non-negative integer; got {seed}")
    env_preset = config.load_preset("envs", env) if isinstance(env, str) else dict(env)
    problem = build_problem(env_preset, data=data, data_seed=data_seed)
    solver = make_solver(solver_name, problem.dim, seed, settings)
    solver, ev = _evaluator(evaluator, workers, solver, lambda s: make_solver(solver_name, problem.dim, s, settings))
    if not ev.is_root:
        ev.serve(problem)  # worker ranks serve evaluations until rank 0 is done
        return None
    out = out or str(Path("runs") / default_name(problem.name, strategy, seed))
    rd = RunDir.create(out)
    try:
        _write_new(rd, strategy, solver_name, problem.name, seed, budget, solver, settings, uq_cfg, env_preset, problem)
    except BaseException:
        shutil.rmtree(rd.path, ignore_errors=True)  # never leave half a run directory
        raise
    return _execute(rd, problem, solver, ev, budget, seed, strategy, problem.name, uq_cfg, None, quiet, plots)


def resume(
    path: str | os.PathLike, evaluator: Any = "auto", quiet: bool = True, plots: bool = True, workers: str = "single"
) -> dict | None:
    """Continue the run in ``path`` from its last checkpoint; the result is bit-identical to an uninterrupted run."""
    from .build import build_problem
    from .rundir import DATA, RESULT, RunDir

    rd = RunDir.open(path)
    cfg = rd.read_config()
    ckpt = rd.load_checkpoint()
    if rd.has_result():
        import json

        return json.loads((rd.path / RESULT).read_text())
    run_cfg = cfg["run"]
    solver_name, settings, uq_cfg = run_cfg["solver"], cfg.get("settings", {}), cfg.get("uq", {})
    budget, seed = int(run_cfg["budget"]), int(run_cfg["seed"])
    problem = build_problem(cfg["env_preset"], data=str(rd.path / DATA))
    solver = make_solver(solver_name, problem.dim, seed, settings)
    solver, ev = _evaluator(evaluator, workers, solver, lambda s: make_solver(solver_name, problem.dim, s, settings))
    if not ev.is_root:
        ev.serve(problem)
        return None
    solver.load_state_dict(ckpt["solver_state"])
    return _execute(
        rd, problem, solver, ev, budget, seed, run_cfg["strategy"], run_cfg["env"], uq_cfg, ckpt, quiet, plots
    )


def _evaluator(evaluator: Any, workers: str, solver: Any, factory: Any) -> tuple[Any, Any]:
    """(solver, evaluator): the named evaluator, or with ``workers="async"`` one RL learner per MPI
    rank (population-based training; worker ranks learn inside ``serve``)."""
    if workers == "async":
        from .solvers.pbt import pbt_setup

        return pbt_setup(factory, solver, solver.seed)  # factory(seed) -> a learner
    from .evaluate import make_evaluator

    return solver, (make_evaluator(evaluator) if isinstance(evaluator, str) else evaluator)


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


def _execute(rd, problem, solver, evaluator, budget, seed, strategy, env_name, uq_cfg, ckpt, quiet, plots) -> dict:  # noqa: PLR0913
    from .rundir import HISTORY, History

    names = list(problem.space.names)
    extra_cols = sorted(solver.history_extra().keys()) if hasattr(solver, "history_extra") else []
    columns = ["generation", "evaluations", "seed", "best_score", "median_score", "mean_score", "wall_time_s"]
    columns += [f"z_{n}" for n in names] + extra_cols
    if ckpt is not None and (rd.path / HISTORY).is_file():
        # A resumed run keeps the header it started with (a solver's extras may appear only later).
        with open(rd.path / HISTORY) as f:
            columns = f.readline().strip().split(",")
    keep = None if ckpt is None else int(ckpt["history_rows"])
    history = History(rd.path / HISTORY, columns, keep_rows=keep)
    elapsed0 = 0.0 if ckpt is None else float(ckpt["wall_time_s"])
    t0 = time.perf_counter()
    stop = {"signal": None}

    def on_signal(signum, frame):  # noqa: ARG001 - signal handler signature
        stop["signal"] = signum

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    bar = _Progress(budget, solver.evaluations, quiet)
    rows = {"n": keep or 0}
    from .evaluate import EvaluationLog

    evlog = EvaluationLog(rd.path / EvaluationLog.FILE, None if ckpt is None else ckpt.get("evaluation_rows"))

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
        evlog.append(info)  # which rank scored what (MPI / asynchronous runs only)
        rd.save_checkpoint(
            {"solver_state": sv.state_dict(), "history_rows": rows["n"], "wall_time_s": row["wall_time_s"],
             "evaluation_rows": evlog.rows}
        )  # fmt: skip
        bar.update(info.evaluations, row["best_score"])
        return stop["signal"] is not None

    try:
        res = solver.run(problem, budget, evaluator, callback)
    finally:
        bar.close()
        history.close()
        evlog.close()
        for s, h in old.items():
            signal.signal(s, h)
    if stop["signal"] is not None:
        evaluator.close()
        name = signal.Signals(stop["signal"]).name
        raise Interrupted(
            f"{name}: checkpoint written after {solver.evaluations} evaluations; "
            f"continue with: python -m quantom_gf.run --resume {rd.path}",
            128 + int(stop["signal"]),
        )
    result = _finish(rd, problem, res, evaluator, seed, strategy, env_name, uq_cfg, elapsed0 + time.perf_counter() - t0)
    evaluator.close()
    if plots:
        from .report import plot_run
        from .rundir import read_history

        plot_run(rd.path, problem, result, read_history(rd.path / HISTORY))
    result["run_dir"] = str(rd.path)
    return result


def _finish(rd, problem, res, evaluator, seed, strategy, env_name, uq_cfg, wall) -> dict[str, Any]:
    from . import convergence, uq
    from . import rng as rngmod
    from .report import closure
    from .rundir import HISTORY, read_history

    space = problem.space
    polish = bool(uq_cfg.get("polish", True))
    kw = {k: uq_cfg[k] for k in ("sim_factor", "max_steps") if k in uq_cfg}
    t0 = time.perf_counter()
    curv = uq.curvature(problem, res.z, seed, **kw)
    median_scores = read_history(rd.path / HISTORY).get("median_score")
    z_est = curv.minimum if (curv.ok and polish) else res.z
    est = space.to_physical(z_est)
    solver_est = space.to_physical(res.z)
    unc = np.sqrt(np.diag(curv.cov)) * space.width if curv.ok else np.full(space.dim, np.nan)
    cov_phys = curv.cov * np.outer(space.width, space.width) if curv.ok else None
    truth = space.truth
    pull = None if truth is None else (est - truth) / unc
    solver_pull = None if truth is None else (solver_est - truth) / unc
    ok, verdict = closure(pull, "closure (final estimate)")
    solver_ok, solver_verdict = closure(solver_pull, "closure (solver's own answer, before the refinement)")
    objective = float(problem.evaluate(z_est[None], rngmod.generation_seed(seed, 10**6 + 1))[0])
    conv = convergence.report(
        curv.distance if curv.ok else None,
        space.dim,
        curv.score_min if curv.ok else None,
        curv.ndf if curv.ok else None,
        median_scores,
    )
    result = {
        "parameter_names": list(space.names),
        "estimate": est,
        "uncertainty": unc,
        "truth": truth,
        "pull": pull,
        "closure": ok,
        "verdict": verdict,
        "solver_closure": solver_ok,
        "solver_verdict": solver_verdict,
        "objective": objective,
        "evaluations": int(res.evaluations),
        "uq_evaluations": int(curv.evaluations),
        "wall_time_s": wall + time.perf_counter() - t0,
        "converged": conv["converged"],
        "convergence": conv,
        "strategy": strategy,
        "env": env_name,
        "seed": seed,
        "solver_estimate": solver_est,
        "solver_pull": solver_pull,
        "solver_message": res.message,
        "solver_converged": bool(res.converged),
        "estimate_method": (
            "solver answer refined by Newton steps on the reweighted likelihood"
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
