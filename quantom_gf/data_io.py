"""Measured data from the files users have: .npz, HDF5 (h5py) and ROOT TTrees (uproot).

``load_data(path, ...)`` dispatches on the extension; h5py and uproot are optional extras
(``pip install quantom_gf[io]``) imported only when such a file is read or written.

Mapping of columns to observables (``observables``, default: the theory's names, e.g.
``["x", "Q2"]``): event coordinate o is the column/branch ``observables[o]``. In an env preset::

    [data]
    observables = ["x_rec", "Q2_rec"]   # branch or dataset names, in the theory's order
    tree = "events"                     # ROOT: the TTree's name (or --data file.root:tree)
    xsec_total = [6.5e-4]               # when the file does not carry them
    xsec_total_err = [6.5e-6]

Layouts read (the documented arrays of quantom_gf.data, wherever a format can hold them):

- ``.npz``: quantom_gf.data's format; without an ``events`` array, one 1D array per observable.
- ``.h5``/``.hdf5``: datasets ``events`` (N, n_obs) or one 1D dataset per observable; totals
  as datasets ``xsec_total``, ``xsec_total_err``; ``truth``, ``n_generated`` as datasets or
  file attributes; ``meta`` a JSON string attribute. Several experiments: one group per
  experiment name holding that layout.
- ``.root``: a TTree ``tree`` with one branch per observable; a TTree ``xsec`` with branches
  ``xsec_total`` and ``xsec_total_err`` (one entry per total); a TObjString ``meta`` with JSON
  (``truth``, ``n_generated``, anything else). Several experiments: one TDirectory per name.

Totals, truth or n_generated given as options fill in what a file does not carry (the file
wins when it has them). Several experiments from one file need ``experiments`` (the names);
``"a.root,b.h5"`` reads one file per experiment in that order.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .data import EventSet, MultiEventSet, eventset_from_arrays, load_npz
from .errors import DataError

HDF5_EXT = (".h5", ".hdf5", ".he5")
ROOT_EXT = (".root",)


def _split_tree(path: str, tree: str) -> tuple[str, str]:
    """'file.root:tree' -> ('file.root', 'tree') (uproot's convention)."""
    base, sep, rest = path.rpartition(":")
    if sep and base.endswith(ROOT_EXT) and rest:
        return base, rest
    return path, tree


def _assemble(get: Any, has: Any, observables: Sequence[str] | None, source: str, fill: dict) -> EventSet:
    """An EventSet from a container read through ``get(name)``/``has(name)`` plus ``fill``."""
    arrays: dict[str, Any] = {}
    if has("events"):
        arrays["events"] = get("events")
    elif observables:
        missing = [o for o in observables if not has(o)]
        if missing:
            raise DataError(f"{source}: no column(s) {', '.join(missing)} for the observables {list(observables)}")
        arrays["events"] = np.column_stack([np.asarray(get(o), dtype=np.float64) for o in observables])
    for key in ("xsec_total", "xsec_total_err", "truth", "n_generated", "meta"):
        if has(key):
            arrays[key] = get(key)
        elif fill.get(key) is not None:
            arrays[key] = fill[key]
    if "events" not in arrays:
        raise DataError(f"{source}: no 'events' array and no observables to read columns for")
    meta = arrays.get("meta")
    if isinstance(meta, dict):
        arrays["meta"] = json.dumps(meta)
    return eventset_from_arrays(arrays, source)


def _load_npz_columns(path: str, observables, fill: dict, experiments) -> EventSet | MultiEventSet:
    try:
        return load_npz(path)
    except DataError as exc:
        if "missing required array(s)" not in str(exc):
            raise
    with np.load(path, allow_pickle=False) as f:  # columns instead of an 'events' array
        contents = {k: f[k] for k in f.files}
    return _assemble(contents.__getitem__, contents.__contains__, observables, path, fill)


def _h5py():
    try:
        import h5py
    except ImportError:
        raise DataError("reading or writing HDF5 needs h5py: pip install 'quantom_gf[io]'") from None
    return h5py


def _uproot():
    try:
        import uproot
    except ImportError:
        raise DataError("reading or writing ROOT files needs uproot: pip install 'quantom_gf[io]'") from None
    return uproot


def _load_hdf5(path: str, observables, fill: dict, experiments) -> EventSet | MultiEventSet:
    h5py = _h5py()
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"{path}: not a readable HDF5 file ({exc.__class__.__name__})") from None
    with f:

        def reader(g, src):
            def has(k):
                return k in g or k in g.attrs

            def get(k):
                v = g[k][()] if k in g else g.attrs[k]
                return v.decode() if isinstance(v, bytes) else v

            return _assemble(get, has, observables, src, fill)

        if experiments and all(n in f and isinstance(f[n], h5py.Group) for n in experiments):
            return MultiEventSet({n: reader(f[n], f"{path} [{n}]") for n in experiments}).validate(path)
        return reader(f, path)


