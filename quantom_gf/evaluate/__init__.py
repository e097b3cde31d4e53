"""Evaluators: how a population's scores are computed (serial, MPI, asynchronous).

Every evaluator has ``map(problem, Z, seed) -> scores``, ``is_root`` (False on MPI worker
ranks, which call ``serve(problem)`` instead of running a solver), ``last_workers`` (the rank
that scored each member of the last ``map``, or None) and ``close()``. Asynchronous ones add
``slots``, ``submit(problem, Z, seed, key)`` and ``wait_one(problem) -> (key, scores, worker)``;
``as_async(evaluator)`` gives that interface to any evaluator.

mpi4py is imported only when an MPI evaluator is made, so serial runs never load MPI.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import ConfigError, QuantomError
from .serial import SerialEvaluator

NAMES = ("auto", "serial", "mpi", "mpi-async")

# Launchers announce the job size in the environment before MPI starts: hydra/PMI (MPICH,
# Cray PALS, srun --mpi=pmi2), Open MPI, MVAPICH, Slurm steps. Checking them first keeps
# mpi4py (and MPI_Init) out of every serial run.
_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "PALS_SIZE", "SLURM_STEP_NUM_TASKS")
_RANK_ONLY_VARS = ("PMIX_RANK", "PALS_RANKID")


class EvaluationError(QuantomError):
    """An evaluation that kept failing after its retries (one line: where and why)."""


def launched_by_mpi() -> bool:
    """True when a launcher (mpiexec, srun, ...) started this process with more than one rank."""
    for var in _SIZE_VARS:
        try:
            if int(os.environ.get(var, "1")) > 1:
                return True
        except ValueError:
            continue
    if any(v in os.environ for v in _RANK_ONLY_VARS):
        # Only a rank is announced (PMIx): ask MPI itself.
        from mpi4py import MPI

        return MPI.COMM_WORLD.Get_size() > 1
    return False


def make_evaluator(name: str = "auto") -> Any:
    """The evaluator named on the command line.

    ``auto``: MPI (collective) under a launcher with more than one rank, serial otherwise;
    ``serial``; ``mpi``: population split over ranks with collectives (bcast/scatter/gather);
    ``mpi-async``: members farmed out point-to-point to whichever rank is free.
    """
    if name not in NAMES:
        raise ConfigError(f"unknown evaluator '{name}'; choose one of: {', '.join(NAMES)}")
    if name == "serial" or (name == "auto" and not launched_by_mpi()):
        return SerialEvaluator()
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"--evaluator {name} needs mpi4py (pip install 'quantom_gf[mpi]', or build it against your MPI)"
        ) from None
    from .mpi import MPIEvaluator

    return MPIEvaluator(mode="farm" if name == "mpi-async" else "collective")


class EvaluationLog:
    """evaluations.csv: one row per evaluation with the rank that scored it.

    Written only for Progress records that carry ``workers`` (MPI and asynchronous runs); the
    file appears at the first such record. ``rows`` goes into the checkpoint so a resumed run
    drops the rows of work it will redo, like history.csv.
    """

    COLUMNS = ["evaluation", "generation", "candidate", "worker", "seed", "score"]
    FILE = "evaluations.csv"

    def __init__(self, path: str | os.PathLike, keep_rows: int | None = None) -> None:
        self.path, self.keep = path, keep_rows
        self.rows = int(keep_rows or 0)
        self._history: Any = None

    def append(self, info: Any) -> None:
        """Rows for one Progress record (nothing when it has no ``workers``)."""
        workers = getattr(info, "workers", None)
        if workers is None:
            return
        if self._history is None:
            from ..rundir import History

            self._history = History(Path(self.path), self.COLUMNS, keep_rows=self.keep)
        scores = info.scores
        seeds = getattr(info, "seeds", None)
        candidates = getattr(info, "candidates", None)
        first = int(info.evaluations) - len(scores)
        for i, score in enumerate(scores):
            self._history.append(
                {
                    "evaluation": first + i,
                    "generation": info.generation,
                    "candidate": int(candidates[i]) if candidates is not None else first + i,
                    "worker": int(workers[i]),
                    "seed": int(seeds[i]) if seeds is not None else int(info.seed),
                    "score": float(score),
                }
            )
        self.rows += len(scores)

    def close(self) -> None:
        """Close the file if it was opened."""
        if self._history is not None:
            self._history.close()


def as_async(evaluator: Any) -> Any:
    """``evaluator`` itself if it has submit/wait_one, else an in-process FIFO adapter around it."""
    if hasattr(evaluator, "submit") and hasattr(evaluator, "wait_one"):
        return evaluator
    from .async_ import LocalAsync

    return LocalAsync(evaluator)


__all__ = [
    "NAMES",
    "EvaluationError",
    "EvaluationLog",
    "SerialEvaluator",
    "as_async",
    "launched_by_mpi",
    "make_evaluator",
]
