"""Convergence without truth: is the answer at the likelihood's minimum, does the model fit the
data, has the objective stopped improving, has the ensemble spread settled?

Each criterion reads only what a real-data fit has (no truth), so the same report serves closure
tests and measurements.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

P_VALUE_MIN = 0.01  # goodness of fit: below this the model does not describe the data
LEVEL = 0.95  # the answer must sit inside this region of the refined minimum


def at_minimum_threshold(d: int, level: float = LEVEL) -> float:
    """Mahalanobis distance (sigma units) inside which an answer counts as at the minimum."""
    return float(np.sqrt(stats.chi2.ppf(level, d)))


def plateau(median_scores: np.ndarray, window: int = 10, z: float = 2.0, tol: float = 1.0) -> tuple[bool | None, float]:
    """Has the generation median stopped falling? Compares the last two windows of generations.

    Scores carry fresh simulation noise each generation, so the test is statistical: the drop
    between the windows' means must be within ``z`` standard errors, or below ``tol`` (for a
    likelihood one unit of -2 log L: what is left to gain is below one sigma). Returns
    (flag, drop); flag is None when the history is too short to say.
    """
    s = np.asarray(median_scores, dtype=np.float64)
    s = s[np.isfinite(s)]
    if s.size < 2 * window:
        return None, float("nan")
    a, b = s[-2 * window : -window], s[-window:]
    drop = float(a.mean() - b.mean())
    se = float(np.sqrt(a.var(ddof=1) / window + b.var(ddof=1) / window)) + 1e-12
    return bool(drop < max(z * se, tol)), drop


def report(
    distance_sigma: float | None,
    d: int,
    deviance: float | None,
    ndf: int | None,
    median_scores: np.ndarray | None = None,
) -> dict:
    """The convergence block of result.json: each criterion, and the verdict (all that apply hold)."""
    thr = at_minimum_threshold(d)
    at_min = None if distance_sigma is None else bool(distance_sigma < thr)
    p = None if deviance is None or ndf is None else float(stats.chi2.sf(deviance, max(ndf, 1)))
    fit_ok = None if p is None else bool(p > P_VALUE_MIN)
    flat, drop = plateau(median_scores) if median_scores is not None else (None, float("nan"))
    verdict = bool(at_min) and fit_ok is not False and flat is not False
    return {
        "converged": verdict,
        "at_minimum": at_min,
        "distance_sigma": distance_sigma,
        "threshold_sigma": thr,
        "gof_p_value": p,
        "gof_deviance": deviance,
        "gof_ndf": ndf,
        "fit_acceptable": fit_ok,
        "plateau": flat,
        "plateau_drop": None if not np.isfinite(drop) else drop,
    }


def describe(block: dict) -> str:
    """One line for the printout."""
    word = "converged" if block["converged"] else "NOT converged"
    parts = []
    if block["distance_sigma"] is not None:
        parts.append(
            f"answer {block['distance_sigma']:.2f} sigma from the minimum (limit {block['threshold_sigma']:.2f})"
        )
    else:
        parts.append("no minimum found near the answer")
    if block["gof_p_value"] is not None:
        parts.append(f"fit p-value {block['gof_p_value']:.3f} ({block['gof_deviance']:.1f} / {block['gof_ndf']} ndf)")
    if block["plateau"] is not None:
        parts.append("objective on a plateau" if block["plateau"] else "objective still falling")
    return f"convergence: {word} - " + "; ".join(parts)
