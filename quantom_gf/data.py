"""Measured data: the EventSet container and its .npz file format.

File format (``.npz``, what users produce from their own measurements):

- ``events``          (N, n_obs) float64 -- detector-level events after selection
- ``xsec_total``      (n_obs,)   float64 -- measured total cross section per observable
- ``xsec_total_err``  (n_obs,)   float64 -- their uncertainties (> 0)
- ``truth``           (d,)       float64 -- optional: physical parameters of a closure test
- ``n_generated``     ()         int     -- optional: events before selection (enables the
                                            extended term; without it the yield is profiled)
- ``meta``            ()         str     -- optional: JSON with anything else (env, seed, ...)
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
        for name, arr in (("xsec_total", xs), ("xsec_total_err", er)):
            if arr.shape != (n_obs,):
                raise DataError(f"{source}: '{name}' must have shape ({n_obs},) to match events; got {arr.shape}")
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
        arrays = {"events": self.events, "xsec_total": self.xsec_total, "xsec_total_err": self.xsec_total_err}
        if self.truth is not None:
            arrays["truth"] = self.truth
        if self.n_generated is not None:
            arrays["n_generated"] = np.int64(self.n_generated)
        arrays["meta"] = np.array(json.dumps(self.meta, sort_keys=True))
        np.savez(tmp, **arrays)
        os.replace(tmp, path)


def load_npz(path: str | os.PathLike) -> EventSet:
    """Read and validate a measured-data .npz; DataError with one line on any problem."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"data file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as f:
            contents = {k: f[k] for k in f.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc.__class__.__name__})") from None
    missing = [k for k in REQUIRED if k not in contents]
    if missing:
        raise DataError(f"{path}: missing required array(s) {', '.join(missing)} (see quantom_gf.data)")
    try:
        events = np.asarray(contents["events"], dtype=np.float64)
        xs = np.asarray(contents["xsec_total"], dtype=np.float64).reshape(-1)
        er = np.asarray(contents["xsec_total_err"], dtype=np.float64).reshape(-1)
        truth = np.asarray(contents["truth"], dtype=np.float64).reshape(-1) if "truth" in contents else None
        n_gen = int(contents["n_generated"]) if "n_generated" in contents else None
        meta = json.loads(str(contents["meta"])) if "meta" in contents else {}
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: an array has the wrong type ({exc})") from None
    return EventSet(events, xs, er, truth, n_gen, meta).validate(path)


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
        es = load_npz(args.file)
        print(f"{args.file}: {es.n_events} events x {es.n_obs} observables; xsec_total {es.xsec_total.tolist()}")
        return 0
    problem = build_problem(args.env)
    cfg = dict(problem.config["data"])
    n = args.n_events if args.n_events is not None else cfg.get("n_events", 100_000)
    seed = args.seed if args.seed is not None else cfg.get("seed", 1)
    if args.truth is not None and len(args.truth) != problem.dim:
        raise ConfigError(f"--truth needs {problem.dim} values ({', '.join(problem.space.names)})")
    if seed < 0:
        raise ConfigError("--seed must be non-negative")
    es = make_measured(problem.experiment, problem.space, args.truth, n, seed, cfg.get("xsec_rel_err"))
    es.meta["env"] = problem.name
    if not args.out.endswith(".npz"):
        raise ConfigError("--out must end in .npz")
    es.save(args.out)
    print(f"wrote {args.out}: {es.n_events} of {n} events pass the selection")
    return 0


if __name__ == "__main__":
    import sys

    from .cli import guarded

    sys.exit(guarded(_main)())
