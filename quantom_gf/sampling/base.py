"""Sampler contract: densities on a grid + shared random numbers -> events."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Sampler(ABC):
    """Draws events for a whole population from the same random numbers (common random numbers)."""

    @abstractmethod
    def draw(self, rng: np.random.Generator, n_events: int, n_obs: int) -> np.ndarray:
        """The random numbers one population evaluation shares."""

    @abstractmethod
    def sample(self, edges: np.ndarray, dens: np.ndarray, noise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Events (P, N, n_obs) and a valid flag (P,) (False where a density cannot be normalised)."""
