"""A smooth local surrogate of the likelihood score: one synthetic sample, reweighted.

Events are drawn once at a centre theta0 and pushed through detector and selection; the score
at a nearby theta reweights each event by rho(x | theta) / rho(x | theta0) at its true x (the
sampler's grid density is known exactly). Event positions never move, so the score is a smooth
function of the parameters -- what curvature, Newton steps and quick refits need, and what
moving events across bin edges (common random numbers alone) cannot give.

Which cells an event came from and the per-cell density ratios are the sampler's business:

- 1D inverse CDF (the default): one cell per observable; the weight is the product over
  observables of rho(cell; theta)/rho(cell; theta0), densities normalised by their totals;
- a sampler with ``sample_with_cells``/``cell_ratios`` (LOITS): its own table indices per
  event and ratios per table entry (LOITS: the joint cell, and the sub-interval of the in-cell
  line along each coordinate, so the weight is its exact density ratio).

Several experiments: one reweighted sample per experiment, the scores summed.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numba import njit

from . import rng as rngmod
from .objectives import WORST_SCORE, BinnedLikelihood, two_sample_deviance, xsec_chi2
from .problem import Experiment, ObjectiveSum, Problem


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


class _Part:
    """One experiment's reweighted sample and its binned likelihood."""

    def __init__(self, e: Experiment, obj, data, theta0: np.ndarray, seed: int, factor: int) -> None:
        if not isinstance(obj, BinnedLikelihood):
            obj = BinnedLikelihood().fit(data)  # the statistical model behind the uncertainty
        self.objective, self.data, self.theory, self.sampler = obj, data, e.theory, e.sampler
        big = dataclasses.replace(e, n_events=e.n_events * int(factor))
        u, noise = big.noise(seed)
        dens0 = e.theory.densities(theta0)
        self.tables = hasattr(e.sampler, "sample_with_cells")
        if self.tables:
            truth_level, valid, tab = e.sampler.sample_with_cells(e.theory.grid, dens0, u)
            cells = tab[0].T  # (N, n_tables)
        else:
            truth_level, valid = e.sampler.sample(e.theory.grid, dens0, u)
            G = e.theory.edges.size - 1
            cells = np.clip(np.searchsorted(e.theory.edges, truth_level[0], side="right") - 1, 0, G - 1)
        if not valid[0]:
            raise ValueError("the centre's cross sections cannot be normalised")
        det = e.detector.apply(truth_level.copy(), noise)
        keep = e.selection.mask(det)[0]
        bins = obj.bin_index(det[0][keep])
        # Events sorted by bin: a bin's content is then a contiguous sum (np.add.reduceat).
        order = np.argsort(bins, kind="stable")
        self.bins = bins[order]
        self.cells = np.ascontiguousarray(cells[keep][order].T)  # (n_obs or n_tables, N_kept)
        K = obj.n_bins
        self._starts = np.searchsorted(self.bins, np.arange(K), side="left")
        self._ends = np.searchsorted(self.bins, np.arange(K), side="right")
        self.n_generated = big.n_events
        self.dens0, self.tot0 = dens0[0], e.theory.totals(dens0)[0]
        extended = data.n_generated is not None
        self.r = data.n_generated / self.n_generated if extended else data.n_events / max(keep.sum(), 1)

    def ratios(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-cell density ratios rho(theta)/rho(theta0), (P, n_obs or n_tables, G), and the totals."""
        dens = self.theory.densities(theta)
        tot = self.theory.totals(dens)
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.tables:
                ratio = self.sampler.cell_ratios(self.theory.grid, dens, self.dens0[None])
            else:
                ratio = (dens / self.dens0) * (self.tot0 / tot)[:, :, None]
        ratio[~np.isfinite(ratio)] = 0.0  # cells the centre never populates carry no events
        return np.ascontiguousarray(ratio), tot

    def weights(self, theta: np.ndarray) -> np.ndarray:
        """Event weights (P, N_kept)."""
        ratio, _ = self.ratios(theta)
        w = np.ones((theta.shape[0], self.bins.size))
        for o in range(ratio.shape[1]):
            w *= ratio[:, o, self.cells[o]]
        return w

    def scores(self, theta: np.ndarray) -> np.ndarray:
        """Likelihood scores (P,) at physical parameters theta (P, d)."""
        ratio, tot = self.ratios(theta)
        m = np.zeros((theta.shape[0], self.objective.n_bins))
        _binned_weights(ratio, self.cells, self._starts, self._ends, m)
        if self.data.n_generated is not None:
            r = self.r
        else:
            r = self.data.n_events / np.maximum(m.sum(axis=1), 1e-300)
        tot = np.where(np.isfinite(tot), tot, 0.0)
        s = two_sample_deviance(self.objective.n, m, r) + self.objective.xsec_weight * xsec_chi2(tot, self.data)
        return np.where(np.isfinite(s), s, WORST_SCORE)


class Reweighter:
    """The binned likelihood near ``center`` (unit cube) from ``factor`` x n_events reweighted events.

    ``objective``: the binned likelihood it evaluates (an ObjectiveSum over experiments when the
    Problem has several; ``dof`` is what the goodness of fit reads).
    """

    def __init__(self, problem: Problem, center: np.ndarray, seed: int, factor: int = 4) -> None:
        self.problem, self.space = problem, problem.space
        self.center = np.clip(np.asarray(center, dtype=np.float64), 0.0, 1.0)
        theta0 = self.space.to_physical(self.center)[None]
        self.parts = [
            _Part(e, o, d, theta0, seed, factor)
            for e, o, d in zip(problem.experiments, problem.objectives, problem.datasets)
        ]
        objs = [p.objective for p in self.parts]
        self.objective = objs[0] if len(objs) == 1 else ObjectiveSum(objs)

    def ess(self, z: np.ndarray) -> float:
        """Effective sample size of the weights at z, as a fraction of the sample (1 at the centre).

        With several experiments, the smallest of theirs.
        """
        theta = self.space.to_physical(np.clip(np.atleast_2d(z), 0.0, 1.0))
        out = np.inf
        for part in self.parts:
            w = part.weights(theta)
            out = min(out, float(w.sum() ** 2 / max((w**2).sum(), 1e-300) / max(w.shape[1], 1)))
        return out

    def scores(self, Z: np.ndarray) -> np.ndarray:
        """Likelihood scores (P,) at unit-cube points Z (P, d): the experiments' scores summed."""
        Z = np.atleast_2d(np.clip(np.asarray(Z, dtype=np.float64), 0.0, 1.0))
        theta = self.space.to_physical(Z)
        out = self.parts[0].scores(theta)
        for part in self.parts[1:]:
            out = np.minimum(out + part.scores(theta), WORST_SCORE)
        return out


def rw_seed(seed: int, k: int) -> int:
    """Seeds of the reweighting samples, apart from every solver generation's."""
    return rngmod.generation_seed(seed, 10**6 + k)
