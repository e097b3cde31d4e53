"""Objective contract: synthetic events of a population vs measured data -> scores (P,)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from ..data import EventSet

# A finite score worse than any reachable one, for members whose score cannot be computed.
WORST_SCORE = 1.0e12


@dataclass
class SimBatch:
    """What the pipeline hands an objective for one chunk of the population."""

    events: np.ndarray  # (P, N, n_obs) detector-level events (NaN where invalid)
    mask: np.ndarray  # (P, N) selection
    totals: np.ndarray  # (P, n_obs) total cross sections of the theory
    valid: np.ndarray  # (P,) False where the densities could not be normalised
    n_generated: int  # events generated per member, before selection


def xsec_chi2(totals: np.ndarray, data: EventSet) -> np.ndarray:
    """Sum over observables of ((total - measured)/error)^2, shape (P,)."""
    return np.sum(((totals - data.xsec_total) / data.xsec_total_err) ** 2, axis=-1)


class Objective(ABC):
    """Scores how far synthetic events are from the measured ones (lower is better).

    ``fit`` sees the measured data once (binning, data histograms); ``score`` is then called
    per chunk of the population. ``is_likelihood`` marks scores that are -2 log L up to a
    constant, so that curvature gives uncertainties.
    """

    is_likelihood: bool = False

    @abstractmethod
    def fit(self, data: EventSet) -> Objective:
        """Precompute everything that depends on the measured data only."""

    @abstractmethod
    def score(self, sim: SimBatch) -> np.ndarray:
        """Scores (P,), finite for every member."""

    def __call__(self, sim: SimBatch) -> np.ndarray:
        """Scores with the finiteness guarantee applied."""
        s = np.asarray(self.score(sim), dtype=np.float64)
        s = np.where(np.isfinite(s), s, WORST_SCORE)
        return np.minimum(s, WORST_SCORE)
