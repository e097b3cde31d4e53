"""Nevergrad optimizers behind the ask/tell contract (strategy name ``nevergrad:<Optimizer>``).

nevergrad is optional: this module imports without it, and using the bridge without it raises a
ConfigError with the install command. Each generation asks ``population`` candidates (nevergrad's
``num_workers``), scored together with common random numbers, then tells them all.
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np

from ..errors import ConfigError
from .base import Callback, PopulationSolver, SolverResult

try:  # optional dependency
    import nevergrad as ng
except ImportError:  # pragma: no cover - depends on the environment
    ng = None

# nevergrad <= 1.0.12's metamodel does float() of a 1-element 1-D array, an error since numpy 2.4;
# the NGOpt family of selectors (and every *MetaModel* optimizer) reaches it.
_BROKEN_ON_NUMPY_2_4 = ("NGOpt", "NGO", "Shiwa", "Wiz", "NgIoh", "CSEC")


def _version(text: str) -> tuple[int, ...]:
    out = []
    for part in text.split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit())
        out.append(int(digits) if digits else 0)
    return tuple(out)


def check_nevergrad(optimizer: str) -> None:
    """Raise ConfigError when nevergrad is missing, the optimizer unknown, or known to crash here."""
    if ng is None:
        raise ConfigError("the nevergrad bridge needs `pip install nevergrad`")
    if optimizer not in ng.optimizers.registry:
        raise ConfigError(f"unknown nevergrad optimizer '{optimizer}' (see nevergrad.optimizers.registry)")
    if (
        (optimizer.startswith(_BROKEN_ON_NUMPY_2_4) or "MetaModel" in optimizer)
        and _version(np.__version__) >= (2, 4)
        and _version(ng.__version__) <= (1, 0, 12)
    ):
        raise ConfigError(
            f"nevergrad {ng.__version__} crashes in {optimizer} with numpy {np.__version__} (numpy >= 2.4); "
            "use another optimizer (e.g. nevergrad:CMA), a newer nevergrad, or numpy < 2.4"
        )


class NevergradSolver(PopulationSolver):
    """A nevergrad optimizer on [0, 1]^d; recommend nevergrad's own recommendation."""

    name = "nevergrad"

    def __init__(self, dim: int, seed: int = 0, *, optimizer: str = "CMA", population: int = 32) -> None:
        if population < 1:
            raise ValueError(f"nevergrad: population must be >= 1; got {population}")
        check_nevergrad(optimizer)
        super().__init__(dim, seed, optimizer=optimizer, population=population)
        self.optimizer, self.population = optimizer, int(population)
        self._opt: Any = None  # built on first use, with the run's budget (NGOpt picks by budget)
        self._pending: list = []

    def _build(self, budget: int | None) -> None:
        param = ng.p.Array(shape=(self.dim,), lower=0.0, upper=1.0)
        param.random_state = np.random.RandomState(self.seed)
        self._opt = ng.optimizers.registry[self.optimizer](
            parametrization=param, budget=budget, num_workers=self.population
        )

    def run(self, problem: Any, budget: int, evaluator: Any = None, callback: Callback | None = None) -> SolverResult:
        """As PopulationSolver.run; the optimizer is built with ``budget`` when it does not exist yet."""
        if self._opt is None:
            self._build(int(budget))
        return super().run(problem, budget, evaluator, callback)

    def ask(self) -> np.ndarray:
        """``population`` candidates, (population, d); repeated asks return the same ones."""
        if self._opt is None:
            self._build(None)
        if not self._pending:
            self._pending = [self._opt.ask() for _ in range(self.population)]
        return np.clip(np.array([c.value for c in self._pending], dtype=np.float64), 0.0, 1.0)

    def tell(self, Z: np.ndarray, scores: np.ndarray) -> None:
        """Tell every pending candidate its score (NaN as +inf)."""
        for cand, s in zip(self._pending, np.asarray(scores, dtype=np.float64)):
            self._opt.tell(cand, float(s) if np.isfinite(s) else float("inf"))
        self._pending = []

    def recommend(self) -> np.ndarray:
        """nevergrad's recommendation (for noise-aware optimizers, a mean rather than the luckiest point)."""
        if self._opt is None or self._opt.num_tell == 0:
            return np.full(self.dim, 0.5)
        return np.clip(np.asarray(self._opt.provide_recommendation().value, dtype=np.float64), 0.0, 1.0)

    def state_dict(self) -> dict:
        """The pickled optimizer with its pending candidates (one pickle keeps their links)."""
        return {**self._base_state(), "blob": pickle.dumps((self._opt, self._pending))}

    def load_state_dict(self, state: dict) -> None:
        """Restore from ``state_dict()``."""
        self._load_base_state(state)
        self._opt, self._pending = pickle.loads(state["blob"])
