"""The solver contract.

Every solver is started by ``solver.run(problem, budget, evaluator, callback)`` and returns a
SolverResult. Population solvers implement ask/tell in the unit cube and inherit ``run``:
each generation draws a fresh evaluation seed (common to the whole generation), the evaluator
scores the population, ``tell`` updates the solver, and the callback sees a Progress record
(it may stop the run, e.g. on SIGTERM, and writes history and checkpoints).

Under noise the answer is ``recommend()``: a population or distribution mean, never the
luckiest single evaluation.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import rng as rngmod
from ..evaluate import SerialEvaluator


@dataclass
class Progress:
    """One generation's record, handed to the callback."""

    generation: int
    evaluations: int
    Z: np.ndarray  # (P, d) evaluated population, unit cube
    scores: np.ndarray  # (P,)
    seed: int  # evaluation seed of this generation
    recommendation: np.ndarray  # (d,) current answer, unit cube
    extra: dict = field(default_factory=dict)  # solver-specific numbers for the history (sigma, T, ...)
    workers: np.ndarray | None = None  # (P,) rank/worker that evaluated each member, when known


@dataclass
class SolverResult:
    """What a solver hands back: the recommendation in the unit cube and its bookkeeping."""

    z: np.ndarray
    evaluations: int
    generations: int
    converged: bool
    message: str = ""
    wall_time_s: float = 0.0
    extra: dict = field(default_factory=dict)


Callback = Callable[["Solver", Progress], bool | None]


class Solver(ABC):
    """Base of every solver. ``settings`` come from the strategy preset (TOML)."""

    name: str = "solver"

    def __init__(self, dim: int, seed: int = 0, **settings: Any) -> None:
        if dim < 1:
            raise ValueError("dim must be >= 1")
        self.dim, self.seed = int(dim), int(seed)
        self.generation = 0
        self.evaluations = 0
        self.stopped = False
        self.settings = settings

    @abstractmethod
    def run(self, problem: Any, budget: int, evaluator: Any = None, callback: Callback | None = None) -> SolverResult:
        """Optimise ``problem`` with at most ``budget`` evaluations."""

    @abstractmethod
    def state_dict(self) -> dict:
        """Everything needed to continue bit-identically (random state included); picklable."""

    @abstractmethod
    def load_state_dict(self, state: dict) -> None:
        """Restore from ``state_dict()``."""


class PopulationSolver(Solver):
    """Ask/tell solvers; ``run`` is the shared generation loop."""

    @abstractmethod
    def ask(self) -> np.ndarray:
        """The next population (P, d) in the unit cube."""

    @abstractmethod
    def tell(self, Z: np.ndarray, scores: np.ndarray) -> None:
        """Update from the population's scores (lower is better)."""

    @abstractmethod
    def recommend(self) -> np.ndarray:
        """The current answer (d,) in the unit cube: a mean, robust to noise."""

    def done(self) -> tuple[bool, str]:
        """The solver's own termination (converged, message)."""
        return False, ""

    def history_extra(self) -> dict:
        """Solver-specific numbers for the history row of the last generation."""
        return {}

    def _base_state(self) -> dict:
        return {"generation": self.generation, "evaluations": self.evaluations, "seed": self.seed}

    def _load_base_state(self, state: dict) -> None:
        self.generation, self.evaluations = int(state["generation"]), int(state["evaluations"])

    def run(self, problem: Any, budget: int, evaluator: Any = None, callback: Callback | None = None) -> SolverResult:
        """Generations of ask -> evaluate (fresh common random numbers) -> tell until budget or done."""
        if budget <= 0:
            raise ValueError("budget must be positive")
        evaluator = evaluator or SerialEvaluator()
        t0 = time.perf_counter()
        converged, message = self.done()
        while not self.stopped and not converged:
            Z = self.ask()
            if self.evaluations + Z.shape[0] > budget:
                message = "budget exhausted"
                break
            seed = rngmod.generation_seed(self.seed, self.generation)
            scores = np.asarray(evaluator.map(problem, Z, seed), dtype=np.float64)
            workers = getattr(evaluator, "last_workers", None)
            self.tell(Z, scores)
            self.evaluations += Z.shape[0]
            self.generation += 1
            rec = self.recommend()
            info = Progress(self.generation, self.evaluations, Z, scores, seed, rec, self.history_extra(), workers)
            if callback is not None and callback(self, info):
                self.stopped = True
                message = "stopped by callback"
            converged, msg = self.done()
            message = msg or message
        return SolverResult(
            z=self.recommend(),
            evaluations=self.evaluations,
            generations=self.generation,
            converged=converged,
            message=message or ("budget exhausted" if not converged else ""),
            wall_time_s=time.perf_counter() - t0,
        )
