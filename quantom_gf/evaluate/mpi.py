"""MPI evaluators: rank 0 runs the solver, every rank (rank 0 included) scores a share.

``mpiexec -n N python -m quantom_gf.run --strategy ga --evaluator mpi``. Every rank builds the
same Problem; worker ranks then sit in ``serve(problem)`` until rank 0 closes the evaluator.

Two ways of handing out work, one command loop:

- ``mode="collective"`` (``--evaluator mpi``): per ``map`` rank 0 broadcasts a small header
  (command, seed, counts), scatters the population in contiguous blocks (Scatterv), every rank
  scores its block and the scores come back with Gatherv. Cheapest for generational solvers.
- ``mode="farm"`` (``--evaluator mpi-async``, and any evaluator once a solver calls
  ``submit``): point-to-point tasks to whichever rank is free (see ``async_.py``).

Because the random numbers are counter-based and common per seed, a member's score does not
depend on the rank that computes it or on its neighbours in the block: results are
bit-identical to the serial evaluator for any number of ranks.

Faults: an exception inside a rank's evaluation is caught there and reported; rank 0 retries
the members on other ranks (``QUANTOM_GF_RETRIES``, default 2 retries) and, if they keep
failing, raises EvaluationError (one line on stderr, exit 2; the workers are released by
``close``). Test hooks, read only on MPI runs: ``QUANTOM_GF_FAULT=rank:count[,rank:count]``
makes that rank (``*``: every rank) raise on its first ``count`` evaluations;
``QUANTOM_GF_SLOW=rank:factor`` makes that rank take ``factor`` times its compute time.

Waiting ranks poll, yielding the core and then sleeping, instead of MPICH's busy wait, so an
idle rank does not steal a core from a computing one when ranks outnumber cores.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import time
from typing import Any

import numpy as np

from . import EvaluationError
from .async_ import FarmMixin, one_line, wait_for

CMD_STOP, CMD_EVAL, CMD_FARM = 0, 1, 2
TAG_ERR = 7
HEADER = 4  # header = [command, seed, d, total members] + one count per rank
DRAIN_TIMEOUT_S = 30.0


def _parse_rank_map(var: str, rank: int) -> float | None:
    """The value for this rank in ``rank:value[,rank:value]`` (``*`` matches every rank)."""
    spec = os.environ.get(var, "").strip()
    for item in filter(None, (s.strip() for s in spec.split(","))):
        who, _, value = item.partition(":")
        if who.strip() in ("*", str(rank)):
            return float(value or 1)
    return None


class TaskRunner:
    """Scores one block on this rank, with the fault and slow-down test hooks applied."""

    def __init__(self, rank: int) -> None:
        self.rank = rank
        faults = _parse_rank_map("QUANTOM_GF_FAULT", rank)
        self.faults_left = int(faults) if faults is not None else 0
        self.slow = _parse_rank_map("QUANTOM_GF_SLOW", rank) or 1.0
        self.calls = 0
        self.log: list | None = None  # set to a list to record (start, end, members) per call (benchmarks)

    def __call__(self, problem: Any, Z: np.ndarray, seed: int) -> tuple[np.ndarray, str | None]:
        """(scores, None) or (NaNs, error line); never raises for an evaluation's own error."""
        if Z.shape[0] == 0:
            return np.empty(0), None
        self.calls += 1
        t0 = time.monotonic()  # system-wide clock: logs of different ranks compare
        try:
            if self.faults_left > 0:
                self.faults_left -= 1
                raise RuntimeError(f"injected fault (QUANTOM_GF_FAULT) on rank {self.rank}, call {self.calls}")
            scores = np.asarray(problem.evaluate(Z, seed), dtype=np.float64)
        except Exception as exc:  # noqa: BLE001 - any failure of the user's pipeline is reported, not fatal
            return np.full(Z.shape[0], np.nan), one_line(exc)
        if self.slow > 1.0:
            time.sleep((self.slow - 1.0) * (time.monotonic() - t0))
        if self.log is not None:
            self.log.append((t0, time.monotonic(), Z.shape[0]))
        return scores, None


