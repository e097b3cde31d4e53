"""Asynchronous evaluation: submit tasks, take results as they complete.

Interface (rank 0): ``slots`` (tasks to keep in flight to keep every worker busy),
``submit(problem, Z, seed, key)``, ``wait_one(problem) -> (key, scores, worker)`` and
``in_flight``. Two implementations:

- ``LocalAsync``: in this process, first in first out; deterministic.
- ``FarmMixin`` (used by ``mpi.MPIEvaluator``): point-to-point tasks (isend, matched probes on
  ``ANY_SOURCE``) handed to whichever rank is free, at most ``depth`` queued per worker so a
  worker never waits for rank 0; rank 0 scores a task itself when it has nothing else to do.
  Completion order depends on timing, so anything built on it is reproducible only in the
  scores of a given (Z, seed), not in the order results arrive.

A task whose evaluation raises is sent again, to a rank it has not failed on where there is
one; after ``retries`` retries rank 0 raises EvaluationError.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import EvaluationError

TAG_TASK, TAG_RESULT, TAG_END, TAG_STOP = 11, 12, 13, 14


class Backoff:
    """Pauses between polls: yield the core for the first ``spin`` seconds (replies often come
    within microseconds), then sleep, doubling up to 1 ms. MPI's own blocking waits spin at
    full speed, which starves computing ranks when ranks outnumber cores."""

    def __init__(self, spin: float = 2e-3) -> None:
        self.t0, self.spin, self.delay = time.perf_counter(), spin, 0.0

    def pause(self) -> None:
        """One pause."""
        if time.perf_counter() - self.t0 < self.spin:
            os.sched_yield()
        else:
            time.sleep(self.delay)
            self.delay = min(max(2 * self.delay, 2e-5), 1e-3)


def wait_for(test: Callable[[], Any], timeout: float | None = None) -> Any:
    """Poll ``test`` until it returns something truthy (None after ``timeout`` seconds)."""
    backoff = Backoff()
    while True:
        out = test()
        if out:
            return out
        if timeout is not None and time.perf_counter() - backoff.t0 > timeout:
            return None
        backoff.pause()


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line."""
    msg = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {msg[0]}" if msg else type(exc).__name__


class LocalAsync:
    """Submit/wait_one around any evaluator with ``map``: tasks run in submission order."""

    def __init__(self, evaluator: Any) -> None:
        self.inner = evaluator
        self.slots = 1
        self._queue: deque = deque()

    @property
    def in_flight(self) -> int:
        """Tasks submitted and not yet returned."""
        return len(self._queue)

    def submit(self, problem: Any, Z: np.ndarray, seed: int, key: Any) -> None:
        """Queue the scoring of Z (k, d) with ``seed``; ``key`` comes back with the result."""
        self._queue.append((key, np.asarray(Z, dtype=np.float64), int(seed), problem))

    def wait_one(self, problem: Any = None) -> tuple[Any, np.ndarray, int]:
        """Score the oldest task now: (key, scores, worker)."""
        key, Z, seed, prob = self._queue.popleft()
        scores = np.asarray(self.inner.map(prob, Z, seed), dtype=np.float64)
        workers = getattr(self.inner, "last_workers", None)
        return key, scores, int(workers[0]) if workers is not None and len(workers) else 0


@dataclass
class _Task:
    tid: int
    key: Any
    Z: np.ndarray
    seed: int
    tried: set = field(default_factory=set)
    errors: list = field(default_factory=list)


