"""Real-coded genetic algorithm on DEAP: tournament selection, bounded SBX, polynomial mutation, elitism.

The whole population, elites included, is scored in every generation: each generation has its
own random numbers, so an elite's old score cannot be ranked against new ones.

``frame="pca"`` (default) applies the coordinate-wise operators in the principal axes of the
better half of the population, scaled to a box of +-FRAME_SIGMAS standard deviations that the
bounded operators see as [0, 1]. On the raw cube coordinates (``frame="cube"``) SBX and
polynomial mutation cannot follow the narrow, correlated valleys of a PDF fit (N_u with a_u,
b_u; N_d with a_d, b_d): the population freezes early, often in a wrong basin. In the frame, the
steps follow the valley and shrink with the population, as in CMA-ES.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from deap import base, creator, tools

from .. import rng as rngmod
from .base import PopulationSolver

# Half-width of the operators' box around the better half, in standard deviations per principal axis.
FRAME_SIGMAS = 4.0

# deap.creator registers classes module-wide; create them once per process under our own names.
if not hasattr(creator, "QgfFitnessMin"):
    creator.create("QgfFitnessMin", base.Fitness, weights=(-1.0,))
if not hasattr(creator, "QgfIndividual"):
    creator.create("QgfIndividual", list, fitness=creator.QgfFitnessMin)


class GASolver(PopulationSolver):
    """Generational GA in [0, 1]^d; recommend the mean of the best ``top_fraction`` of the population."""

    name = "ga"

    def __init__(
        self,
        dim: int,
        seed: int = 0,
        *,
        population: int = 64,
        elite: int = 2,
        tournament: int = 2,
        cxpb: float = 0.9,
        eta_cx: float = 2.0,
        mutpb: float = 1.0,
        eta_mut: float = 5.0,
        indpb: float | None = None,
        top_fraction: float = 0.25,
        average: int = 20,
        frame: str = "pca",
    ) -> None:
        if population < 4 or not 0 <= elite < population or tournament < 1:
            raise ValueError(
                f"ga: need population >= 4, 0 <= elite < population, tournament >= 1; got {population}, "
                f"{elite}, {tournament}"
            )
        if not (0 <= cxpb <= 1 and 0 <= mutpb <= 1 and 0 < top_fraction <= 1 and eta_cx > 0 and eta_mut > 0):
            raise ValueError("ga: cxpb, mutpb in [0, 1], 0 < top_fraction <= 1, eta_cx and eta_mut > 0")
        if average < 1 or frame not in ("pca", "cube"):
            raise ValueError(f"ga: need average >= 1 and frame 'pca' or 'cube'; got {average}, {frame!r}")
        super().__init__(
            dim, seed, population=population, elite=elite, tournament=tournament, cxpb=cxpb, eta_cx=eta_cx,
            mutpb=mutpb, eta_mut=eta_mut, indpb=indpb, top_fraction=top_fraction, average=average,
            frame=frame,
        )  # fmt: skip
        self.population, self.elite, self.cxpb, self.mutpb = int(population), int(elite), float(cxpb), float(mutpb)
        self.frame = frame
        self.top = max(1, int(round(top_fraction * self.population)))
        self.toolbox = base.Toolbox()
        self.toolbox.register("mate", tools.cxSimulatedBinaryBounded, eta=float(eta_cx), low=0.0, up=1.0)
        p_gene = 1.0 / self.dim if indpb is None else float(indpb)
        self.toolbox.register("mutate", tools.mutPolynomialBounded, eta=float(eta_mut), low=0.0, up=1.0, indpb=p_gene)
        self.toolbox.register("select", tools.selTournament, tournsize=int(tournament))
        # DEAP draws from the global `random` module; the solver owns a private state and swaps
        # it in around every DEAP call, so runs are reproducible and resumable.
        seed_py = int(rngmod.stream(self.seed, rngmod.SOLVER_STATE).integers(2**63))
        self._py_state = random.Random(seed_py).getstate()
        with self._own_random():
            self._next = np.array([[random.random() for _ in range(self.dim)] for _ in range(self.population)])
        self._last_Z: np.ndarray | None = None
        self._last_scores: np.ndarray | None = None
        self._recent: deque = deque(maxlen=int(average))

    @contextmanager
    def _own_random(self) -> Iterator[None]:
        outside = random.getstate()
        random.setstate(self._py_state)
        try:
            yield
        finally:
            self._py_state = random.getstate()
            random.setstate(outside)

    def ask(self) -> np.ndarray:
        """The current population, elites included, (population, d)."""
        return self._next.copy()

    def tell(self, Z: np.ndarray, scores: np.ndarray) -> None:
        """Rank this generation, keep the elites, breed the rest by tournament, SBX and mutation."""
        Z, scores = np.asarray(Z, dtype=np.float64), np.asarray(scores, dtype=np.float64)
        self._last_Z, self._last_scores = Z.copy(), scores.copy()
        self._recent.append(self._top().mean(axis=0))
        frame = self._frame(Z, scores) if self.frame == "pca" else None
        genes = Z if frame is None else self._to_frame(Z, frame)
        pop = []
        for i, (g, s) in enumerate(zip(genes, scores)):
            ind = creator.QgfIndividual(g.tolist())
            # A failed evaluation (NaN) ranks last instead of poisoning comparisons.
            ind.fitness.values = (float(s) if np.isfinite(s) else np.inf,)
            ind.index = i
            pop.append(ind)
        tb = self.toolbox
        with self._own_random():
            elites = [ind.index for ind in tools.selBest(pop, self.elite)]
            offspring = [tb.clone(ind) for ind in tb.select(pop, self.population - self.elite)]
            for a, b in zip(offspring[::2], offspring[1::2]):
                if random.random() < self.cxpb:
                    tb.mate(a, b)
            for ind in offspring:
                if random.random() < self.mutpb:
                    tb.mutate(ind)
        children = np.array([list(ind) for ind in offspring], dtype=np.float64).reshape(-1, self.dim)
        if frame is not None:
            children = self._from_frame(children, frame)
        # Elites pass unchanged (no round trip through the frame); children are reflected into the cube.
        children = np.mod(children, 2.0)
        children = np.where(children > 1.0, 2.0 - children, children)
        self._next = np.concatenate([Z[elites], children])

    def _frame(self, Z: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Principal axes of the better half: centre, axes, half-widths of the box the operators see."""
        order = np.argsort(np.where(np.isfinite(scores), scores, np.inf), kind="stable")
        best = Z[order[: max(2, len(Z) // 2)]]
        centre = best.mean(axis=0)
        # Scatter about the whole population's mean, not the better half's: a consistent shift
        # of the better half stretches the frame along the direction of progress (as in CMA-ES).
        dev = best - Z.mean(axis=0)
        lam, axes = np.linalg.eigh(dev.T @ dev / len(best))
        lam = np.maximum(lam, max(lam.max(), 1e-300) * 1e-12 + 1e-30)
        return centre, axes, FRAME_SIGMAS * np.sqrt(lam)

    @staticmethod
    def _to_frame(Z: np.ndarray, frame: tuple) -> np.ndarray:
        centre, axes, half = frame
        return np.clip(0.5 + 0.5 * ((Z - centre) @ axes) / half, 0.0, 1.0)

    @staticmethod
    def _from_frame(U: np.ndarray, frame: tuple) -> np.ndarray:
        centre, axes, half = frame
        return centre + ((2.0 * U - 1.0) * half) @ axes.T

    def _top(self) -> np.ndarray:
        order = np.argsort(np.where(np.isfinite(self._last_scores), self._last_scores, np.inf), kind="stable")
        return self._last_Z[order[: self.top]]

    def recommend(self) -> np.ndarray:
        """Mean of the best ``top_fraction`` of the population, averaged over the last ``average`` generations.

        Each generation ranks under its own random numbers; averaging generations averages that
        jitter out. The cube's centre before the first generation.
        """
        if not self._recent:
            return np.full(self.dim, 0.5)
        return np.mean(np.array(self._recent), axis=0)

    def history_extra(self) -> dict:
        """Spread of the top of the population (mean standard deviation per coordinate)."""
        if self._last_Z is None:
            return {}
        return {"top_spread": float(self._top().std(axis=0).mean())}

    def state_dict(self) -> dict:
        """Population, last scores and the private `random` state; picklable."""
        return {
            **self._base_state(),
            "py_random": self._py_state,
            "next": self._next.copy(),
            "last_Z": None if self._last_Z is None else self._last_Z.copy(),
            "last_scores": None if self._last_scores is None else self._last_scores.copy(),
            "recent": [r.copy() for r in self._recent],
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore from ``state_dict()``."""
        self._load_base_state(state)
        self._py_state = state["py_random"]
        self._next = np.array(state["next"], dtype=np.float64)
        self._last_Z = None if state["last_Z"] is None else np.array(state["last_Z"], dtype=np.float64)
        self._last_scores = None if state["last_scores"] is None else np.array(state["last_scores"], dtype=np.float64)
        self._recent = deque((np.array(r, dtype=np.float64) for r in state["recent"]), maxlen=self._recent.maxlen)