class MPIEvaluator(FarmMixin):
    """Population split over the ranks of ``comm``; see the module docstring."""

    name = "mpi"

    def __init__(self, mode: str = "collective", comm: Any = None, retries: int | None = None, depth: int = 4) -> None:
        from mpi4py import MPI

        if mode not in ("collective", "farm"):
            raise ValueError(f"mode must be 'collective' or 'farm'; got {mode!r}")
        self.MPI, self.mode = MPI, mode
        self.name = "mpi" if mode == "collective" else "mpi-async"
        self.comm = comm if comm is not None else MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.is_root = self.rank == 0
        self.n_workers = self.size
        self.retries = int(os.environ.get("QUANTOM_GF_RETRIES", 2)) if retries is None else int(retries)
        self.runner = TaskRunner(self.rank)
        self.last_workers: np.ndarray | None = None
        self._closed = False
        self._farm_init(depth)
        if self.is_root:
            # Whatever way rank 0 leaves (error, SIGTERM, normal end), the workers are released.
            atexit.register(self.close)

    # -- rank 0 ------------------------------------------------------------------------------
    def map(self, problem: Any, Z: np.ndarray, seed: int) -> np.ndarray:
        """Scores (P,) of Z (P, d); ``last_workers`` (P,) says which rank scored each member."""
        if self.mode == "farm":
            return self._farm_map(problem, Z, seed)
        self._leave_farm()
        Z = np.ascontiguousarray(Z, dtype=np.float64)
        P = Z.shape[0]
        scores, workers = np.full(P, np.nan), np.full(P, -1, dtype=np.int64)
        todo, avoid, attempts = np.arange(P), set(), 0
        history: list[str] = []
        while True:
            ranks = [r for r in range(self.size) if r not in avoid] or list(range(self.size))
            parts = dict(zip(ranks, np.array_split(todo, len(ranks))))
            counts = np.array([len(parts.get(r, ())) for r in range(self.size)], dtype=np.int64)
            order = np.concatenate([parts[r] for r in ranks]) if ranks else todo
            got, errs = self._round(problem, Z[order], counts, Z.shape[1], int(seed))
            failed = []
            for r in ranks:
                idx = parts[r]
                if r in errs:
                    failed.append(r)
                    history.append(f"rank {r}: {errs[r]}")
                elif len(idx):
                    a = int(counts[:r].sum())
                    scores[idx], workers[idx] = got[a : a + len(idx)], r
            if not failed:
                break
            attempts += 1
            if attempts > self.retries:
                raise EvaluationError(
                    f"evaluation of {sum(len(parts[r]) for r in failed)} member(s) (seed {seed}) failed "
                    f"{attempts} times; last: {history[-1]}"
                )
            todo, avoid = np.concatenate([parts[r] for r in failed]), set(failed)
        self.last_workers = workers
        return scores

    def _round(
        self, problem: Any, Zo: np.ndarray, counts: np.ndarray, d: int, seed: int
    ) -> tuple[np.ndarray, dict[int, str]]:
        """One collective round from rank 0: header, scatter, score, gather; errors by rank."""
        header = np.concatenate([[CMD_EVAL, seed, d, int(counts.sum())], counts]).astype(np.int64)
        self._bcast_header(header)
        return self._collective_eval(problem, header, Zo)

    def _bcast_header(self, header: np.ndarray) -> None:
        wait_for(self.comm.Ibcast(header, root=0).Test)

    def _collective_eval(
        self, problem: Any, header: np.ndarray, Zo: np.ndarray | None = None
    ) -> tuple[np.ndarray, dict[int, str]]:
        """Every rank's part of a round (Zo only on rank 0)."""
        MPI = self.MPI
        seed, d = int(header[1]), int(header[2])
        counts = header[HEADER:]
        displs = np.concatenate([[0], np.cumsum(counts)[:-1]])
        mine = np.empty((int(counts[self.rank]), d))
        send = [Zo, (counts * d, displs * d), MPI.DOUBLE] if self.is_root else None
        wait_for(self.comm.Iscatterv(send, mine, root=0).Test)
        scores, err = self.runner(problem, mine, seed)
        # Error text goes point-to-point (nonblocking, so it cannot hold up the gathers).
        err_req = self.comm.isend(err, dest=0, tag=TAG_ERR) if (err and not self.is_root) else None
        out = np.empty(int(counts.sum())) if self.is_root else None
        recv = [out, (counts, displs), MPI.DOUBLE] if self.is_root else None
        wait_for(self.comm.Igatherv(scores, recv, root=0).Test)
        flags = np.zeros(self.size, dtype=np.int32) if self.is_root else None
        wait_for(self.comm.Igather(np.array([1 if err else 0], dtype=np.int32), flags, root=0).Test)
        if err_req is not None:
            wait_for(err_req.Test)
        if not self.is_root:
            return np.empty(0), {}
        errs = {int(r): self.comm.recv(source=int(r), tag=TAG_ERR) for r in np.flatnonzero(flags) if r != 0}
        if err:
            errs[0] = err
        return out, errs

    def close(self) -> None:
        """Release the worker ranks (idempotent); MPI Abort if they cannot be released in time."""
        if self._closed or not self.is_root:
            return
        self._closed = True
        try:
            atexit.unregister(self.close)
        except Exception:  # noqa: BLE001 - interpreter shutting down
            pass
        if self._farming:
            if not self._farm_stop(DRAIN_TIMEOUT_S):
                print(
                    f"error: MPI workers did not finish their tasks within {DRAIN_TIMEOUT_S:.0f} s; aborting",
                    file=sys.stderr,
                    flush=True,
                )
                self.comm.Abort(1)
            return
        header = np.zeros(HEADER + self.size, dtype=np.int64)
        header[0] = CMD_STOP
        self._bcast_header(header)

    # -- worker ranks ------------------------------------------------------------------------
    def serve(self, problem: Any) -> None:
        """Worker loop: score what rank 0 sends until it says stop.

        SIGTERM and SIGINT (which launchers forward to every rank) are ignored here: rank 0
        decides, checkpoints and then releases the workers.
        """
        if self.is_root:
            return
        old = {s: signal.signal(s, lambda *_: None) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            while True:
                header = np.empty(HEADER + self.size, dtype=np.int64)
                self._bcast_header(header)
                cmd = int(header[0])
                if cmd == CMD_STOP:
                    return
                if cmd == CMD_EVAL:
                    self._collective_eval(problem, header)
                elif cmd == CMD_FARM:
                    if self._farm_serve(problem) == "stop":
                        return
        except Exception as exc:  # noqa: BLE001 - a broken worker must not leave the job hanging
            print(f"error: MPI rank {self.rank}: {one_line(exc)}; aborting the job", file=sys.stderr, flush=True)
            self.comm.Abort(1)
        finally:
            for s, h in old.items():
                signal.signal(s, h)
