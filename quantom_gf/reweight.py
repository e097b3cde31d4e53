"""A smooth local surrogate of the likelihood score: one synthetic sample, reweighted.

Events are drawn once at a centre theta0 and pushed through detector and selection; the score
at a nearby theta reweights each event by rho(x | theta) / rho(x | theta0) at its true x (the
sampler's grid density is known exactly). Event positions never move, so the score is a smooth
function of the parameters -- what curvature, Newton steps and quick refits need, and what
moving events across bin edges (common random numbers alone) cannot give.
"""

from __future__ import annotations

import numpy as np

from . import rng as rngmod
from .objectives import BinnedLikelihood, two_sample_deviance, xsec_chi2
from .problem import Experiment, Problem

CHUNK_ELEMENTS = 8_000_000  # (members x events) per chunk: ~64 MB of float64 weights


class Reweighter:
    """The binned likelihood near ``center`` (unit cube) from ``factor`` x n_events reweighted events."""

    def __init__(self, problem: Problem, center: np.ndarray, seed: int, factor: int = 4) -> None:
        e = problem.experiment
        self.problem, self.space, self.theory = problem, problem.space, e.theory
        obj = problem.objective
        if not isinstance(obj, BinnedLikelihood):
            obj = BinnedLikelihood().fit(problem.data)  # the statistical model behind the uncertainty
        self.objective = obj
        self.center = np.clip(np.asarray(center, dtype=np.float64), 0.0, 1.0)
        theta0 = self.space.to_physical(self.center)[None]
        big = Experiment(e.theory, e.sampler, e.detector, e.selection, e.n_events * int(factor), name=e.name)
        u, noise = big.noise(seed)
        dens0 = e.theory.densities(theta0)
        truth_level, valid = e.sampler.sample(e.theory.edges, dens0, u)
        if not valid[0]:
            raise ValueError("the centre's cross sections cannot be normalised")
        G = e.theory.edges.size - 1
        cells = np.clip(np.searchsorted(e.theory.edges, truth_level[0], side="right") - 1, 0, G - 1)
        det = e.detector.apply(truth_level.copy(), noise)
        keep = e.selection.mask(det)[0]
        self.cells = np.ascontiguousarray(cells[keep].T)  # (n_obs, N_kept)
        self.bins = obj.bin_index(det[0][keep])
        self.n_generated = big.n_events
        self.dens0, self.tot0 = dens0[0], e.theory.totals(dens0)[0]
        self.r = (
            problem.data.n_generated / self.n_generated
            if problem.data.n_generated is not None
            else problem.data.n_events / max(keep.sum(), 1)
        )

    def scores(self, Z: np.ndarray) -> np.ndarray:
        """Likelihood scores (P,) at unit-cube points Z (P, d)."""
        Z = np.atleast_2d(np.clip(np.asarray(Z, dtype=np.float64), 0.0, 1.0))
        out = np.empty(Z.shape[0])
        step = max(1, CHUNK_ELEMENTS // max(self.bins.size, 1))
        K = self.objective.n_bins
        for a in range(0, Z.shape[0], step):
            theta = self.space.to_physical(Z[a : a + step])
            dens = self.theory.densities(theta)
            tot = self.theory.totals(dens)
            P = theta.shape[0]
            # Weight = product over observables of the density ratio at the event's true cell,
            # formed on the grid first so each event costs one gather per observable.
            w = np.ones((P, self.bins.size))
            with np.errstate(divide="ignore", invalid="ignore"):
                for o in range(dens.shape[1]):
                    ratio = (dens[:, o, :] / self.dens0[o]) * (self.tot0[o] / tot[:, o : o + 1])
                    w *= ratio[:, self.cells[o]]
            w[~np.isfinite(w)] = 0.0
            idx = (np.arange(P)[:, None] * K + self.bins[None, :]).ravel()
            m = np.bincount(idx, weights=w.ravel(), minlength=P * K).reshape(P, K)
            if self.problem.data.n_generated is not None:
                r = self.r
            else:
                r = self.problem.data.n_events / np.maximum(m.sum(axis=1), 1e-300)
            s = two_sample_deviance(self.objective.n, m, r) + self.objective.xsec_weight * xsec_chi2(
                np.where(np.isfinite(tot), tot, 0.0), self.problem.data
            )
            out[a : a + step] = np.where(np.isfinite(s), s, 1e12)
        return out


def rw_seed(seed: int, k: int) -> int:
    """Seeds of the reweighting samples, apart from every solver generation's."""
    return rngmod.generation_seed(seed, 10**6 + k)
