"""Detector contract: events -> smeared events, with its random numbers passed in."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Detector(ABC):
    """Resolution effects applied to a population's events with shared random numbers."""

    @abstractmethod
    def draw(self, rng: np.random.Generator, n_events: int) -> np.ndarray | None:
        """Per-event random numbers (independent of the parameters), or None."""

    @abstractmethod
    def apply(self, events: np.ndarray, noise: np.ndarray | None) -> np.ndarray:
        """Smeared events (P, N, n_obs); may work in place on ``events``."""


class IdentityDetector(Detector):
    """Detector "off": events pass unchanged."""

    def draw(self, rng: np.random.Generator, n_events: int) -> None:
        """No random numbers."""
        return None

    def apply(self, events: np.ndarray, noise: np.ndarray | None) -> np.ndarray:
        """The events themselves."""
        return events

    def matrices(self, noise: np.ndarray | None, n_events: int) -> np.ndarray:
        """Identity matrices (N, 2, 2), for checks against SPEC."""
        return np.broadcast_to(np.eye(2), (n_events, 2, 2)).copy()
