"""Experiment (theory -> sampler -> detector -> selection) + objective -> Problem.evaluate."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from . import rng as rngmod
from .data import EventSet
from .detector import Detector
from .objectives import Objective, SimBatch
from .params import ParameterSpace
from .sampling import Sampler
from .selection import RectangularSelection
from .theory import Theory

# Members per chunk are chosen so one chunk's events stay near this many bytes (peak memory).
CHUNK_BYTES = 32 * 2**20


@dataclass
class Experiment:
    """One measurement's forward model: the stages a parameter vector flows through."""

    theory: Theory
    sampler: Sampler
    detector: Detector
    selection: RectangularSelection
    n_events: int
    name: str = "experiment"

    def __post_init__(self) -> None:
        self._noise: OrderedDict = OrderedDict()

    def noise(self, seed: int, measured: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """The random numbers of one seed: sampler uniforms and detector draws (cached)."""
        key = (int(seed), measured, self.n_events)
        if key not in self._noise:
            ps, pd = (
                (rngmod.DATA_SAMPLER, rngmod.DATA_DETECTOR) if measured else (rngmod.SIM_SAMPLER, rngmod.SIM_DETECTOR)
            )
            u = self.sampler.draw(rngmod.stream(seed, ps), self.n_events, self.theory.n_obs)
            d = self.detector.draw(rngmod.stream(seed, pd), self.n_events)
            self._noise[key] = (u, d)
            while len(self._noise) > 2:
                self._noise.popitem(last=False)
        return self._noise[key]

    def simulate(self, params: np.ndarray, seed: int, measured: bool = False) -> SimBatch:
        """Physical parameters (P, d) -> detector-level events, selection mask and totals."""
        dens = self.theory.densities(params)
        totals = self.theory.totals(dens)
        u, d = self.noise(seed, measured)
        events, valid = self.sampler.sample(self.theory.edges, dens, u)
        events = self.detector.apply(events, d)
        mask = self.selection.mask(events)
        return SimBatch(events, mask, np.where(valid[:, None], totals, 0.0), valid, self.n_events)


class Problem:
    """Population in the unit cube -> scores. The one call every solver and evaluator uses."""

    def __init__(
        self,
        space: ParameterSpace,
        experiment: Experiment,
        objective: Objective,
        data: EventSet,
        name: str = "problem",
        config: dict | None = None,
    ) -> None:
        self.space, self.experiment, self.objective, self.data = space, experiment, objective, data
        self.name, self.config = name, config or {}
        if data.n_obs != experiment.theory.n_obs:
            from .errors import DataError

            raise DataError(
                f"data has {data.n_obs} observables per event but env '{name}' expects {experiment.theory.n_obs}"
            )
        objective.fit(data)
        per_member = experiment.n_events * experiment.theory.n_obs * 8
        self.chunk = max(1, CHUNK_BYTES // per_member)

    @property
    def dim(self) -> int:
        """Number of parameters d."""
        return self.space.dim

    def evaluate(self, Z: np.ndarray, seed: int) -> np.ndarray:
        """Scores (P,) for a population Z (P, d) in the unit cube; same seed, same random numbers."""
        Z = self.space.check_population(Z)
        params = self.space.to_physical(Z)
        out = np.empty(Z.shape[0])
        for a in range(0, Z.shape[0], self.chunk):
            sim = self.experiment.simulate(params[a : a + self.chunk], seed)
            out[a : a + self.chunk] = self.objective(sim)
        return out

    def features(self, Z: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores (P,) and discrepancy features (P, 2 n_obs): totals' pulls and mean shifts."""
        Z = self.space.check_population(Z)
        params = self.space.to_physical(Z)
        scores, feats = np.empty(Z.shape[0]), np.empty((Z.shape[0], 2 * self.data.n_obs))
        mean_d, std_d = self.data.events.mean(axis=0), self.data.events.std(axis=0) + 1e-12
        for a in range(0, Z.shape[0], self.chunk):
            sl = slice(a, a + self.chunk)
            sim = self.experiment.simulate(params[sl], seed)
            scores[sl] = self.objective(sim)
            pulls = (sim.totals - self.data.xsec_total) / self.data.xsec_total_err
            ev = np.where(sim.mask[..., None], sim.events, 0.0)
            cnt = np.maximum(sim.mask.sum(axis=1), 1)[:, None]
            shift = (ev.sum(axis=1) / cnt - mean_d) / std_d
            feats[sl] = np.concatenate([np.tanh(pulls / 10.0), np.tanh(shift)], axis=1)
        return scores, feats

    def simulate(self, Z: np.ndarray, seed: int) -> SimBatch:
        """Synthetic events of a (small) population, for plots and checks."""
        Z = self.space.check_population(Z)
        return self.experiment.simulate(self.space.to_physical(Z), seed)
