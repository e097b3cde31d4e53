"""Build a Problem from an env preset: stages by name, measured data from a file or generated."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import rng as rngmod
from .config import build, check_keys, load_preset
from .data import EventSet, load_npz
from .detector import DETECTORS
from .errors import ConfigError, DataError
from .objectives import OBJECTIVES
from .params import ParameterSpace
from .problem import Experiment, Problem
from .sampling import SAMPLERS
from .selection import RectangularSelection
from .theory import THEORIES

ENV_SECTIONS = {
    "name", "source", "description", "theory", "parameters", "sampler", "detector",
    "selection", "simulation", "data", "objective",
}  # fmt: skip


def make_measured(
    experiment: Experiment,
    space: ParameterSpace,
    truth: np.ndarray | None = None,
    n_events: int = 100_000,
    seed: int = 1,
    xsec_rel_err: float | None = None,
) -> EventSet:
    """Synthetic "measured" data at ``truth`` (default: the space's truth), through the detector.

    The totals are fluctuated by their uncertainty, ``xsec_rel_err`` (default 1/sqrt(n_events),
    the statistical error of a yield of that size), so a closure test sees honest data.
    """
    truth = space.truth if truth is None else np.asarray(truth, dtype=np.float64)
    if truth is None:
        raise ConfigError("make_measured needs a truth: the env has none and none was given")
    if n_events <= 0:
        raise ConfigError(f"data n_events must be positive; got {n_events}")
    rel = 1.0 / np.sqrt(n_events) if xsec_rel_err is None else float(xsec_rel_err)
    exp = Experiment(experiment.theory, experiment.sampler, experiment.detector, experiment.selection, int(n_events))
    sim = exp.simulate(truth[None, :], seed, measured=True)
    if not sim.valid[0]:
        raise ConfigError("the truth's cross sections cannot be normalised")
    events = np.ascontiguousarray(sim.events[0][sim.mask[0]])
    exact = sim.totals[0]
    err = np.abs(exact) * rel
    measured_tot = exact + err * rngmod.stream(seed, rngmod.DATA_XSEC).standard_normal(exact.shape)
    meta = {"seed": int(seed), "xsec_rel_err": rel, "xsec_exact": exact.tolist()}
    return EventSet(events, measured_tot, err, np.array(truth), int(n_events), meta).validate("generated data")


def build_problem(
    env: str | dict,
    data: str | EventSet | None = None,
    data_seed: int | None = None,
    overrides: dict | None = None,
) -> Problem:
    """A Problem from an env preset (name, path or dict) and measured data (file, EventSet, or generated)."""
    cfg = load_preset("envs", env) if isinstance(env, str) else dict(env)
    if overrides:
        from .config import _merge

        cfg = _merge(cfg, overrides)
    name = cfg.get("name", "env")
    check_keys(cfg, ENV_SECTIONS, f"env '{name}'")
    theory, r_theory = build(THEORIES, cfg.get("theory"), "theory")
    space = theory.parameter_space()
    pcfg = dict(cfg.get("parameters", {}))
    check_keys(pcfg, {"truth", "lower", "upper"}, "[parameters]")
    if pcfg:
        space = ParameterSpace(
            space.names, pcfg.get("lower", space.lower), pcfg.get("upper", space.upper), pcfg.get("truth", space.truth)
        )
    sampler, r_sampler = build(SAMPLERS, cfg.get("sampler"), "sampler", default="inverse_cdf")
    detector, r_detector = build(DETECTORS, cfg.get("detector"), "detector", default="none")
    scfg = dict(cfg.get("selection", {}))
    check_keys(scfg, {"lower", "upper"}, "[selection]")
    selection = RectangularSelection(**scfg)
    sim_cfg = dict(cfg.get("simulation", {}))
    check_keys(sim_cfg, {"n_events"}, "[simulation]")
    n_sim = int(sim_cfg.get("n_events", 100_000))
    if n_sim <= 0:
        raise ConfigError(f"[simulation] n_events must be positive; got {n_sim}")
    experiment = Experiment(theory, sampler, detector, selection, n_sim, name=name)
    dcfg = dict(cfg.get("data", {}))
    check_keys(dcfg, {"n_events", "seed", "xsec_rel_err"}, "[data]")
    if data_seed is not None:
        dcfg["seed"] = int(data_seed)
    if isinstance(data, EventSet):
        eventset, data_source = data.validate(), "given"
    elif data is not None:
        eventset, data_source = load_npz(data), str(data)
    else:
        eventset = make_measured(experiment, space, **dcfg)
        data_source = "generated"
    if eventset.truth is not None:
        if eventset.truth.shape != (space.dim,):
            raise DataError(f"data: 'truth' has {eventset.truth.size} values; env '{name}' has {space.dim} parameters")
        space = space.with_truth(eventset.truth)
    elif data is not None:
        space = space.with_truth(None)  # real data: no truth to compare with
    objective, r_objective = build(OBJECTIVES, cfg.get("objective"), "objective", default="binned_likelihood")
    resolved: dict[str, Any] = {
        "name": name,
        "description": cfg.get("description", ""),
        "theory": r_theory,
        "parameters": space.to_dict(),
        "sampler": r_sampler,
        "detector": r_detector,
        "selection": {"lower": selection.lower, "upper": selection.upper},
        "simulation": {"n_events": n_sim},
        "data": {**dcfg, "source": data_source, "n_events_selected": eventset.n_events},
        "objective": r_objective,
    }
    return Problem(space, experiment, objective, eventset, name=name, config=resolved)
