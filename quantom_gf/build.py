"""Build a Problem from an env preset: stages by name, measured data from a file or generated.

An env with ``[[experiments]]`` tables builds one Experiment per table (several measurements
sharing the parameters, e.g. proton and neutron DIS). The env's top-level stage sections
(``theory``, ``sampler``, ``detector``, ``selection``, ``simulation``, ``data``, ``objective``)
are the defaults every experiment starts from; a table's own sections are merged over them
(a new stage ``name`` replaces that stage's settings). Each table needs a ``name``. The
"luminosity" of an experiment is its ``[data] n_events`` (events generated at the truth:
luminosity x total cross section), so experiments can differ in statistics.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from . import rng as rngmod
from .config import build, check_keys, load_preset
from .data import EventSet, MultiEventSet
from .data_io import load_data
from .detector import DETECTORS
from .errors import ConfigError, DataError
from .objectives import OBJECTIVES
from .params import ParameterSpace
from .problem import Experiment, Problem
from .sampling import SAMPLERS
from .selection import RectangularSelection
from .theory import THEORIES, Grid2D

ENV_SECTIONS = {
    "name", "source", "description", "theory", "parameters", "sampler", "detector",
    "selection", "simulation", "data", "objective", "experiments",
}  # fmt: skip
STAGES = ("theory", "sampler", "detector", "selection", "simulation", "data", "objective")
DATA_GEN_KEYS = {"n_events", "seed", "xsec_rel_err"}
# Reading measured data from a file (quantom_gf.data_io): the file, and the column mapping.
DATA_IO_KEYS = {"file", "observables", "tree", "xsec_total", "xsec_total_err", "n_generated"}


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
    exp = dataclasses.replace(experiment, n_events=int(n_events))
    sim = exp.simulate(truth[None, :], seed, measured=True)
    if not sim.valid[0]:
        raise ConfigError("the truth's cross sections cannot be normalised")
    events = np.ascontiguousarray(sim.events[0][sim.mask[0]])
    exact = sim.totals[0]
    err = np.abs(exact) * rel
    measured_tot = exact + err * rngmod.stream(seed, rngmod.DATA_XSEC, exp.index).standard_normal(exact.shape)
    meta = {"seed": int(seed), "xsec_rel_err": rel, "xsec_exact": exact.tolist()}
    return EventSet(events, measured_tot, err, np.array(truth), int(n_events), meta).validate("generated data")


def _selection(scfg: dict) -> tuple[RectangularSelection, dict]:
    check_keys(scfg, {"lower", "upper"}, "[selection]")
    try:
        sel = RectangularSelection(**scfg)
    except ValueError as exc:
        raise ConfigError(f"[selection]: {exc}") from None
    return sel, sel.to_dict()


def _experiment(cfg: dict, name: str, index: int, where: str) -> tuple[Experiment, dict, dict, Any, dict]:
    """One Experiment from a config's stage sections: (experiment, resolved stages, data cfg, objective, r_obj)."""
    theory, r_theory = build(THEORIES, cfg.get("theory"), f"{where}theory")
    default_sampler = "loits" if isinstance(theory.grid, Grid2D) else "inverse_cdf"
    sampler, r_sampler = build(SAMPLERS, cfg.get("sampler"), f"{where}sampler", default=default_sampler)
    detector, r_detector = build(DETECTORS, cfg.get("detector"), f"{where}detector", default="none")
    selection, r_selection = _selection(dict(cfg.get("selection", {})))
    sim_cfg = dict(cfg.get("simulation", {}))
    check_keys(sim_cfg, {"n_events"}, f"[{where}simulation]")
    n_sim = int(sim_cfg.get("n_events", 100_000))
    if n_sim <= 0:
        raise ConfigError(f"[{where}simulation] n_events must be positive; got {n_sim}")
    experiment = Experiment(theory, sampler, detector, selection, n_sim, name=name, index=index)
    dcfg = dict(cfg.get("data", {}))
    check_keys(dcfg, DATA_GEN_KEYS | DATA_IO_KEYS, f"[{where}data]")
    objective, r_objective = build(OBJECTIVES, cfg.get("objective"), f"{where}objective", default="binned_likelihood")
    resolved = {
        "theory": r_theory,
        "sampler": r_sampler,
        "detector": r_detector,
        "selection": r_selection,
        "simulation": {"n_events": n_sim},
    }
    return experiment, resolved, dcfg, objective, r_objective


def _io_options(dcfg: dict, theory: Any) -> dict:
    """load_data's mapping options from a [data] section (default observables: the theory's names)."""
    opts = {k: dcfg[k] for k in ("observables", "tree", "xsec_total", "xsec_total_err", "n_generated") if k in dcfg}
    opts.setdefault("observables", list(theory.observables))
    return opts


def _space(theory: Any, pcfg: dict) -> ParameterSpace:
    space = theory.parameter_space()
    check_keys(pcfg, {"truth", "lower", "upper"}, "[parameters]")
    if pcfg:
        space = ParameterSpace(
            space.names, pcfg.get("lower", space.lower), pcfg.get("upper", space.upper), pcfg.get("truth", space.truth)
        )
    return space


def _with_truth(space: ParameterSpace, eventset: EventSet | MultiEventSet, given: bool, name: str):
    if eventset.truth is not None:
        if eventset.truth.shape != (space.dim,):
            raise DataError(f"data: 'truth' has {eventset.truth.size} values; env '{name}' has {space.dim} parameters")
        return space.with_truth(eventset.truth)
    if given:
        return space.with_truth(None)  # real data: no truth to compare with
    return space


