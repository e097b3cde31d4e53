"""Measured data: the EventSet container and its .npz file format (other formats: data_io.py).

File format (``.npz``, what users produce from their own measurements):

- ``events``          (N, n_obs) float64 -- detector-level events after selection
- ``xsec_total``      (n_xsec,)  float64 -- measured total cross section(s): one per observable
                                            for the 1D proxy (independent densities), a single
                                            one for a joint 2D density (proxy2d, duke_owens)
- ``xsec_total_err``  (n_xsec,)  float64 -- their uncertainties (> 0)
- ``truth``           (d,)       float64 -- optional: physical parameters of a closure test
- ``n_generated``     ()         int     -- optional: events before selection (enables the
                                            extended term; without it the yield is profiled)
- ``meta``            ()         str     -- optional: JSON with anything else (env, seed, ...)

Several experiments (an env with ``[[experiments]]``, e.g. proton and neutron DIS): the data
are a :class:`MultiEventSet`, one EventSet per experiment, by the experiment's ``name``. On disk
(our choice, one file that a run directory can hold):

- one ``.npz`` with the arrays above under per-experiment keys ``"<name>/events"``,
  ``"<name>/xsec_total"``, ... (``MultiEventSet.save`` writes it; ``truth`` is shared);
- or, on the command line, one file per experiment, comma-separated in the env's experiment
  order: ``--data proton.root,neutron.root`` (any format data_io reads, formats may differ).
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field

import numpy as np

from .errors import DataError

REQUIRED = ("events", "xsec_total", "xsec_total_err")


@dataclass
class EventSet:
    """Measured events with their total cross sections (and truth when it is a closure test)."""

    events: np.ndarray
    xsec_total: np.ndarray
    xsec_total_err: np.ndarray
    truth: np.ndarray | None = None
    n_generated: int | None = None
    meta: dict = field(default_factory=dict)

    @property
    def n_events(self) -> int:
        """Number of selected events."""
        return int(self.events.shape[0])

    @property
    def n_obs(self) -> int:
        """Number of observables per event."""
        return int(self.events.shape[1])

    def validate(self, source: str = "data") -> EventSet:
        """Check shapes and values; raise DataError naming the first problem."""
        ev, xs, er = self.events, self.xsec_total, self.xsec_total_err
        if ev.ndim != 2 or ev.shape[0] == 0:
            raise DataError(f"{source}: 'events' must be a non-empty (N, n_obs) array; got shape {ev.shape}")
        if not np.all(np.isfinite(ev)):
            raise DataError(f"{source}: 'events' contains NaN or infinite values")
        n_obs = ev.shape[1]
        # One total per observable (1D proxy) or one joint total (2D theories); the Problem
        # checks which one its theory has.
        if xs.shape not in ((n_obs,), (1,)):
            raise DataError(f"{source}: 'xsec_total' must have shape ({n_obs},) to match events; got {xs.shape}")
        if er.shape != xs.shape:
            raise DataError(f"{source}: 'xsec_total_err' must have shape {xs.shape}; got {er.shape}")
        for name, arr in (("xsec_total", xs), ("xsec_total_err", er)):
            if not np.all(np.isfinite(arr)):
                raise DataError(f"{source}: '{name}' contains NaN or infinite values")
        if np.any(er <= 0):
            raise DataError(f"{source}: 'xsec_total_err' must be positive")
        if self.truth is not None and not np.all(np.isfinite(self.truth)):
            raise DataError(f"{source}: 'truth' contains NaN or infinite values")
        if self.n_generated is not None and self.n_generated < ev.shape[0]:
            raise DataError(f"{source}: 'n_generated' ({self.n_generated}) is smaller than the number of events")
        return self

    def save(self, path: str | os.PathLike) -> None:
        """Write the documented .npz format atomically."""
        path = os.fspath(path)
        tmp = path + ".tmp.npz"
        np.savez(tmp, **self.arrays())
        os.replace(tmp, path)

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays of the .npz format, by name."""
        arrays = {"events": self.events, "xsec_total": self.xsec_total, "xsec_total_err": self.xsec_total_err}
        if self.truth is not None:
            arrays["truth"] = self.truth
        if self.n_generated is not None:
            arrays["n_generated"] = np.int64(self.n_generated)
        arrays["meta"] = np.array(json.dumps(self.meta, sort_keys=True))
        return arrays


@dataclass
class MultiEventSet:
    """Measured data of several experiments, by experiment name (insertion order = env order).

    Mirrors the parts of EventSet that code outside the Problem reads: ``n_events`` (all
    experiments), ``n_obs`` (observable columns of all experiments together, so that the
    Problem's discrepancy features have 2 n_obs entries), ``truth`` (shared), ``meta``, ``save``.
    """

    sets: dict[str, EventSet]
    meta: dict = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """Experiment names."""
        return list(self.sets)

    @property
    def n_events(self) -> int:
        """Selected events of all experiments."""
        return sum(es.n_events for es in self.sets.values())

    @property
    def n_obs(self) -> int:
        """Observable columns of all experiments together."""
        return sum(es.n_obs for es in self.sets.values())

    @property
    def truth(self) -> np.ndarray | None:
        """The closure truth (the experiments' truths must agree)."""
        return next(iter(self.sets.values())).truth

    def validate(self, source: str = "data") -> MultiEventSet:
        """Validate every experiment's set; their truths must agree."""
        if not self.sets:
            raise DataError(f"{source}: no experiments")
        for name, es in self.sets.items():
            es.validate(f"{source} [{name}]")
        truths = [es.truth for es in self.sets.values()]
        if any((t is None) != (truths[0] is None) for t in truths) or any(
            t is not None and (t.shape != truths[0].shape or not np.array_equal(t, truths[0])) for t in truths
        ):
            raise DataError(f"{source}: the experiments' 'truth' arrays differ")
        return self

    def save(self, path: str | os.PathLike) -> None:
        """One .npz with per-experiment keys "<name>/<array>" (module doc), written atomically."""
        path = os.fspath(path)
        tmp = path + ".tmp.npz"
        arrays: dict[str, np.ndarray] = {}
        for name, es in self.sets.items():
            arrays.update({f"{name}/{k}": v for k, v in es.arrays().items()})
        arrays["meta"] = np.array(json.dumps({**self.meta, "experiments": self.names}, sort_keys=True))
        np.savez(tmp, **arrays)
        os.replace(tmp, path)


