"""Theory contract: physical parameters (P, d) -> cross-section densities on a grid."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ..params import ParameterSpace


class Theory(ABC):
    """Maps a population of physical parameters to cross sections on a fixed grid.

    Subclasses set ``observables`` and ``edges`` (grid cell edges, shape (G+1,)); each density
    value is the cross section at the left edge of its cell (left Riemann convention).
    """

    observables: tuple[str, ...]
    edges: np.ndarray

    @property
    def n_obs(self) -> int:
        """Number of observables (event coordinates)."""
        return len(self.observables)

    @abstractmethod
    def parameter_space(self) -> ParameterSpace:
        """Names, bounds and reference truth of this theory's parameters."""

    @abstractmethod
    def densities(self, params: np.ndarray) -> np.ndarray:
        """Cross sections (P, n_obs, G) for physical parameters (P, d); non-negative."""

    def totals(self, dens: np.ndarray) -> np.ndarray:
        """Total cross sections (P, n_obs): left Riemann sums of the densities on the grid."""
        return dens @ np.diff(self.edges)

    @abstractmethod
    def pdfs(self, params: np.ndarray, x: np.ndarray) -> dict[str, np.ndarray]:
        """Named parton densities (P, len(x)) for plots and bands."""