def _load_root(path: str, observables, fill: dict, experiments, tree: str) -> EventSet | MultiEventSet:
    uproot = _uproot()
    try:
        f = uproot.open(path)
    except Exception as exc:  # uproot raises many types for a bad file  # noqa: BLE001
        raise DataError(f"{path}: not a readable ROOT file ({exc.__class__.__name__})") from None
    with f:

        def reader(d, src):
            names = set(k.split(";")[0] for k in d.keys(recursive=False))
            if tree not in names:
                raise DataError(f"{src}: no tree '{tree}' (has: {', '.join(sorted(names))}); set [data] tree")
            t = d[tree]
            branches = set(t.keys())
            cols = {}
            if observables:
                missing = [o for o in observables if o not in branches]
                if missing:
                    raise DataError(f"{src}: tree '{tree}' has no branch(es) {', '.join(missing)}")
                cols = t.arrays(list(observables), library="np")
            extra = dict(fill)
            if "xsec" in names:
                xt = d["xsec"].arrays(["xsec_total", "xsec_total_err"], library="np")
                extra.update(xsec_total=xt["xsec_total"], xsec_total_err=xt["xsec_total_err"])
            if "meta" in names:
                meta = json.loads(str(d["meta"]))
                for key in ("truth", "n_generated"):
                    if key in meta:
                        extra[key] = np.asarray(meta.pop(key))
                extra["meta"] = meta
            return _assemble(cols.__getitem__, cols.__contains__, observables, src, extra)

        top = set(k.split(";")[0] for k in f.keys(recursive=False))
        if experiments and all(n in top for n in experiments) and tree not in top:
            return MultiEventSet({n: reader(f[n], f"{path} [{n}]") for n in experiments}).validate(path)
        return reader(f, path)


def load_data(
    path: str | os.PathLike,
    *,
    observables: Sequence[str] | None = None,
    tree: str = "events",
    experiments: Sequence[str] | None = None,
    xsec_total: Sequence[float] | None = None,
    xsec_total_err: Sequence[float] | None = None,
    n_generated: int | None = None,
    truth: Sequence[float] | None = None,
) -> EventSet | MultiEventSet:
    """Measured data from ``path`` by its extension (module doc); DataError with one line on any problem."""
    path = os.fspath(path)
    fill = {"xsec_total": xsec_total, "xsec_total_err": xsec_total_err, "n_generated": n_generated, "truth": truth}
    if "," in path:
        parts = [p.strip() for p in path.split(",") if p.strip()]
        if not experiments or len(parts) != len(experiments):
            n = len(experiments or [])
            raise DataError(f"--data: {len(parts)} files given for {n} experiment(s) ({', '.join(experiments or [])})")
        sets = {}
        for name, part in zip(experiments, parts):
            es = load_data(part, observables=observables, tree=tree, **fill)
            if isinstance(es, MultiEventSet):
                raise DataError(f"{part}: holds several experiments; give it alone, not in a comma-separated list")
            sets[name] = es
        return MultiEventSet(sets).validate("--data")
    path, tree = _split_tree(path, tree)
    if not os.path.isfile(path):
        raise DataError(f"data file not found: {path}")
    low = path.lower()
    if low.endswith(".npz"):
        return _load_npz_columns(path, observables, fill, experiments)
    if low.endswith(HDF5_EXT):
        return _load_hdf5(path, observables, fill, experiments)
    if low.endswith(ROOT_EXT):
        return _load_root(path, observables, fill, experiments, tree)
    raise DataError(f"{path}: unknown data format; use .npz, {', '.join(HDF5_EXT)} (h5py) or .root (uproot)")


def _sets(data: EventSet | MultiEventSet) -> dict[str | None, EventSet]:
    return dict(data.sets) if isinstance(data, MultiEventSet) else {None: data}


def _meta_json(es: EventSet) -> str:
    meta = dict(es.meta)
    if es.truth is not None:
        meta["truth"] = es.truth.tolist()
    if es.n_generated is not None:
        meta["n_generated"] = int(es.n_generated)
    return json.dumps(meta, sort_keys=True)


def save_hdf5(data: EventSet | MultiEventSet, path: str | os.PathLike, observables: Sequence[str]) -> None:
    """Write the HDF5 layout of the module doc (one 1D dataset per observable)."""
    h5py = _h5py()
    with h5py.File(os.fspath(path), "w") as f:
        for name, es in _sets(data).items():
            g = f if name is None else f.create_group(name)
            for o, col in enumerate(observables):
                g.create_dataset(col, data=es.events[:, o])
            g.create_dataset("xsec_total", data=es.xsec_total)
            g.create_dataset("xsec_total_err", data=es.xsec_total_err)
            if es.truth is not None:
                g.attrs["truth"] = es.truth
            if es.n_generated is not None:
                g.attrs["n_generated"] = int(es.n_generated)
            g.attrs["meta"] = json.dumps(es.meta, sort_keys=True)


def save_root(
    data: EventSet | MultiEventSet, path: str | os.PathLike, observables: Sequence[str], tree: str = "events"
) -> None:
    """Write the ROOT layout of the module doc: TTrees (not RNTuples), one branch per observable."""
    uproot = _uproot()
    with uproot.recreate(os.fspath(path)) as f:
        for name, es in _sets(data).items():
            pre = "" if name is None else f"{name}/"
            t = f.mktree(pre + tree, {col: np.float64 for col in observables})
            t.extend({col: np.ascontiguousarray(es.events[:, o]) for o, col in enumerate(observables)})
            x = f.mktree(pre + "xsec", {"xsec_total": np.float64, "xsec_total_err": np.float64})
            x.extend({"xsec_total": es.xsec_total, "xsec_total_err": es.xsec_total_err})
            f[pre + "meta"] = _meta_json(es)


def save_data(data: EventSet | MultiEventSet, path: str | os.PathLike, observables: Sequence[str]) -> None:
    """Write ``data`` in the format of ``path``'s extension (npz, HDF5 or ROOT)."""
    low = os.fspath(path).lower()
    if low.endswith(".npz"):
        data.save(path)
    elif low.endswith(HDF5_EXT):
        save_hdf5(data, path, observables)
    elif low.endswith(ROOT_EXT):
        save_root(data, path, observables)
    else:
        raise DataError(f"{path}: unknown data format; use .npz, .h5 or .root")
