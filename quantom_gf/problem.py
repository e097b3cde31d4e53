"""Experiment (theory -> sampler -> detector -> selection) + objective -> Problem.evaluate.

A Problem holds one experiment, or several (``[[experiments]]`` in an env: e.g. proton and
neutron DIS) that share the parameters; each has its own stages, event count, measured data and
objective, and the Problem's score is the sum of the experiments' scores (independent data:
the log-likelihoods add). Experiment ``index`` k draws its random numbers from its own block
of every stream, so experiments never share numbers; index 0 is what a single experiment uses.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import rng as rngmod
from .data import EventSet, MultiEventSet
from .detector import Detector
from .objectives import WORST_SCORE, Objective, SimBatch
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
    index: int = 0  # block of the random streams (several experiments in one Problem)

    def __post_init__(self) -> None:
        self._noise: OrderedDict = OrderedDict()

    def noise(self, seed: int, measured: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """The random numbers of one seed: sampler uniforms and detector draws (cached)."""
        key = (int(seed), measured, self.n_events)
        if key not in self._noise:
            ps, pd = (
                (rngmod.DATA_SAMPLER, rngmod.DATA_DETECTOR) if measured else (rngmod.SIM_SAMPLER, rngmod.SIM_DETECTOR)
            )
            u = self.sampler.draw(rngmod.stream(seed, ps, self.index), self.n_events, self.theory.n_obs)
            d = self.detector.draw(rngmod.stream(seed, pd, self.index), self.n_events)
            self._noise[key] = (u, d)
            while len(self._noise) > 2:
                self._noise.popitem(last=False)
        return self._noise[key]

    def simulate(self, params: np.ndarray, seed: int, measured: bool = False) -> SimBatch:
        """Physical parameters (P, d) -> detector-level events, selection mask and totals."""
        dens = self.theory.densities(params)
        totals = self.theory.totals(dens)
        u, d = self.noise(seed, measured)
        events, valid = self.sampler.sample(self.theory.grid, dens, u)
        events = self.detector.apply(events, d)
        mask = self.selection.mask(events)
        return SimBatch(events, mask, np.where(valid[:, None], totals, 0.0), valid, self.n_events)


class ObjectiveSum:
    """The objectives of several experiments seen as one (what run/uq code reads off an objective)."""

    def __init__(self, objectives: Sequence[Objective]) -> None:
        self.objectives = list(objectives)
        self.is_likelihood = all(o.is_likelihood for o in self.objectives)

    @property
    def dof(self) -> int:
        """Sum of the experiments' degrees of freedom (each objective's ``dof``, 1 if it has none)."""
        return int(sum(getattr(o, "dof", 1) for o in self.objectives))


class Problem:
    """Population in the unit cube -> scores. The one call every solver and evaluator uses.

    ``experiment``, ``objective``, ``data``: one of each, or sequences of equal length (several
    experiments; ``data`` may also be a MultiEventSet in the experiments' order). With several,
    ``self.experiment`` is the first (its theory draws the PDF plots: the parameters are shared),
    ``self.objective`` an ObjectiveSum and ``self.data`` a MultiEventSet; ``experiments``,
    ``objectives`` and ``datasets`` are lists in every case.
    """

    def __init__(
        self,
        space: ParameterSpace,
        experiment: Experiment | Sequence[Experiment],
        objective: Objective | Sequence[Objective],
        data: EventSet | MultiEventSet | Sequence[EventSet],
        name: str = "problem",
        config: dict | None = None,
    ) -> None:
        from .errors import DataError

        multi = not isinstance(experiment, Experiment)
        self.experiments = list(experiment) if multi else [experiment]
        self.objectives = list(objective) if multi else [objective]
        if isinstance(data, MultiEventSet):
            self.datasets = list(data.sets.values())
        else:
            self.datasets = list(data) if multi else [data]
        if not (len(self.experiments) == len(self.objectives) == len(self.datasets) >= 1):
            raise DataError(f"env '{name}': {len(self.experiments)} experiments but {len(self.datasets)} data sets")
        self.space, self.name, self.config = space, name, config or {}
        self.multi = multi  # built from lists ([[experiments]]), even of one experiment
        self.experiment = self.experiments[0]
        if multi:
            self.objective = ObjectiveSum(self.objectives)
            names = [e.name for e in self.experiments]
            self.data = data if isinstance(data, MultiEventSet) else MultiEventSet(dict(zip(names, self.datasets)))
        else:
            self.objective, self.data = objective, data
        for e, d in zip(self.experiments, self.datasets):
            where = f"env '{name}'" if not multi else f"env '{name}' experiment '{e.name}'"
            if d.n_obs != e.theory.n_obs:
                raise DataError(f"data has {d.n_obs} observables per event but {where} expects {e.theory.n_obs}")
            if d.xsec_total.size != e.theory.n_xsec:
                raise DataError(f"data has {d.xsec_total.size} total cross sections but {where} has {e.theory.n_xsec}")
        for o, d in zip(self.objectives, self.datasets):
            o.fit(d)
        per_member = max(e.n_events * e.theory.n_obs * 8 for e in self.experiments)
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
        for k, (exp, obj) in enumerate(zip(self.experiments, self.objectives)):
            for a in range(0, Z.shape[0], self.chunk):
                sim = exp.simulate(params[a : a + self.chunk], seed)
                if k == 0:
                    out[a : a + self.chunk] = obj(sim)
                else:
                    out[a : a + self.chunk] += obj(sim)
        return np.minimum(out, WORST_SCORE) if self.multi else out

    def features(self, Z: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores (P,) and discrepancy features (P, 2 data.n_obs), each in [-1, 1].

        Per experiment, 2 n_obs features: tanh(pull/10) of its total cross sections (when a
        joint 2D density has fewer totals than observables, the remaining entries are the pull
        of the selected yield), then tanh of each observable's mean shift in data standard
        deviations; experiments one after the other.
        """
        Z = self.space.check_population(Z)
        params = self.space.to_physical(Z)
        scores = np.zeros(Z.shape[0])
        parts = []
        for exp, obj, data in zip(self.experiments, self.objectives, self.datasets):
            feats = np.empty((Z.shape[0], 2 * data.n_obs))
            mean_d, std_d = data.events.mean(axis=0), data.events.std(axis=0) + 1e-12
            for a in range(0, Z.shape[0], self.chunk):
                sl = slice(a, a + self.chunk)
                sim = exp.simulate(params[sl], seed)
                scores[sl] += obj(sim)
                pulls = (sim.totals - data.xsec_total) / data.xsec_total_err
                ev = np.where(sim.mask[..., None], sim.events, 0.0)
                cnt = np.maximum(sim.mask.sum(axis=1), 1)[:, None]
                if pulls.shape[1] < data.n_obs:
                    n_gen = data.n_generated if data.n_generated is not None else exp.n_events
                    expect = sim.mask.sum(axis=1) * (n_gen / exp.n_events)
                    yp = (expect - data.n_events) / np.sqrt(max(data.n_events, 1))
                    pulls = np.concatenate([pulls, np.repeat(yp[:, None], data.n_obs - pulls.shape[1], axis=1)], 1)
                shift = (ev.sum(axis=1) / cnt - mean_d) / std_d
                feats[sl] = np.concatenate([np.tanh(pulls / 10.0), np.tanh(shift)], axis=1)
            parts.append(feats)
        if self.multi:
            scores = np.minimum(scores, WORST_SCORE)
        return scores, (parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1))

    def simulate(self, Z: np.ndarray, seed: int, index: int = 0) -> SimBatch:
        """Synthetic events of a (small) population in experiment ``index``, for plots and checks."""
        Z = self.space.check_population(Z)
        return self.experiments[index].simulate(self.space.to_physical(Z), seed)