def build_problem(
    env: str | dict,
    data: str | EventSet | MultiEventSet | None = None,
    data_seed: int | None = None,
    overrides: dict | None = None,
) -> Problem:
    """A Problem from an env preset (name, path or dict) and measured data (file, EventSet, or generated).

    ``data``: a path (any format of quantom_gf.data_io; several experiments: one file with
    per-experiment keys/groups, or comma-separated files in experiment order), an EventSet or
    MultiEventSet, or None (the env's ``[data] file`` if it names one, else generated at the truth).
    """
    cfg = load_preset("envs", env) if isinstance(env, str) else dict(env)
    if overrides:
        from .config import _merge

        cfg = _merge(cfg, overrides)
    name = cfg.get("name", "env")
    check_keys(cfg, ENV_SECTIONS, f"env '{name}'")
    if "experiments" in cfg:
        return _build_multi(cfg, name, data, data_seed)
    experiment, stages, dcfg, objective, r_objective = _experiment(cfg, name, 0, "")
    theory = experiment.theory
    space = _space(theory, dict(cfg.get("parameters", {})))
    if data_seed is not None:
        dcfg["seed"] = int(data_seed)
    data = data if data is not None else dcfg.get("file")
    gen = {k: v for k, v in dcfg.items() if k in DATA_GEN_KEYS}
    if isinstance(data, EventSet):
        eventset, data_source = data.validate(), "given"
    elif data is not None:
        eventset, data_source = load_data(data, **_io_options(dcfg, theory)), str(data)
        if isinstance(eventset, MultiEventSet):
            raise DataError(f"{data}: holds several experiments but env '{name}' has one")
    else:
        eventset = make_measured(experiment, space, **gen)
        data_source = "generated"
    space = _with_truth(space, eventset, data is not None, name)
    resolved: dict[str, Any] = {
        "name": name,
        "description": cfg.get("description", ""),
        "theory": stages["theory"],
        "parameters": space.to_dict(),
        **{k: stages[k] for k in ("sampler", "detector", "selection", "simulation")},
        "data": {**dcfg, "source": data_source, "n_events_selected": eventset.n_events},
        "objective": r_objective,
    }
    return Problem(space, experiment, objective, eventset, name=name, config=resolved)


def _build_multi(cfg: dict, name: str, data: Any, data_seed: int | None) -> Problem:
    """Several experiments sharing the parameters (module doc)."""
    from .config import _merge

    tables = cfg["experiments"]
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"env '{name}': 'experiments' must be a list of tables ([[experiments]])")
    defaults = {k: cfg[k] for k in STAGES if k in cfg}
    exps, objs, dcfgs, resolved_exps, names = [], [], [], [], []
    for k, table in enumerate(tables):
        ename = table.get("name")
        if not isinstance(ename, str) or not ename or "/" in ename or "," in ename:
            raise ConfigError(f"env '{name}': experiment {k + 1} needs a 'name' (no '/' or ',')")
        if ename in names:
            raise ConfigError(f"env '{name}': two experiments are named '{ename}'")
        check_keys(table, {"name", *STAGES}, f"[[experiments]] '{ename}'")
        merged = _merge(defaults, {s: v for s, v in table.items() if s != "name"})
        exp, stages, dcfg, obj, r_obj = _experiment(merged, ename, k, f"experiments.{ename}.")
        if data_seed is not None:
            dcfg["seed"] = int(data_seed)
        names.append(ename)
        exps.append(exp)
        objs.append(obj)
        dcfgs.append(dcfg)
        resolved_exps.append({"name": ename, **stages, "data": dcfg, "objective": r_obj})
    space = _space(exps[0].theory, dict(cfg.get("parameters", {})))
    for e in exps[1:]:
        if e.theory.parameter_space().names != exps[0].theory.parameter_space().names:
            raise ConfigError(f"env '{name}': experiments '{names[0]}' and '{e.name}' fit different parameters")
    files = [d.get("file") for d in dcfgs]
    if data is None and any(files):
        if not all(files):
            raise ConfigError(f"env '{name}': [data] file is set for some experiments but not all")
        data = ",".join(files)
    if isinstance(data, MultiEventSet):
        mset, source = data.validate(), "given"
    elif data is not None:
        mset = load_data(data, experiments=names, **_io_options(dcfgs[0], exps[0].theory))
        source = str(data)
        if not isinstance(mset, MultiEventSet):
            raise DataError(f"{data}: holds one data set; env '{name}' has experiments {', '.join(names)}")
    else:
        sets = {
            e.name: make_measured(e, space, **{k: v for k, v in d.items() if k in DATA_GEN_KEYS})
            for e, d in zip(exps, dcfgs)
        }
        mset, source = MultiEventSet(sets), "generated"
    if set(mset.names) != set(names):
        raise DataError(f"data: experiments {', '.join(mset.names)} do not match env '{name}': {', '.join(names)}")
    mset = MultiEventSet({n: mset.sets[n] for n in names}, mset.meta)
    space = _with_truth(space, mset, data is not None, name)
    for r, es in zip(resolved_exps, mset.sets.values()):
        r["data"] = {**r["data"], "source": source, "n_events_selected": es.n_events}
    resolved = {
        "name": name,
        "description": cfg.get("description", ""),
        "parameters": space.to_dict(),
        "experiments": resolved_exps,
    }
    return Problem(space, exps, objs, mset, name=name, config=resolved)
