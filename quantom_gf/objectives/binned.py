"""Binned extended likelihood: two-sample Poisson deviance on a 2D histogram + total cross sections."""

from __future__ import annotations

import numpy as np

from ..data import EventSet
from .base import Objective, SimBatch, xsec_chi2
from .histogram import hist2d


def two_sample_deviance(n: np.ndarray, m: np.ndarray, r: np.ndarray | float) -> np.ndarray:
    """-2 log likelihood ratio that data counts n ~ Pois(r mu) and synthetic m ~ Pois(mu) share mu.

    Profiling mu per bin is what makes the synthetic sample's own fluctuation count: with equal
    sample sizes the deviance is half as steep as a fit that treats m as exact.
    n: (K,), m: (P, K), r: scalar or (P,) -- expected data/synthetic ratio. Returns (P,).
    """
    r = np.asarray(r, dtype=np.float64).reshape(-1, 1) if np.ndim(r) else float(r)
    mu = (n + m) / (1.0 + r)
    with np.errstate(divide="ignore", invalid="ignore"):
        tn = np.where(n > 0, n * np.log(n / (r * mu)), 0.0)
        tm = np.where(m > 0, m * np.log(m / mu), 0.0)
    return 2.0 * np.sum(tn + tm, axis=-1)


class BinnedLikelihood(Objective):
    """The default objective.

    Bins: ``bins`` per observable at quantiles of the measured marginals (equal population,
    so no bin is empty), open at both ends. Extended when the data know ``n_generated``: the
    expected yield then follows the synthetic acceptance; otherwise the yield is profiled.
    The total cross sections enter as Gaussian terms, (total - measured)^2 / error^2.
    """

    is_likelihood = True

    def __init__(self, bins: int = 20, xsec_weight: float = 1.0) -> None:
        if bins < 2:
            raise ValueError("binned_likelihood needs bins >= 2")
        self.bins, self.xsec_weight = int(bins), float(xsec_weight)

    def fit(self, data: EventSet, inner: list[np.ndarray] | None = None) -> BinnedLikelihood:
        """Quantile binning (or the given interior edges, e.g. a replica's) and the data histogram."""
        if data.n_obs != 2:
            raise ValueError("binned_likelihood histograms two observables")
        if inner is None:
            q = np.linspace(0.0, 1.0, self.bins + 1)[1:-1]
            inner = [np.unique(np.quantile(data.events[:, o], q)) for o in range(2)]  # unique: discrete data
        self.inner = [np.ascontiguousarray(e, dtype=np.float64) for e in inner]
        ones = np.ones((1, data.n_events), dtype=np.bool_)
        self.n = hist2d(data.events[None], ones, *self.inner)[0]
        self.data = data
        self.n_bins = self.n.size
        return self

    def bin_index(self, events: np.ndarray) -> np.ndarray:
        """Flat bin index (N,) of events (N, 2) under this binning."""
        i = np.searchsorted(self.inner[0], events[:, 0], side="right")
        j = np.searchsorted(self.inner[1], events[:, 1], side="right")
        return i * (self.inner[1].size + 1) + j

    @property
    def dof(self) -> int:
        """Degrees of freedom of the deviance at the best fit, before subtracting parameters."""
        extended = self.data.n_generated is not None
        return self.n_bins + self.data.n_obs - (0 if extended else 1)

    def score(self, sim: SimBatch) -> np.ndarray:
        """Deviance + xsec_weight * chi2 of the totals, (P,)."""
        m = hist2d(sim.events, sim.mask, *self.inner)
        if self.data.n_generated is not None:
            r = self.data.n_generated / sim.n_generated
        else:
            m_tot = m.sum(axis=1)
            r = np.where(m_tot > 0, self.data.n_events / np.maximum(m_tot, 1.0), 1.0)
        return two_sample_deviance(self.n, m, r) + self.xsec_weight * xsec_chi2(sim.totals, self.data)
