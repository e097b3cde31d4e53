"""CMA-ES (pycma) in [0, 1]^d, set up for a noisy objective scored with common random numbers.

Within one generation the ranking is consistent (same random numbers for every member); across
generations the landscape jitters, so termination criteria that read a flat or stagnating
fitness history as convergence are switched off, and the answer is the distribution mean.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections import deque

import cma
import numpy as np

from .. import rng as rngmod
from .base import PopulationSolver

# pycma criteria that fire on noise rather than on convergence; `tolx` (step size) stays active.
_NOISE_SAFE_OPTIONS = {
    "tolfun": 0.0,
    "tolfunhist": 0.0,
    "tolfunrel": 0.0,
    "tolflatfitness": 10**9,
    "tolstagnation": 10**9,
    "tolxstagnation": False,
    "maxiter": math.inf,
    "maxfevals": math.inf,
}


class GeneratorRandn:
    """pycma's ``randn(lam, N)`` drawn from a private numpy Generator (picklable, no global state)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def __call__(self, *shape: int) -> np.ndarray:
        """Standard normal numbers of the given shape."""
        return self.rng.standard_normal(shape)


class CMAESSolver(PopulationSolver):
    """pycma ask/tell; recommend the distribution mean, averaged over the last ``average`` generations."""

    name = "cmaes"

    def __init__(
        self,
        dim: int,
        seed: int = 0,
        *,
        popsize: int = 32,
        sigma0: float = 0.3,
        x0: list[float] | None = None,
        tolx: float = 1e-9,
        average: int = 20,
    ) -> None:
        if popsize < 2 or not 0 < sigma0 <= 1 or average < 1:
            raise ValueError("cmaes: need popsize >= 2, 0 < sigma0 <= 1 and average >= 1")
        super().__init__(dim, seed, popsize=popsize, sigma0=sigma0, x0=x0, tolx=tolx, average=average)
        self.average = int(average)
        self._recent: deque = deque(maxlen=self.average)
        start = np.full(self.dim, 0.5) if x0 is None else np.asarray(x0, dtype=np.float64)
        if start.shape != (self.dim,) or np.any(start < 0) or np.any(start > 1):
            raise ValueError(f"cmaes: x0 must be {self.dim} numbers in [0, 1]")
        opts = {
            **_NOISE_SAFE_OPTIONS,
            "popsize": int(popsize),
            "bounds": [0.0, 1.0],
            "tolx": float(tolx),
            "randn": GeneratorRandn(rngmod.stream(self.seed, rngmod.SOLVER_STATE)),
            "seed": np.nan,  # pycma must not reseed numpy's global state
            "verbose": -9,
            "verb_disp": 0,
            "verb_log": 0,
            "verb_filenameprefix": "",
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pycma chatters about the option combination
            self.es = cma.CMAEvolutionStrategy(start, float(sigma0), opts)
        self._pending: np.ndarray | None = None

    def ask(self) -> np.ndarray:
        """A sample of the search distribution, (popsize, d); repeated asks return the same one."""
        if self._pending is None:
            self._pending = np.clip(np.array(self.es.ask(), dtype=np.float64), 0.0, 1.0)
        return self._pending.copy()

    def tell(self, Z: np.ndarray, scores: np.ndarray) -> None:
        """Update the distribution from this generation's ranking."""
        scores = np.asarray(scores, dtype=np.float64)
        # A failed evaluation (NaN) ranks last instead of stopping pycma.
        finite = np.isfinite(scores)
        worst = scores[finite].max() + 1.0 if finite.any() else 0.0
        self.es.tell(list(np.asarray(Z, dtype=np.float64)), np.where(finite, scores, worst).tolist())
        self._pending = None
        self._recent.append(self._mean())

    def _mean(self) -> np.ndarray:
        """The distribution mean in the cube (pycma's ``xfavorite``: the mean mapped into bounds)."""
        return np.clip(np.asarray(self.es.result.xfavorite, dtype=np.float64), 0.0, 1.0)

    def recommend(self) -> np.ndarray:
        """The distribution mean, averaged over the last ``average`` generations.

        Each generation's landscape (its random numbers) pulls the mean towards its own optimum;
        averaging generations averages that jitter out, as a longer simulation would.
        """
        if not self._recent:
            return self._mean()
        return np.mean(np.array(self._recent), axis=0)

    def done(self) -> tuple[bool, str]:
        """Stop when pycma reports a criterion (noise-driven ones are off)."""
        stop = {k: v for k, v in self.es.stop().items() if k != "callback"}
        return (True, "cmaes: " + ", ".join(sorted(stop))) if stop else (False, "")

    def history_extra(self) -> dict:
        """Step size and the spread of the distribution per coordinate."""
        stds = np.asarray(self.es.stds)
        return {"sigma": float(self.es.sigma), "std_max": float(stds.max()), "std_min": float(stds.min())}

    def state_dict(self) -> dict:
        """The whole pycma object (its randn generator inside) and the pending sample; picklable."""
        return {
            **self._base_state(),
            "es": copy.deepcopy(self.es),
            "recent": [r.copy() for r in self._recent],
            "pending": None if self._pending is None else self._pending.copy(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore from ``state_dict()``."""
        self._load_base_state(state)
        self.es = copy.deepcopy(state["es"])
        self._recent = deque((np.array(r, dtype=np.float64) for r in state["recent"]), maxlen=self.average)
        self._pending = None if state["pending"] is None else np.array(state["pending"], dtype=np.float64)
