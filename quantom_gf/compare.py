"""python -m quantom_gf.compare: solvers side by side on one closure test, and a coverage check.

    python -m quantom_gf.compare --strategies ga sa cmaes ppo --seeds 5 [--env ...] [--budget ...]
    python -m quantom_gf.compare --coverage 20 [--strategies cmaes]

Every strategy fits the same measured data; the run directory holds one run per (strategy,
seed), a table (Markdown and CSV) and figures. Closure is judged per run by its own reported
uncertainty; "to closure" counts the evaluations until the solver's running answer first lay
within 2 sigma of the truth in every parameter (sigma: that run's final uncertainty).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from .cli import guarded
from .errors import ConfigError


def _one(kw: dict) -> dict:
    """One fit in a worker process; an error comes back as a message instead of killing the comparison."""
    from .errors import QuantomError
    from .fit import fit

    try:
        res = fit(quiet=True, evaluator="serial", **kw)
        return {k: v for k, v in res.items() if k not in ("covariance", "correlation", "versions")}
    except (QuantomError, ValueError, RuntimeError, ImportError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}", "strategy": kw["strategy"], "seed": kw["seed"]}


def to_closure(run_dir: str, result: dict, width: np.ndarray, lower: np.ndarray) -> tuple[float, float]:
    """Evaluations and wall time until the running answer first lay within 2 sigma of the truth."""
    from .rundir import read_history

    if result.get("truth") is None or not np.all(np.isfinite(result["uncertainty"])):
        return np.nan, np.nan
    h = read_history(Path(run_dir) / "history.csv")
    cols = [f"z_{n}" for n in result["parameter_names"]]
    if not h or any(c not in h for c in cols):
        return np.nan, np.nan
    z = np.stack([h[c] for c in cols], axis=1)
    p = lower + z * width
    inside = np.all(np.abs(p - np.asarray(result["truth"])) < 2 * np.asarray(result["uncertainty"]), axis=1)
    if not inside.any():
        return np.nan, np.nan
    i = int(np.argmax(inside))
    return float(h["evaluations"][i]), float(h["wall_time_s"][i])


def _fmt_spread(vals: list[float], fmt: str = "{:.3g}") -> str:
    v = np.asarray([x for x in vals if x is not None and np.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return "n/a"
    return f"{fmt.format(np.median(v))} [{fmt.format(v.min())}, {fmt.format(v.max())}]"


def summarize(rows: list[dict]) -> list[dict]:
    """Per strategy: median [min, max] over seeds of the headline numbers, closures passed."""
    out = []
    for strat in dict.fromkeys(r["strategy"] for r in rows):
        rs = [r for r in rows if r["strategy"] == strat]
        ok = [r for r in rs if "error" not in r]
        out.append(
            {
                "strategy": strat,
                "runs": len(rs),
                "closure": f"{sum(bool(r.get('closure')) for r in ok)}/{len(rs)}",
                "solver_closure": f"{sum(bool(r.get('solver_closure')) for r in ok)}/{len(rs)}",
                "converged": f"{sum(bool(r.get('converged')) for r in ok)}/{len(rs)}",
                "evals_to_closure": _fmt_spread([r["evals_to_closure"] for r in ok], "{:.0f}"),
                "wall_to_closure_s": _fmt_spread([r["wall_to_closure_s"] for r in ok], "{:.1f}"),
                "evaluations": _fmt_spread([r["evaluations"] for r in ok], "{:.0f}"),
                "wall_time_s": _fmt_spread([r["wall_time_s"] for r in ok], "{:.1f}"),
                "objective": _fmt_spread([r["objective"] for r in ok], "{:.1f}"),
                "max_abs_pull": _fmt_spread([r["max_abs_pull"] for r in ok], "{:.2f}"),
                "solver_max_abs_pull": _fmt_spread([r["solver_max_abs_pull"] for r in ok], "{:.2f}"),
                "errors": "; ".join(sorted({r["error"] for r in rs if "error" in r})),
            }
        )
    return out


def markdown(summary: list[dict], title: str) -> str:
    """The comparison table as Markdown."""
    cols = ["strategy", "closure", "solver_closure", "converged", "evals_to_closure", "wall_to_closure_s",
            "evaluations", "wall_time_s", "objective", "max_abs_pull", "solver_max_abs_pull"]  # fmt: skip
    lines = [f"### {title}", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(s[c]) for c in cols) + " |" for s in summary]
    errs = [f"- {s['strategy']}: {s['errors']}" for s in summary if s["errors"]]
    notes = [
        "",
        "median [min, max] over seeds. closure: runs whose final estimate (the solver's answer refined by "
        "Newton steps on the reweighted likelihood) has every |pull| < 2 by the run's own uncertainty; "
        "solver_closure: the same for the solver's own answer. converged: the truth-free verdict. "
        "max_abs_pull: of the final (refined) estimate; solver_max_abs_pull: of the solver's own answer "
        "before the likelihood refinement. evals_to_closure: evaluations until the solver's running answer "
        "first lay within 2 sigma of the truth in every parameter.",
    ]
    return "\n".join(lines + notes + (["", "Errors:"] + errs if errs else [])) + "\n"


def _row(res: dict, width: np.ndarray, lower: np.ndarray) -> dict:
    if "error" in res:
        return res
    ev, wt = to_closure(res["run_dir"], res, width, lower)
    pull = np.asarray(res["pull"] if res["pull"] is not None else [np.nan], dtype=np.float64)
    spull = np.asarray(res["solver_pull"] if res["solver_pull"] is not None else [np.nan], dtype=np.float64)
    err = np.abs(np.asarray(res["estimate"]) - np.asarray(res["truth"])) if res["truth"] is not None else None
    keys = ("strategy", "seed", "evaluations", "wall_time_s", "objective", "closure", "solver_closure", "converged")
    row = {k: res.get(k) for k in keys}
    row.update({"evals_to_closure": ev, "wall_to_closure_s": wt, "max_abs_pull": float(np.max(np.abs(pull))),
                "solver_max_abs_pull": float(np.max(np.abs(spull))), "run_dir": res["run_dir"]})  # fmt: skip
    for i, n in enumerate(res["parameter_names"]):
        row[f"pull_{n}"] = float(pull[i]) if pull.size > i else np.nan
        row[f"abs_err_{n}"] = float(err[i]) if err is not None else np.nan
    return row


def _write_csv(path: Path, rows: list[dict]) -> None:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def _run_all(jobs_kw: list[dict], jobs: int) -> list[dict]:
    if jobs <= 1:
        return [_one(kw) for kw in jobs_kw]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(_one, jobs_kw))


def compare(strategies: list[str], seeds: int, env: str, budget: int | None, out: Path, jobs: int) -> list[dict]:
    """Run every (strategy, seed) on the same data; write table and figures; return the per-run rows."""
    from .build import build_problem

    problem = build_problem(env)
    data = out / "data.npz"
    problem.data.save(data)
    kws = [
        {
            "strategy": s,
            "env": env,
            "data": str(data),
            "budget": budget,
            "seed": k,
            "out": str(out / f"{s.replace(':', '-')}-s{k}"),
            "plots": False,
        }  # fmt: skip
        for s in strategies
        for k in range(seeds)
    ]
    results = _run_all(kws, jobs)
    rows = [_row(r, problem.space.width, problem.space.lower) for r in results]
    summary = summarize(rows)
    _write_csv(out / "runs.csv", rows)
    _write_csv(out / "summary.csv", summary)
    title = f"{env}: {', '.join(strategies)}; {seeds} seeds; budget {budget or 'preset default'}"
    (out / "compare.md").write_text(markdown(summary, title))
    _plots(out, problem, [r for r in results if "error" not in r])
    return rows


def _plots(out: Path, problem, results: list[dict]) -> None:
    from .ensemble import summarize as band_summary
    from .report import _plt
    from .rundir import read_history

    plt = _plt()
    if plt is None or not results:
        return
    strategies = list(dict.fromkeys(r["strategy"] for r in results))
    colors = {s: f"C{i}" for i, s in enumerate(strategies)}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in results:
        h = read_history(Path(r["run_dir"]) / "history.csv")
        if "evaluations" in h and "median_score" in h:
            ax.plot(h["evaluations"], h["median_score"], color=colors[r["strategy"]], alpha=0.6, lw=1,
                    label=r["strategy"] if r["seed"] == 0 else None)  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("evaluations")
    ax.set_ylabel("objective (generation median)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "objective.png", dpi=100)
    plt.close(fig)
    x = np.linspace(0.1, 0.9, 81)
    theory = problem.experiment.theory
    truth = problem.space.truth
    keys = list(theory.pdfs(problem.space.lower[None] + 0.5 * problem.space.width[None], x))
    fig, axes = plt.subplots(1, len(keys), figsize=(6 * len(keys), 4.5))
    for ax, key in zip(np.atleast_1d(axes), keys):
        for s in strategies:
            est = np.array([r["estimate"] for r in results if r["strategy"] == s])
            if len(est) >= 2:
                b = band_summary(est, problem, x)["bands"][key]
                ax.fill_between(x, x * b["low"], x * b["high"], color=colors[s], alpha=0.25)
                ax.plot(x, x * b["median"], color=colors[s], label=f"{s} (seed spread)")
            else:
                ax.plot(x, x * theory.pdfs(est, x)[key][0], color=colors[s], label=s)
        if truth is not None:
            ax.plot(x, x * theory.pdfs(truth[None], x)[key][0], "k--", label="truth")
        ax.set_xlabel("x")
        ax.set_ylabel(f"x {key}(x)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "pdfs.png", dpi=100)
    plt.close(fig)
    names = results[0]["parameter_names"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, s in enumerate(strategies):
        pulls = np.array([r["pull"] for r in results if r["strategy"] == s and r["pull"] is not None], dtype=float)
        if pulls.size:
            xs = np.arange(len(names)) + (i - len(strategies) / 2) * 0.1
            for j, p in enumerate(pulls):
                ax.plot(xs, p, "o", color=colors[s], alpha=0.7, label=s if j == 0 else None)
    ax.axhspan(-2, 2, color="0.9")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("pull")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "pulls.png", dpi=100)
    plt.close(fig)


def coverage(n: int, strategy: str, env: str, budget: int | None, out: Path, jobs: int, seed: int = 0) -> dict:
    """Fit data made at n truths drawn from the box's interior; report 68% coverage and pull statistics."""
    from . import rng as rngmod
    from .build import build_problem, make_measured

    problem = build_problem(env)
    g = rngmod.stream(seed, rngmod.UQ + 2)
    truths = problem.space.to_physical(g.uniform(0.2, 0.8, (n, problem.dim)))  # away from the edges
    kws = []
    for i, t in enumerate(truths):
        dcfg = {k: v for k, v in problem.config["data"].items() if k in ("n_events", "xsec_rel_err")}
        es = make_measured(problem.experiment, problem.space, t, seed=10_000 + i, **dcfg)
        path = out / f"data-{i:03d}.npz"
        es.save(path)
        kws.append({"strategy": strategy, "env": env, "data": str(path), "budget": budget, "seed": i,
                    "out": str(out / f"truth-{i:03d}"), "plots": False})  # fmt: skip
    results = _run_all(kws, jobs)
    ok = [r for r in results if "error" not in r and r.get("pull") is not None]
    pulls = np.array([r["pull"] for r in ok], dtype=np.float64)
    finite = pulls[np.isfinite(pulls)]
    summary = {
        "truths": n,
        "fits": len(ok),
        "strategy": strategy,
        "env": env,
        "coverage_68": float(np.mean(np.abs(finite) < 1.0)) if finite.size else None,
        "coverage_95": float(np.mean(np.abs(finite) < 2.0)) if finite.size else None,
        "pull_mean": float(finite.mean()) if finite.size else None,
        "pull_std": float(finite.std(ddof=1)) if finite.size > 1 else None,
        "pull_mean_per_parameter": pulls.mean(axis=0).tolist() if len(ok) else None,
        "pull_std_per_parameter": pulls.std(axis=0, ddof=1).tolist() if len(ok) > 1 else None,
        "converged": int(sum(bool(r["converged"]) for r in ok)),
        "errors": [r["error"] for r in results if "error" in r],
    }
    (out / "coverage.json").write_text(json.dumps(summary, indent=2) + "\n")
    from .report import _plt

    plt = _plt()
    if plt is not None and finite.size:
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.hist(finite, bins=np.linspace(-4, 4, 33), density=True, alpha=0.7, label=f"pulls ({finite.size})")
        t = np.linspace(-4, 4, 200)
        ax.plot(t, np.exp(-0.5 * t**2) / np.sqrt(2 * np.pi), "k--", label="N(0, 1)")
        ax.set_xlabel("pull")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "pulls.png", dpi=100)
        plt.close(fig)
    return summary


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m quantom_gf.compare", description=__doc__.split("\n\n")[0])
    ap.add_argument("--strategies", nargs="+", default=["ga", "sa", "cmaes"], help="strategy presets to compare")
    ap.add_argument("--seeds", type=int, default=5, help="seeds per strategy (default 5)")
    ap.add_argument("--env", default="proxy1d-detector", help="env preset (default proxy1d-detector)")
    ap.add_argument("--budget", type=int, default=None, help="evaluations per run (default: each preset's)")
    ap.add_argument("--coverage", type=int, default=None, metavar="N", help="coverage check over N truths")
    ap.add_argument("--jobs", type=int, default=2, help="runs in parallel (default 2)")
    ap.add_argument("--out", default=None, help="output directory (default runs/compare-<env>-<time>)")
    return ap


@guarded
def main(argv: list[str] | None = None) -> int:
    """Entry point of python -m quantom_gf.compare."""
    from . import config
    from .fit import strategy_preset

    args = _parser().parse_args(argv)
    if args.seeds < 1 or args.jobs < 1 or (args.coverage is not None and args.coverage < 2):
        raise ConfigError("--seeds and --jobs must be >= 1 and --coverage >= 2")
    if args.budget is not None and args.budget <= 0:
        raise ConfigError(f"budget must be a positive integer; got {args.budget}")
    for s in args.strategies:
        strategy_preset(s)  # unknown names fail here, before any work
    config.find_preset("envs", args.env)
    kind = "coverage" if args.coverage else "compare"
    out = Path(args.out or f"runs/{kind}-{Path(args.env).stem}-{time.strftime('%Y%m%d-%H%M%S')}")
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"output directory {out} already exists and is not empty")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if args.coverage:
        s = coverage(args.coverage, args.strategies[0], args.env, args.budget, out, args.jobs)
        print(json.dumps(s, indent=2))
    else:
        compare(args.strategies, args.seeds, args.env, args.budget, out, args.jobs)
        print((out / "compare.md").read_text())
    print(f"{kind} written to {out} in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
