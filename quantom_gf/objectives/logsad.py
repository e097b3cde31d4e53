"""The collaboration's log-SAD metric, with upstream's MSE on the total cross sections."""

from __future__ import annotations

import numpy as np

from ..data import EventSet
from .base import Objective, SimBatch
from .histogram import hist_projection


class LogSAD(Objective):
    """log(sum |H_real - H_synthetic| + 1e-7) over ``bins``-bin histograms of each observable.

    Histograms are fractions of the events generated (so acceptance matters); upstream's
    generator loss adds the mean squared error of the two totals, weighted by ``mse_weight``.
    """

    def __init__(self, bins: int = 100, lo: float = 0.0, hi: float = 1.0, mse_weight: float = 1.0) -> None:
        self.bins, self.lo, self.hi, self.mse_weight = int(bins), float(lo), float(hi), float(mse_weight)

    def fit(self, data: EventSet) -> LogSAD:
        """Data histograms as fractions."""
        ones = np.ones((1, data.n_events), dtype=np.bool_)
        norm = data.n_generated or data.n_events
        self.H = [
            hist_projection(data.events[None], ones, np.eye(data.n_obs)[o], self.lo, self.hi, self.bins)[0] / norm
            for o in range(data.n_obs)
        ]
        self.data = data
        return self

    def score(self, sim: SimBatch) -> np.ndarray:
        """log-SAD + mse_weight * MSE of the totals, (P,)."""
        sad = np.zeros(sim.events.shape[0])
        for o, H in enumerate(self.H):
            w = np.eye(self.data.n_obs)[o]
            h = hist_projection(sim.events, sim.mask, w, self.lo, self.hi, self.bins) / sim.n_generated
            sad += np.abs(H - h).sum(axis=1)
        mse = np.mean((sim.totals - self.data.xsec_total) ** 2, axis=-1)
        return np.log(sad + 1e-7) + self.mse_weight * mse
