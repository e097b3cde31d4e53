"""Simulated annealing with a population of Metropolis chains (population annealing).

Not scipy's dual_annealing: it scores one point at a time (no population call, no common-random-number comparisons).

All chains share one temperature. Each generation: a Metropolis step for every chain; then the
temperature drops as far as keeps the effective sample size of that step's Boltzmann reweighting
at ``ess`` of the chains, down to ``t_min``, so the schedule follows the score scale by itself.
The weights accumulate, and the chains are resampled by them (chains in poor basins die, good
ones multiply) when their effective sample size falls below half the chains.

Each generation has fresh random numbers, so a chain's old score is stale: the current states
are re-scored together with the proposals (ask returns [current; proposals]), and acceptance and
reweighting compare scores of one generation only. Proposals are differential-evolution moves
between chains (DE-MC, ter Braak 2006): their shape and size follow the chains' own spread, so
they stretch along correlated valleys, and their step factor is tuned to a target acceptance.
Temperatures are in score units; the default ``t_min = 1`` suits a -2 log-likelihood.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from .. import rng as rngmod
from .base import PopulationSolver

# Robbins-Monro gain of the log step factor; jitter added to every move (unit cube) so that
# copies made by resampling part again.
STEP_GAIN = 0.2
JITTER = 1e-4
# Resample when the accumulated weights' effective sample size falls below this fraction.
RESAMPLE_ESS = 0.5


def _ess_fraction(log_w: np.ndarray) -> float:
    """Effective sample size of weights exp(log_w), as a fraction of their number."""
    w = np.exp(log_w - log_w.max())
    return float(w.sum() ** 2 / (w @ w) / len(w))


class SASolver(PopulationSolver):
    """``chains`` chains annealed together to ``t_min``; recommend the chains' mean."""

    name = "sa"

    def __init__(
        self,
        dim: int,
        seed: int = 0,
        *,
        chains: int = 32,
        t_min: float = 1.0,
        ess: float = 0.95,
        target_accept: float = 0.25,
        average: int = 20,
    ) -> None:
        if chains < 4 or not t_min > 0 or not 0 < ess < 1:
            raise ValueError(f"sa: need chains >= 4, t_min > 0, 0 < ess < 1; got {chains}, {t_min}, {ess}")
        if not (0 < target_accept < 1 and average >= 1):
            raise ValueError("sa: need 0 < target_accept < 1 and average >= 1")
        super().__init__(dim, seed, chains=chains, t_min=t_min, ess=ess, target_accept=target_accept, average=average)
        self.chains, self.t_min, self.ess = int(chains), float(t_min), float(ess)
        self.target_accept, self.average = float(target_accept), int(average)
        self._rng = rngmod.stream(self.seed, rngmod.SOLVER_STATE)
        self._x = self._rng.random((self.chains, self.dim))
        self._beta = 0.0  # inverse temperature: 0 is the uniform start
        self._log_w = np.zeros(self.chains)  # importance weights since the last resampling
        self._log_step = float(np.log(2.38 / np.sqrt(2 * self.dim)))  # DE-MC's usual factor
        self._accept = 0.0
        self._recent: deque = deque(maxlen=self.average)
        self._proposals = self._propose()

    def _propose(self) -> np.ndarray:
        """DE-MC moves x_i + step (x_a - x_b) + jitter with a != b != i, reflected into the cube."""
        n, rng = self.chains, self._rng
        # Two distinct partners per chain among the other n - 1 chains.
        a = rng.integers(0, n - 1, n)
        b = rng.integers(0, n - 2, n)
        b = b + (b >= a)
        own = np.arange(n)
        a, b = a + (a >= own), b + (b >= own)
        y = self._x + np.exp(self._log_step) * (self._x[a] - self._x[b])
        y = y + JITTER * rng.standard_normal((n, self.dim))
        # Reflection keeps the proposal symmetric, so plain Metropolis stays exact at the walls.
        y = np.mod(y, 2.0)
        return np.where(y > 1.0, 2.0 - y, y)

    def ask(self) -> np.ndarray:
        """Current states then proposals, (2 chains, d), scored with the same random numbers."""
        return np.concatenate([self._x, self._proposals])

    def tell(self, Z: np.ndarray, scores: np.ndarray) -> None:
        """Metropolis acceptance, step adaptation, cooling by effective sample size, resampling."""
        scores = np.asarray(scores, dtype=np.float64)
        C, rng = self.chains, self._rng
        current = np.where(np.isfinite(scores[:C]), scores[:C], np.inf)
        proposed = np.where(np.isfinite(scores[C:]), scores[C:], np.inf)
        with np.errstate(invalid="ignore"):
            delta = proposed - current
            # A failed current state always yields to a finite proposal; two failures stay put.
            delta = np.where(np.isinf(current), np.where(np.isinf(proposed), np.inf, -np.inf), delta)
        accept = np.log(rng.random(C)) < -self._beta * delta if self._beta > 0 else np.isfinite(proposed)
        self._x = np.where(accept[:, None], self._proposals, self._x)
        energy = np.where(accept, proposed, current)
        self._accept = float(accept.mean())
        self._log_step = float(np.clip(self._log_step + STEP_GAIN * (self._accept - self.target_accept), -10, 1))
        self._cool_and_resample(energy)
        self._recent.append(self._weighted_mean())
        self._proposals = self._propose()

    def _cool_and_resample(self, energy: np.ndarray) -> None:
        """Lower the temperature as far as keeps ``ess`` of this step's reweighting; resample when the
        accumulated weights' effective sample size falls below half the chains."""
        beta_max = 1.0 / self.t_min
        ok = np.isfinite(energy)
        if self._beta >= beta_max or not ok.any():
            return
        e = np.where(ok, energy - energy[ok].min(), np.inf)
        if _ess_fraction(-(beta_max - self._beta) * e) >= self.ess:
            step = beta_max - self._beta
        else:  # bisection on the step in beta (the ESS falls as the step grows)
            lo, hi = 0.0, beta_max - self._beta
            for _ in range(50):
                mid = 0.5 * (lo + hi)
                lo, hi = (mid, hi) if _ess_fraction(-mid * e) >= self.ess else (lo, mid)
            step = lo
        self._beta = min(beta_max, self._beta + step)
        self._log_w = self._log_w - step * e
        self._log_w -= self._log_w.max()
        if _ess_fraction(self._log_w) < RESAMPLE_ESS:
            # Systematic resampling: low variance, every chain with weight >= 1/n of the total survives.
            w = np.exp(self._log_w)
            points = (self._rng.random() + np.arange(self.chains)) / self.chains
            idx = np.minimum(np.searchsorted(np.cumsum(w / w.sum()), points), self.chains - 1)
            self._x, self._log_w = self._x[idx], np.zeros(self.chains)

    def _weighted_mean(self) -> np.ndarray:
        w = np.exp(self._log_w - self._log_w.max())
        return (w / w.sum()) @ self._x

    def recommend(self) -> np.ndarray:
        """Mean of the chains over the last ``average`` generations."""
        if not self._recent:
            return self._weighted_mean()
        return np.mean(np.array(self._recent), axis=0)

    def history_extra(self) -> dict:
        """Temperature, step factor, acceptance rate and spread of the chains."""
        return {
            "temperature": float(1.0 / self._beta) if self._beta > 0 else float("inf"),
            "step": float(np.exp(self._log_step)),
            "accept": self._accept,
            "spread": float(self._x.std(axis=0).mean()),
        }

    def state_dict(self) -> dict:
        """Chains, proposals, temperature, step factor and generator state; picklable."""
        return {
            **self._base_state(),
            "rng": self._rng.bit_generator.state,
            "x": self._x.copy(),
            "proposals": self._proposals.copy(),
            "beta": self._beta,
            "log_w": self._log_w.copy(),
            "log_step": self._log_step,
            "accept": self._accept,
            "recent": [r.copy() for r in self._recent],
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore from ``state_dict()``."""
        self._load_base_state(state)
        self._rng.bit_generator.state = state["rng"]
        self._x = np.array(state["x"], dtype=np.float64)
        self._proposals = np.array(state["proposals"], dtype=np.float64)
        self._log_w = np.array(state["log_w"], dtype=np.float64)
        self._beta, self._log_step = float(state["beta"]), float(state["log_step"])
        self._accept = float(state["accept"])
        self._recent = deque((np.array(r, dtype=np.float64) for r in state["recent"]), maxlen=self.average)
