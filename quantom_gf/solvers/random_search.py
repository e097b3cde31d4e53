"""Uniform random search: the baseline every other solver has to beat.

Scores from different generations use different random numbers, so they are not comparable;
the best points found so far (the archive) are therefore re-scored in every generation next to
the new uniform draws, and only scores of one generation are ever ranked against each other.
"""

from __future__ import annotations

import numpy as np

from .. import rng as rngmod
from .base import PopulationSolver


class RandomSearch(PopulationSolver):
    """Uniform draws in [0, 1]^d; recommend the mean of the archive of the best ``keep`` points."""

    name = "random"

    def __init__(self, dim: int, seed: int = 0, *, population: int = 64, keep: int = 8) -> None:
        if population < 1 or not 1 <= keep < population:
            raise ValueError(f"random: need population >= 1 and 1 <= keep < population; got {population}, {keep}")
        super().__init__(dim, seed, population=population, keep=keep)
        self.population, self.keep = int(population), int(keep)
        self._rng = rngmod.stream(self.seed, rngmod.SOLVER_STATE)
        self._archive = np.empty((0, self.dim))
        self._next = self._draw()

    def _draw(self) -> np.ndarray:
        new = self._rng.random((self.population - len(self._archive), self.dim))
        return np.concatenate([self._archive, new])

    def ask(self) -> np.ndarray:
        """The archive (re-scored) followed by fresh uniform draws, (population, d)."""
        return self._next.copy()

    def tell(self, Z: np.ndarray, scores: np.ndarray) -> None:
        """Keep the ``keep`` best of this generation as the archive; draw the next population."""
        order = np.argsort(scores, kind="stable")
        self._archive = np.asarray(Z, dtype=np.float64)[order[: self.keep]].copy()
        self._next = self._draw()

    def recommend(self) -> np.ndarray:
        """Mean of the archive; the cube's centre before the first generation."""
        if len(self._archive) == 0:
            return np.full(self.dim, 0.5)
        return self._archive.mean(axis=0)

    def history_extra(self) -> dict:
        """Spread of the archive (mean standard deviation per coordinate)."""
        return {"archive_spread": float(self._archive.std(axis=0).mean()) if len(self._archive) else np.nan}

    def state_dict(self) -> dict:
        """Archive, next population and generator state; picklable."""
        return {
            **self._base_state(),
            "rng": self._rng.bit_generator.state,
            "archive": self._archive.copy(),
            "next": self._next.copy(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore from ``state_dict()``."""
        self._load_base_state(state)
        self._rng.bit_generator.state = state["rng"]
        self._archive = np.array(state["archive"], dtype=np.float64)
        self._next = np.array(state["next"], dtype=np.float64)
