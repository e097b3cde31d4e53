"""Run directories: resolved config, history CSV, atomic checkpoints, result.json, measured data."""

from __future__ import annotations

import csv
import json
import os
import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from .errors import QuantomError

CONFIG = "config.toml"
HISTORY = "history.csv"
CHECKPOINT = "checkpoint.pkl"
RESULT = "result.json"
DATA = "data.npz"


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _plain(obj: Any) -> Any:
    """Config values as TOML/JSON-friendly types (None dropped for TOML by the caller)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def default_name(env: str, strategy: str, seed: int) -> str:
    """runs/<env>-<strategy>-s<seed>-<YYYYmmdd-HHMMSS>."""
    safe = strategy.replace(":", "-")
    return f"{env}-{safe}-s{seed}-{time.strftime('%Y%m%d-%H%M%S')}"


class RunDir:
    """One run's folder. Files are written atomically so a killed run never leaves half a file."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    @classmethod
    def create(cls, path: str | os.PathLike) -> RunDir:
        """A new, empty run directory (error if it exists and is not empty)."""
        p = Path(path)
        if p.exists() and any(p.iterdir()):
            raise QuantomError(f"run directory {p} already exists and is not empty (use --resume to continue it)")
        p.mkdir(parents=True, exist_ok=True)
        return cls(p)

    @classmethod
    def open(cls, path: str | os.PathLike) -> RunDir:
        """An existing run directory with a config and a checkpoint."""
        p = Path(path)
        if not p.is_dir():
            raise QuantomError(f"--resume: {p} is not a directory")
        for name in (CONFIG, CHECKPOINT):
            if not (p / name).is_file():
                raise QuantomError(f"--resume: {p} is not a run directory (no {name})")
        return cls(p)

    def write_config(self, cfg: dict) -> None:
        """The resolved configuration, as TOML."""
        _atomic_write(self.path / CONFIG, tomli_w.dumps(_plain(cfg)).encode())

    def read_config(self) -> dict:
        """The resolved configuration."""
        import tomllib

        with open(self.path / CONFIG, "rb") as f:
            return tomllib.load(f)

    def save_checkpoint(self, state: dict) -> None:
        """Pickle the solver and run state atomically."""
        _atomic_write(self.path / CHECKPOINT, pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))

    def load_checkpoint(self) -> dict:
        """The last checkpoint."""
        try:
            with open(self.path / CHECKPOINT, "rb") as f:
                return pickle.load(f)
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
            raise QuantomError(f"--resume: checkpoint in {self.path} is unreadable ({exc})") from None

    def write_result(self, result: dict) -> None:
        """result.json."""
        _atomic_write(self.path / RESULT, (json.dumps(_plain(result), indent=2) + "\n").encode())

    def has_result(self) -> bool:
        """True once the run has finished."""
        return (self.path / RESULT).is_file()


class History:
    """history.csv: one row per generation, appended and flushed as the run goes."""

    def __init__(self, path: Path, columns: list[str], keep_rows: int | None = None) -> None:
        self.path, self.columns = path, columns
        rows: list[list[str]] = []
        if keep_rows is not None and path.is_file():
            with open(path, newline="") as f:
                rows = list(csv.reader(f))[1 : keep_rows + 1]
        # Rewrite on resume: rows past the checkpoint belong to work that will be redone.
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(columns)
            w.writerows(rows)
        self._f = open(path, "a", newline="")  # noqa: SIM115 - kept open for the run
        self._w = csv.writer(self._f)

    def append(self, row: dict) -> None:
        """Write one row (missing columns empty) and flush."""
        self._w.writerow([_fmt(row.get(c, "")) for c in self.columns])
        self._f.flush()

    def close(self) -> None:
        """Close the file."""
        self._f.close()


def _fmt(v: Any) -> str:
    if isinstance(v, float | np.floating):
        return repr(float(v))
    return str(v)


def read_history(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """history.csv as columns of floats (non-numeric columns as strings)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    out: dict[str, np.ndarray] = {}
    if not rows:
        return out
    for k in rows[0]:
        vals = [r[k] for r in rows]
        try:
            out[k] = np.array([float(v) if v != "" else np.nan for v in vals])
        except ValueError:
            out[k] = np.array(vals)
    return out
