"""Tables and plots of a fit: the iminuit-style parameter table, closure verdict, figures."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

PULL_LIMIT = 2.0


def closure(pull: np.ndarray | None, what: str = "closure") -> tuple[bool | None, str]:
    """Verdict on a closure test: every |pull| below the limit."""
    if pull is None:
        return None, f"{what}: no truth known (real data), nothing to compare with"
    pull = np.asarray(pull, dtype=np.float64)
    if not np.all(np.isfinite(pull)):
        return False, f"{what}: NOT REACHED - no usable uncertainty, so no pull to judge by"
    worst = int(np.argmax(np.abs(pull)))
    ok = bool(np.all(np.abs(pull) < PULL_LIMIT))
    word = "PASSED" if ok else "NOT REACHED"
    return ok, f"{what}: {word} - max |pull| = {abs(pull[worst]):.2f} (parameter {worst}); limit {PULL_LIMIT:g}"


def table(names, estimate, uncertainty, truth=None, pull=None) -> str:
    """The parameter table: name, fit, uncertainty, truth, pull (iminuit style)."""
    head = f"| {'#':>2} | {'name':<8} | {'fit':>10} | {'uncertainty':>11} | {'truth':>10} | {'pull':>6} |"
    rule = "|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|"
    lines = [rule, head, rule]
    for i, n in enumerate(names):
        unc = "n/a" if uncertainty is None or not np.isfinite(uncertainty[i]) else f"{uncertainty[i]:.4g}"
        tr = "" if truth is None else f"{truth[i]:.5g}"
        pl = "" if pull is None or not np.isfinite(pull[i]) else f"{pull[i]:+.2f}"
        lines.append(f"| {i:>2} | {n:<8} | {estimate[i]:>10.5g} | {unc:>11} | {tr:>10} | {pl:>6} |")
    lines.append(rule)
    return "\n".join(lines)


def _plt():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        return plt
    except ImportError:
        return None


def plot_run(run_dir: str | os.PathLike, problem, result: dict, history: dict[str, np.ndarray]) -> list[str]:
    """pdfs.png (u, d with band vs truth), objective.png, traces.png; [] without matplotlib."""
    plt = _plt()
    if plt is None:
        return []
    out = Path(run_dir)
    names = result["parameter_names"]
    est = np.asarray(result["estimate"])
    truth = None if result.get("truth") is None else np.asarray(result["truth"])
    cov = None if result.get("covariance") is None else np.asarray(result["covariance"])
    written = []
    x = np.linspace(0.1, 0.9, 200)
    theory = problem.experiment.theory
    central = theory.pdfs(est[None], x)
    fig, axes = plt.subplots(1, len(central), figsize=(5 * len(central), 4))
    axes = np.atleast_1d(axes)
    band = None
    if cov is not None:
        rng = np.random.default_rng(0)  # a plot's band: fixed draw, not part of the result
        draws = rng.multivariate_normal(est, cov, size=300)
        band = theory.pdfs(draws, x)
    tr = None if truth is None else theory.pdfs(truth[None], x)
    for ax, key in zip(axes, central):
        ax.plot(x, x * central[key][0], label=f"fit x{key}(x)")
        if band is not None:
            lo, hi = np.percentile(x * band[key], [16, 84], axis=0)
            ax.fill_between(x, lo, hi, alpha=0.3, label="68% band")
        if tr is not None:
            ax.plot(x, x * tr[key][0], "k--", label="truth")
        ax.set_xlabel("x")
        ax.set_ylabel(f"x {key}(x)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "pdfs.png", dpi=100)
    plt.close(fig)
    written.append("pdfs.png")
    if "evaluations" in history and "best_score" in history:
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(history["evaluations"], history["best_score"], label="best in generation")
        ax.plot(history["evaluations"], history["median_score"], label="median in generation", alpha=0.6)
        ax.set_yscale("log")
        ax.set_xlabel("evaluations")
        ax.set_ylabel("objective")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "objective.png", dpi=100)
        plt.close(fig)
        written.append("objective.png")
        cols = [f"z_{n}" for n in names if f"z_{n}" in history]
        if cols:
            fig, axes = plt.subplots(len(cols), 1, figsize=(6, 1.6 * len(cols)), sharex=True)
            tu = problem.space.truth_unit
            for i, (ax, c) in enumerate(zip(np.atleast_1d(axes), cols)):
                ax.plot(history["evaluations"], history[c])
                if tu is not None:
                    ax.axhline(tu[i], color="k", ls="--")
                ax.set_ylabel(names[i])
            np.atleast_1d(axes)[-1].set_xlabel("evaluations")
            fig.tight_layout()
            fig.savefig(out / "traces.png", dpi=100)
            plt.close(fig)
            written.append("traces.png")
    return written