def load_npz(path: str | os.PathLike) -> EventSet | MultiEventSet:
    """Read and validate a measured-data .npz; DataError with one line on any problem.

    A file with per-experiment keys ("<name>/events", ...) gives a MultiEventSet.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"data file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as f:
            contents = {k: f[k] for k in f.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc.__class__.__name__})") from None
    prefixes = list(dict.fromkeys(k.split("/", 1)[0] for k in contents if "/" in k))
    if prefixes:
        sets = {
            n: eventset_from_arrays({k.split("/", 1)[1]: v for k, v in contents.items() if k.startswith(n + "/")},
                                    f"{path} [{n}]")
            for n in prefixes
        }  # fmt: skip
        meta = _meta(contents, path)
        meta.pop("experiments", None)
        return MultiEventSet(sets, meta).validate(path)
    return eventset_from_arrays(contents, path)


def _meta(contents: dict, source: str) -> dict:
    try:
        return json.loads(str(contents["meta"])) if "meta" in contents else {}
    except ValueError as exc:
        raise DataError(f"{source}: an array has the wrong type ({exc})") from None


def eventset_from_arrays(contents: dict, source: str) -> EventSet:
    """A validated EventSet from the documented arrays (by name); DataError naming the problem."""
    missing = [k for k in REQUIRED if k not in contents]
    if missing:
        raise DataError(f"{source}: missing required array(s) {', '.join(missing)} (see quantom_gf.data)")
    try:
        events = np.asarray(contents["events"], dtype=np.float64)
        xs = np.asarray(contents["xsec_total"], dtype=np.float64).reshape(-1)
        er = np.asarray(contents["xsec_total_err"], dtype=np.float64).reshape(-1)
        truth = np.asarray(contents["truth"], dtype=np.float64).reshape(-1) if "truth" in contents else None
        n_gen = int(contents["n_generated"]) if "n_generated" in contents else None
        meta = json.loads(str(contents["meta"])) if "meta" in contents else {}
    except (TypeError, ValueError) as exc:
        raise DataError(f"{source}: an array has the wrong type ({exc})") from None
    return EventSet(events, xs, er, truth, n_gen, meta).validate(source)


def _main(argv: list[str] | None = None) -> int:
    """python -m quantom_gf.data make --env NAME --out FILE [--n-events N] [--seed S] [--truth ...]"""
    import argparse

    from .build import build_problem, make_measured
    from .errors import ConfigError

    ap = argparse.ArgumentParser(prog="python -m quantom_gf.data", description="Measured-data files.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make", help="generate synthetic measured data at a truth (a closure-test data set)")
    mk.add_argument("--env", default="proxy1d-detector", help="env preset name or path")
    mk.add_argument("--out", required=True, help="output .npz file")
    mk.add_argument("--n-events", type=int, default=None, help="events generated (before selection)")
    mk.add_argument("--seed", type=int, default=None, help="data seed")
    mk.add_argument("--truth", type=float, nargs="+", default=None, help="physical parameters (default: env truth)")
    chk = sub.add_parser("check", help="validate a data file and print a summary")
    chk.add_argument("file")
    args = ap.parse_args(argv)
    if args.cmd == "check":
        from .data_io import load_data

        loaded = load_data(args.file)
        sets = loaded.sets if hasattr(loaded, "sets") else {"": loaded}  # (run as __main__: other classes)
        for name, es in sets.items():
            label = f"{args.file}" + (f" [{name}]" if name else "")
            print(f"{label}: {es.n_events} events x {es.n_obs} observables; xsec_total {es.xsec_total.tolist()}")
        return 0
    problem = build_problem(args.env)
    if args.truth is not None and len(args.truth) != problem.dim:
        raise ConfigError(f"--truth needs {problem.dim} values ({', '.join(problem.space.names)})")
    if not args.out.endswith(".npz"):
        raise ConfigError("--out must end in .npz")
    cfgs = problem.config["experiments"] if problem.multi else [problem.config]
    sets, lines = {}, []
    for exp, cfg in zip(problem.experiments, cfgs):
        dcfg = dict(cfg["data"])
        n = args.n_events if args.n_events is not None else dcfg.get("n_events", 100_000)
        seed = args.seed if args.seed is not None else dcfg.get("seed", 1)
        if seed < 0:
            raise ConfigError("--seed must be non-negative")
        es = make_measured(exp, problem.space, args.truth, n, seed, dcfg.get("xsec_rel_err"))
        es.meta["env"] = problem.name
        sets[exp.name] = es
        where = f"{args.out} [{exp.name}]" if problem.multi else args.out
        lines.append(f"wrote {where}: {es.n_events} of {n} events pass the selection")
    out = MultiEventSet(sets, {"env": problem.name}) if problem.multi else next(iter(sets.values()))
    out.save(args.out)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    import sys

    from .cli import guarded

    sys.exit(guarded(_main)())
