"""Steady-state GA: a new candidate is bred the moment a worker is free, no generation barrier.

Operators are those of the generational GA (``ga.py``: tournament selection, bounded SBX,
polynomial mutation, on DEAP), applied one child at a time to a sliding window of the most
recent results. It runs on any evaluator: asynchronous ones (``--evaluator mpi`` or
``mpi-async`` under mpiexec) keep ``slots`` candidates in flight, one per free worker; the
serial evaluator scores them one by one in submission order.

Noise design (common random numbers without generations):

- candidate ``k`` is scored with the seed of its *cohort* ``k // cohort`` (default cohort =
  population): the seed is a function of the candidate's index only, never of the worker or
  of timing, and members of a cohort share their random numbers, as a generation does;
- ``replacement = "oldest"`` (default): the window holds the last ``population`` results, so
  no lucky score survives longer than one window (age-based replacement is the noise-robust
  choice); ``"worst"`` keeps the best ``population`` results seen (classic steady state,
  stronger pressure, but a lucky score can linger);
- the answer is the mean of the best ``top_fraction`` of the window.

What is deterministic: each candidate's seed, the initial random candidates, the score of a
given (candidate, seed) (bit-identical on any rank), and the whole run with the serial
evaluator (also across checkpoint/resume). What is not: under MPI the order in which results
complete depends on timing, so which window a child is bred from, and hence the trajectory,
varies from run to run; ``evaluations.csv`` records candidate, worker, seed and score.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from deap import creator

from .. import rng as rngmod
from .base import Callback, Progress, Solver, SolverResult
from .ga import GASolver

# Stream purpose of this solver's private draws (21 keys evaluation seeds, 22 the generational GA).
SOLVER_STATE = 23
REPLACEMENTS = ("oldest", "worst")


@dataclass
class SteadyProgress(Progress):
    """A Progress record for a block of completed evaluations, with per-evaluation seeds."""

    seeds: np.ndarray | None = None  # (P,) evaluation seed of each candidate
    candidates: np.ndarray | None = None  # (P,) candidate index (submission order)


class SteadyGASolver(Solver):
    """Steady-state GA in [0, 1]^d over an asynchronous evaluator; see the module docstring."""

    name = "ga-steady"

    def __init__(
        self,
        dim: int,
        seed: int = 0,
        *,
        population: int = 64,
        tournament: int = 3,
        cxpb: float = 0.9,
        eta_cx: float = 20.0,
        mutpb: float = 0.5,
        eta_mut: float = 20.0,
        indpb: float | None = None,
        top_fraction: float = 0.25,
        cohort: int | None = None,
        replacement: str = "oldest",
        report_every: int | None = None,
    ) -> None:
        if replacement not in REPLACEMENTS:
            raise ValueError(f"ga-steady: replacement must be one of {REPLACEMENTS}; got '{replacement}'")
        if (cohort is not None and cohort < 1) or (report_every is not None and report_every < 1):
            raise ValueError("ga-steady: cohort and report_every must be >= 1")
        # The generational GA validates the shared settings and provides the DEAP toolbox.
        self._ops = GASolver(
            dim, seed, population=population, elite=0, tournament=tournament, cxpb=cxpb, eta_cx=eta_cx,
            mutpb=mutpb, eta_mut=eta_mut, indpb=indpb, top_fraction=top_fraction,
        )  # fmt: skip
        super().__init__(
            dim, seed, population=population, tournament=tournament, cxpb=cxpb, eta_cx=eta_cx, mutpb=mutpb,
            eta_mut=eta_mut, indpb=indpb, top_fraction=top_fraction, cohort=cohort, replacement=replacement,
            report_every=report_every,
        )  # fmt: skip
        self.population, self.cxpb, self.mutpb = int(population), float(cxpb), float(mutpb)
        self.top = max(1, int(round(top_fraction * self.population)))
        self.cohort = int(cohort or population)
        self.report_every = int(report_every or population)
        self.replacement = replacement
        seed_py = int(rngmod.stream(self.seed, SOLVER_STATE).integers(2**63))
        self._py_state = random.Random(seed_py).getstate()
        self.created = 0  # candidates bred so far (= index of the next one)
        self._window: deque = deque(maxlen=self.population) if replacement == "oldest" else deque()
        self._inflight: dict[int, tuple[np.ndarray, int]] = {}  # candidate -> (z, seed), submitted, not back
        self._block: list[tuple[int, np.ndarray, float, int, int]] = []  # completed since the last report

    @contextmanager
    def _own_random(self) -> Iterator[None]:
        # DEAP draws from the global `random`; swap in the solver's own state around it.
        outside = random.getstate()
        random.setstate(self._py_state)
        try:
            yield
        finally:
            self._py_state = random.getstate()
            random.setstate(outside)

    def seed_of(self, k: int) -> int:
        """Evaluation seed of candidate ``k``: that of its cohort (a function of ``k`` only)."""
        return rngmod.generation_seed(self.seed, k // self.cohort)

    def _breed(self) -> np.ndarray:
        with self._own_random():
            if self.created < self.population or len(self._window) < 2:
                return np.array([random.random() for _ in range(self.dim)])
            pop = []
            for _, z, s in self._window:
                ind = creator.QgfIndividual(z.tolist())
                ind.fitness.values = (s if np.isfinite(s) else np.inf,)
                pop.append(ind)
            tb = self._ops.toolbox
            a, b = (tb.clone(ind) for ind in tb.select(pop, 2))
            if random.random() < self.cxpb:
                tb.mate(a, b)
            if random.random() < self.mutpb:
                tb.mutate(a)
        return np.clip(np.array(a, dtype=np.float64), 0.0, 1.0)

    def _add(self, k: int, z: np.ndarray, score: float) -> None:
        self._window.append((k, z, score))
        if self.replacement == "worst" and len(self._window) > self.population:
            worst = max(range(len(self._window)), key=lambda i: (_key(self._window[i][2]), -self._window[i][0]))
            del self._window[worst]

    def _top(self) -> np.ndarray:
        items = sorted(self._window, key=lambda t: (_key(t[2]), t[0]))
        return np.array([z for _, z, _ in items[: self.top]])

    def recommend(self) -> np.ndarray:
        """Mean of the best ``top_fraction`` of the window (cube centre before any result)."""
        return self._top().mean(axis=0) if self._window else np.full(self.dim, 0.5)

    def history_extra(self) -> dict:
        """Spread of the top of the window and the number of candidates in flight."""
        spread = float(self._top().std(axis=0).mean()) if self._window else float("nan")
        return {"top_spread": spread, "in_flight": len(self._inflight)}

    def _submit(self, ev: Any, problem: Any, k: int, z: np.ndarray, seed: int) -> None:
        self._inflight[k] = (z, seed)
        ev.submit(problem, z[None, :], seed, key=k)

    def run(self, problem: Any, budget: int, evaluator: Any = None, callback: Callback | None = None) -> SolverResult:
        """Breed, submit and absorb results one at a time until ``budget`` candidates are scored."""
        from ..evaluate import SerialEvaluator, as_async

        if budget <= 0:
            raise ValueError("budget must be positive")
        t0 = time.perf_counter()
        ev = as_async(evaluator or SerialEvaluator())
        # More in flight than a population breeds children from ever staler windows; fewer
        # than one per rank leaves ranks idle.
        slots = max(1, min(int(ev.slots), max(self.population, int(getattr(ev, "size", 1)))))
        parallel = getattr(ev, "size", 1) > 1
        for k in sorted(self._inflight):  # candidates in flight at the checkpoint go first
            self._submit(ev, problem, k, *self._inflight[k])
        while not self.stopped:
            while len(self._inflight) < slots and self.created < budget:
                k = self.created
                self._submit(ev, problem, k, self._breed(), self.seed_of(k))
                self.created += 1
            if not self._inflight:
                break
            k, scores, worker = ev.wait_one(problem)
            z, seed = self._inflight.pop(k)
            score = float(np.asarray(scores)[0])
            self._add(k, z, score)
            self.evaluations += 1
            self._block.append((k, z, score, seed, int(worker)))
            if len(self._block) >= self.report_every or (not self._inflight and self.created >= budget):
                self._report(callback, parallel)
        return SolverResult(
            z=self.recommend(),
            evaluations=self.evaluations,
            generations=self.generation,
            converged=False,
            message="stopped by callback" if self.stopped else "budget exhausted",
            wall_time_s=time.perf_counter() - t0,
        )

    def _report(self, callback: Callback | None, parallel: bool) -> None:
        block, self._block = self._block, []
        self.generation += 1
        cand = np.array([b[0] for b in block])
        seeds = np.array([b[3] for b in block], dtype=np.int64)
        info = SteadyProgress(
            generation=self.generation,
            evaluations=self.evaluations,
            Z=np.array([b[1] for b in block]),
            scores=np.array([b[2] for b in block]),
            seed=int(seeds[-1]),
            recommendation=self.recommend(),
            extra=self.history_extra(),
            workers=np.array([b[4] for b in block]) if parallel else None,
            seeds=seeds,
            candidates=cand,
        )
        if callback is not None and callback(self, info):
            self.stopped = True

    def state_dict(self) -> dict:
        """Window, candidates in flight, counters and the private `random` state; picklable."""
        return {
            "generation": self.generation,
            "evaluations": self.evaluations,
            "seed": self.seed,
            "created": self.created,
            "py_random": self._py_state,
            "window": [(k, z.copy(), s) for k, z, s in self._window],
            "inflight": {k: (z.copy(), s) for k, (z, s) in self._inflight.items()},
            "block": list(self._block),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore from ``state_dict()``; candidates that were in flight are submitted again."""
        self.generation, self.evaluations = int(state["generation"]), int(state["evaluations"])
        self.created = int(state["created"])
        self._py_state = state["py_random"]
        self._window.clear()
        self._window.extend((int(k), np.asarray(z, dtype=np.float64), float(s)) for k, z, s in state["window"])
        self._inflight = {int(k): (np.asarray(z, dtype=np.float64), int(s)) for k, (z, s) in state["inflight"].items()}
        self._block = list(state.get("block", []))


def _key(score: float) -> float:
    # A failed evaluation (NaN) ranks last.
    return score if np.isfinite(score) else np.inf