class FarmMixin:
    """The task farm of ``MPIEvaluator`` (needs ``comm``, ``MPI``, ``rank``, ``size``, ``runner``,
    ``retries``)."""

    comm: Any
    MPI: Any
    rank: int
    size: int
    retries: int
    runner: Any
    last_workers: np.ndarray | None

    def _farm_init(self, depth: int) -> None:
        self.depth = max(1, int(depth))
        self._depth_now = self.depth
        self._farming = False
        self._queue: deque[_Task] = deque()
        self._outstanding: dict[int, dict[int, _Task]] = {w: {} for w in range(1, self.size)}
        self._done: deque = deque()
        self._sends: list = []
        self._next_tid = 0
        self._problem: Any = None

    # -- rank 0 ------------------------------------------------------------------------------
    @property
    def slots(self) -> int:
        """Tasks to keep in flight so no rank idles: ``depth`` per worker plus one for rank 0."""
        return 1 + (self.size - 1) * self.depth

    @property
    def in_flight(self) -> int:
        """Tasks submitted and not yet returned by ``wait_one``."""
        return len(self._queue) + sum(len(o) for o in self._outstanding.values()) + len(self._done)

    def _enter_farm(self) -> None:
        if not self._farming:
            from .mpi import CMD_FARM, HEADER

            header = np.zeros(HEADER + self.size, dtype=np.int64)
            header[0] = CMD_FARM
            self._bcast_header(header)  # type: ignore[attr-defined]
            self._farming = True

    def _leave_farm(self) -> None:
        """Back to collective mode (every task must have been collected)."""
        if not self._farming:
            return
        if self.in_flight:
            raise RuntimeError("MPI evaluator: collective map while asynchronous tasks are in flight")
        self._sends += [self.comm.isend(None, dest=w, tag=TAG_END) for w in range(1, self.size)]
        self._flush_sends()
        self._farming = False

    def submit(self, problem: Any, Z: np.ndarray, seed: int, key: Any) -> None:
        """Queue the scoring of Z (k, d) with ``seed``; ``key`` comes back with the result."""
        self._enter_farm()
        self._problem = problem
        self._queue.append(_Task(self._next_tid, key, np.ascontiguousarray(Z, dtype=np.float64), int(seed)))
        self._next_tid += 1
        self._dispatch()

    def _eligible(self, task: _Task, worker: int) -> bool:
        # A retried task goes to a rank it has not failed on, while there is one.
        return worker not in task.tried or len(task.tried) >= self.size

    def _take(self, worker: int) -> _Task | None:
        for i, task in enumerate(self._queue):
            if self._eligible(task, worker):
                del self._queue[i]
                return task
        return None

    def _dispatch(self) -> None:
        # Level by level (every worker one task, then a second, ...): few tasks spread out.
        for level in range(1, self._depth_now + 1):
            for w in range(1, self.size):
                if not self._queue:
                    break
                if len(self._outstanding[w]) < level and (task := self._take(w)) is not None:
                    self._outstanding[w][task.tid] = task
                    self._sends.append(self.comm.isend((task.tid, task.seed, task.Z), dest=w, tag=TAG_TASK))
        self._flush_sends(block=False)

    def _flush_sends(self, block: bool = True, timeout: float | None = None) -> bool:
        if block:
            wait_for(lambda: all(r.Test() for r in self._sends), timeout)
        self._sends = [r for r in self._sends if not r.Test()]
        return not self._sends

    def _finish(self, task: _Task, worker: int, scores: np.ndarray, err: str | None, strict: bool = True) -> None:
        if err is None:
            self._done.append((task.key, scores, worker))
            return
        task.tried.add(worker)
        task.errors.append(f"rank {worker}: {err}")
        if len(task.errors) > self.retries:
            if strict:
                raise EvaluationError(
                    f"evaluation of {task.Z.shape[0]} member(s) (seed {task.seed}) failed {len(task.errors)} "
                    f"times; last: {task.errors[-1]}"
                )
            return
        self._queue.appendleft(task)

    def _poll(self, strict: bool = True) -> bool:
        """Take every result that has arrived; True if there was one."""
        got = False
        status = self.MPI.Status()
        while True:
            msg = self.comm.improbe(source=self.MPI.ANY_SOURCE, tag=TAG_RESULT, status=status)
            if msg is None:
                return got
            tid, scores, err = msg.recv()
            worker = status.Get_source()
            got = True
            self._finish(self._outstanding[worker].pop(tid), worker, scores, err, strict)

    def wait_one(self, problem: Any = None) -> tuple[Any, np.ndarray, int]:
        """The next completed task: (key, scores, worker rank); rank 0 works while it waits."""
        problem = problem if problem is not None else self._problem
        backoff = Backoff()
        while True:
            self._dispatch()
            if self._done:
                return self._done.popleft()
            if self._poll():
                continue
            task = self._take(0)
            if task is not None:
                scores, err = self.runner(problem, task.Z, task.seed)
                self._finish(task, 0, scores, err)
                continue
            if not self.in_flight:
                raise RuntimeError("wait_one: no task in flight")
            backoff.pause()

    def _farm_map(self, problem: Any, Z: np.ndarray, seed: int) -> np.ndarray:
        """A whole population as tasks of a few members each (dynamic load balance)."""
        if self.in_flight:
            raise RuntimeError("MPI evaluator: map while asynchronous tasks are in flight")
        Z = np.ascontiguousarray(Z, dtype=np.float64)
        P = Z.shape[0]
        # About eight tasks per rank: a slow rank (which may hold ``depth`` of them) takes few
        # members, yet messages stay few.
        chunk = max(1, -(-P // (8 * self.size)))
        # Tasks of several members outlast a message's round trip: two queued per worker hide
        # it, more would only let a slow worker hoard members.
        self._depth_now = min(self.depth, 2)
        try:
            for a in range(0, P, chunk):
                self.submit(problem, Z[a : a + chunk], seed, key=a)
            scores, workers = np.full(P, np.nan), np.full(P, -1, dtype=np.int64)
            for _ in range(0, P, chunk):
                a, s, w = self.wait_one(problem)
                scores[a : a + len(s)], workers[a : a + len(s)] = s, w
        finally:
            self._depth_now = self.depth
        self.last_workers = workers
        return scores

    def _farm_stop(self, timeout: float) -> bool:
        """Collect what is still running (results ignored), then stop every worker."""
        t0 = time.perf_counter()
        self._queue.clear()
        self._done.clear()
        while any(self._outstanding.values()):
            if not self._poll(strict=False):
                if time.perf_counter() - t0 > timeout:
                    return False
                time.sleep(1e-3)
            self._queue.clear()
        self._sends += [self.comm.isend(None, dest=w, tag=TAG_STOP) for w in range(1, self.size)]
        self._farming = False
        return self._flush_sends(timeout=max(0.1, timeout - (time.perf_counter() - t0)))

    # -- worker ranks ------------------------------------------------------------------------
    def _farm_serve(self, problem: Any) -> str:
        """Take tasks from rank 0 until it ends the farm ("continue") or stops ("stop")."""
        status = self.MPI.Status()
        sends: list = []

        def probe() -> tuple | None:
            msg = self.comm.improbe(source=0, tag=self.MPI.ANY_TAG, status=status)
            return None if msg is None else (msg,)

        while True:
            (msg,) = wait_for(probe)
            data, tag = msg.recv(), status.Get_tag()
            if tag == TAG_TASK:
                tid, seed, Z = data
                scores, err = self.runner(problem, Z, seed)
                sends.append(self.comm.isend((tid, scores, err), dest=0, tag=TAG_RESULT))
                sends[:] = [r for r in sends if not r.Test()]
            elif tag in (TAG_END, TAG_STOP):
                wait_for(lambda s=sends: all(r.Test() for r in s))
                return "stop" if tag == TAG_STOP else "continue"
