"""Ensembles (optimizer spread) and Monte Carlo data replicas (statistical spread).

- Ensemble: K independent fits (different seeds, hence different starting points and random
  numbers) of the same data. Their spread measures how reproducible the optimizer is.
- Replicas: the measured data fluctuated R times (Poisson bootstrap of the events, Gaussian
  fluctuation of the totals), each refitted from the central answer by Newton steps on the
  reweighted likelihood. Their spread is the data's statistical uncertainty, the way PDF
  fitters (NNPDF's replicas) quote it; it should agree with the curvature uncertainty.

Both give parameter means, standard deviations, correlations, and bands for u(x), d(x) and the
cross sections.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from . import rng as rngmod
from .data import EventSet
from .problem import Problem

X_BAND = np.linspace(0.1, 0.9, 81)


def summarize(params: np.ndarray, problem: Problem, x: np.ndarray = X_BAND) -> dict[str, Any]:
    """Mean, std, correlation of parameter sets (K, d) and 68% bands of the PDFs and cross sections."""
    params = np.asarray(params, dtype=np.float64)
    mean, std = params.mean(axis=0), params.std(axis=0, ddof=1) if len(params) > 1 else np.zeros(params.shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(params.T) if len(params) > 2 else None
    theory = problem.experiment.theory
    bands: dict[str, Any] = {"x": x}
    curves = dict(theory.pdfs(params, x))
    if hasattr(theory, "x") and theory.densities(params[:1]).ndim == 3:
        dens = theory.densities(params)
        grid_x = theory.x
        for o, name in enumerate(theory.observables):
            curves[f"sigma_{name}"] = np.stack([np.interp(x, grid_x, dd) for dd in dens[:, o]])
    for key, vals in curves.items():
        lo, mid, hi = np.percentile(vals, [16, 50, 84], axis=0)
        bands[key] = {"low": lo, "median": mid, "high": hi, "mean": vals.mean(axis=0)}
    return {"n": len(params), "mean": mean, "std": std, "correlation": corr, "bands": bands}


def poisson_replica(data: EventSet, seed: int, k: int) -> EventSet:
    """Data replica k: each event kept Poisson(1) times; totals fluctuated by their errors."""
    g = rngmod.stream(seed, rngmod.UQ + 1, k)
    mult = g.poisson(1.0, data.n_events)
    events = np.repeat(data.events, mult, axis=0)
    tot = data.xsec_total + data.xsec_total_err * g.standard_normal(data.xsec_total.shape)
    n_gen = None if data.n_generated is None else int(g.poisson(data.n_generated))
    n_gen = None if n_gen is None else max(n_gen, events.shape[0])
    meta = {**data.meta, "replica": k, "replica_seed": seed}
    return EventSet(events, tot, data.xsec_total_err.copy(), data.truth, n_gen, meta)


def replicas(problem: Problem, z_center: np.ndarray, n: int, seed: int, sim_factor: int = 4) -> dict[str, Any]:
    """Fit ``n`` data replicas from ``z_center`` (unit cube); their parameter spread and bands."""
    from .uq import curvature

    fits, failed = [], 0
    inner = getattr(problem.objective, "inner", None)
    for k in range(n):
        rep = poisson_replica(problem.data, seed, k)
        obj = copy.copy(problem.objective)
        # Same binning as the central fit: a replica changes the data, not the analysis.
        obj = obj.fit(rep, inner) if inner is not None else obj.fit(rep)
        pb = Problem(problem.space, problem.experiment, obj, rep, name=problem.name, config=problem.config)
        c = curvature(pb, z_center, rngmod.generation_seed(seed, 3 * 10**6 + k), sim_factor=sim_factor)
        if c.ok:
            fits.append(problem.space.to_physical(c.minimum))
        else:
            failed += 1
    if not fits:
        return {"n": 0, "failed": failed}
    out = summarize(np.array(fits), problem)
    out["failed"] = failed
    out["params"] = np.array(fits)
    return out


def run_ensemble(k: int, out: str, seed: int = 0, **fit_kw: Any) -> dict[str, Any] | None:
    """K independent fits (seeds seed..seed+K-1) into out/member-NN; the combined answer in out/ensemble.json."""
    import json
    from pathlib import Path

    from .build import build_problem
    from .errors import ConfigError
    from .fit import fit
    from .rundir import DATA, _atomic_write, _plain

    if k < 2:
        raise ConfigError(f"--ensemble needs at least 2 members; got {k}")
    root = Path(out)
    if root.exists() and any(root.iterdir()):
        raise ConfigError(f"ensemble directory {root} already exists and is not empty")
    results = []
    for i in range(k):
        res = fit(seed=seed + i, out=str(root / f"member-{i:02d}"), **fit_kw)
        if res is None:  # an MPI worker rank: it served every member's evaluations
            continue
        results.append(res)
    if not results:
        return None
    problem = build_problem(_first_env(root), data=str(root / "member-00" / DATA))
    est = np.array([r["estimate"] for r in results])
    unc = np.array([r["uncertainty"] for r in results], dtype=np.float64)
    summ = summarize(est, problem)
    stat = np.nanmean(unc, axis=0)
    truth = problem.space.truth
    combined = {
        "members": k,
        "seeds": [seed + i for i in range(k)],
        "parameter_names": list(problem.space.names),
        "estimate": summ["mean"],
        "ensemble_std": summ["std"],
        "uncertainty": stat,
        "uncertainty_note": "uncertainty: mean curvature (statistical) uncertainty of the members; "
        "ensemble_std: spread of the members (optimizer)",
        "correlation": summ["correlation"],
        "truth": truth,
        "pull": None if truth is None else (summ["mean"] - truth) / stat,
        "closure_members": [r["closure"] for r in results],
        "converged_members": [r["converged"] for r in results],
        "bands": summ["bands"],
        "strategy": results[0]["strategy"],
        "env": results[0]["env"],
        "evaluations": int(sum(r["evaluations"] for r in results)),
        "wall_time_s": float(sum(r["wall_time_s"] for r in results)),
    }
    _atomic_write(root / "ensemble.json", (json.dumps(_plain(combined), indent=2) + "\n").encode())
    return combined


def _first_env(root) -> dict:
    import tomllib

    with open(root / "member-00" / "config.toml", "rb") as f:
        return tomllib.load(f)["env_preset"]
