"""A smooth local surrogate of the likelihood score: one synthetic sample, reweighted.

Events are drawn once at a centre theta0 and pushed through detector and selection; the score
at a nearby theta reweights each event by rho(x | theta) / rho(x | theta0) at its true x (the
sampler's grid density is known exactly). Event positions never move, so the score is a smooth
function of the parameters -- what curvature, Newton steps and quick refits need, and what
moving events across bin edges (common random numbers alone) cannot give.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from . import rng as rngmod
from .objectives import WORST_SCORE, BinnedLikelihood, two_sample_deviance, xsec_chi2
from .problem import Experiment, Problem


@njit(cache=True)
def _binned_weights(ratio, cells, starts, ends, out):  # pragma: no cover - compiled
    # out[p, k] = sum over events of bin k of prod_o ratio[p, o, cells[o, n]]; events are sorted
    # by bin, so each bin is one contiguous run (numba: numpy would materialise (P, N) weights).
    P, O, _ = ratio.shape
    K = starts.size
    for p in range(P):
        for k in range(K):
            acc = 0.0
            for n in range(starts[k], ends[k]):
                w = 1.0
                for o in range(O):
                    w *= ratio[p, o, cells[o, n]]
                acc += w
            out[p, k] = acc


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
        bins = obj.bin_index(det[0][keep])
        # Events sorted by bin: a bin's content is then a contiguous sum (np.add.reduceat).
        order = np.argsort(bins, kind="stable")
        self.bins = bins[order]
        self.cells = np.ascontiguousarray(cells[keep][order].T)  # (n_obs, N_kept)
        K = obj.n_bins
        self._starts = np.searchsorted(self.bins, np.arange(K), side="left")
        self._ends = np.searchsorted(self.bins, np.arange(K), side="right")
        self.n_generated = big.n_events
        self.dens0, self.tot0 = dens0[0], e.theory.totals(dens0)[0]
        self.r = (
            problem.data.n_generated / self.n_generated
            if problem.data.n_generated is not None
            else problem.data.n_events / max(keep.sum(), 1)
        )

    def _ratios(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-cell density ratios rho(theta)/rho(theta0), (P, n_obs, G), and the totals."""
        dens = self.theory.densities(theta)
        tot = self.theory.totals(dens)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = (dens / self.dens0) * (self.tot0 / tot)[:, :, None]
        ratio[~np.isfinite(ratio)] = 0.0  # cells the centre never populates carry no events
        return np.ascontiguousarray(ratio), tot

    def _weights(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ratio, tot = self._ratios(theta)
        w = np.ones((theta.shape[0], self.bins.size))
        for o in range(ratio.shape[1]):
            w *= ratio[:, o, self.cells[o]]
        return w, tot

    def ess(self, z: np.ndarray) -> float:
        """Effective sample size of the weights at z, as a fraction of the sample (1 at the centre)."""
        w, _ = self._weights(self.space.to_physical(np.clip(np.atleast_2d(z), 0.0, 1.0)))
        return float(w.sum() ** 2 / max((w**2).sum(), 1e-300) / max(w.shape[1], 1))

    def scores(self, Z: np.ndarray) -> np.ndarray:
        """Likelihood scores (P,) at unit-cube points Z (P, d)."""
        Z = np.atleast_2d(np.clip(np.asarray(Z, dtype=np.float64), 0.0, 1.0))
        ratio, tot = self._ratios(self.space.to_physical(Z))
        m = np.zeros((Z.shape[0], self.objective.n_bins))
        _binned_weights(ratio, self.cells, self._starts, self._ends, m)
        if self.problem.data.n_generated is not None:
            r = self.r
        else:
            r = self.problem.data.n_events / np.maximum(m.sum(axis=1), 1e-300)
        tot = np.where(np.isfinite(tot), tot, 0.0)
        s = two_sample_deviance(self.objective.n, m, r) + self.objective.xsec_weight * xsec_chi2(tot, self.problem.data)
        return np.where(np.isfinite(s), s, WORST_SCORE)


def rw_seed(seed: int, k: int) -> int:
    """Seeds of the reweighting samples, apart from every solver generation's."""
    return rngmod.generation_seed(seed, 10**6 + k)
