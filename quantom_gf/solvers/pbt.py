"""Asynchronous RL workers: population-based training over MPI ranks (``--workers async``).

``mpiexec -n N python -m quantom_gf.run --strategy ppo --workers async`` runs one learner per
rank, each with its own seed, and no global barrier:

- every learner learns in chunks of ``interval`` evaluations; after each chunk a worker posts
  a report to rank 0 with a nonblocking send (its recent mean score, evaluations, current
  answer, and its policy only when it beats the best score it has been told of);
- rank 0 (a learner too) reads the reports at its own chunk boundaries and answers each with
  the best score so far, plus, when the reporter is in the worst ``fraction`` of the
  population, the best learner's policy to adopt (exploit) with its learning rate multiplied
  by a random factor from ``perturb`` (explore); a learner that adopted waits ``cooldown``
  chunks before it may adopt again;
- a worker looks for answers only between its chunks, without waiting: a slow worker delays
  nobody, it just reports less often.

The budget is per learner (the wall time of one learner): rank 0 learns ``budget``
evaluations, then tells the others to stop; each finishes its current chunk and sends a final
report. The answer is the current answer of the learner with the best recent score;
``evaluations`` in result.json counts all learners. Checkpoints hold rank 0's learner; a
resumed run restarts the exchange from it (the other learners start afresh and adopt it).

The exchange is generic: any object with ``learn_chunk(n)``, ``score()``, ``get_params()``,
``set_params(params, factor)``, ``recommend()``, ``evaluations`` and ``stopped`` can take part
(``SB3Learner`` wraps the RL solvers of ``rl.py``). Settings come from the environment:
``QUANTOM_GF_PBT="interval=512,fraction=0.25,cooldown=2,perturb=0.8:1.25,final_timeout=120"``.
"""

from __future__ import annotations

import io
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import rng as rngmod
from ..errors import ConfigError
from .base import Callback, Solver, SolverResult

PBT_STREAM = 41  # stream purpose of the perturbation draws
TAG_REPORT, TAG_ADVICE, TAG_STOP, TAG_FINAL = 21, 22, 23, 24


@dataclass
class PBTConfig:
    """Exchange settings (see the module docstring)."""

    interval: int | None = None  # evaluations per chunk (None: 16 vector steps of the learner)
    fraction: float = 0.25
    cooldown: int = 2
    perturb: tuple[float, float] = (0.8, 1.25)
    final_timeout: float = 120.0

    @classmethod
    def from_env(cls) -> PBTConfig:
        """Defaults overridden by ``QUANTOM_GF_PBT`` (``key=value`` pairs, comma separated)."""
        cfg = cls()
        for item in filter(None, os.environ.get("QUANTOM_GF_PBT", "").split(",")):
            key, _, value = item.partition("=")
            key = key.strip()
            if key == "perturb":
                lo, _, hi = value.partition(":")
                cfg.perturb = (float(lo), float(hi or lo))
            elif key in ("interval", "cooldown"):
                setattr(cfg, key, int(value))
            elif key in ("fraction", "final_timeout"):
                setattr(cfg, key, float(value))
            else:
                raise ConfigError(f"QUANTOM_GF_PBT: unknown key '{key}'")
        return cfg


class SB3Learner:
    """An RL solver of ``rl.py`` driven in chunks: each chunk is one ``solver.run`` call that
    continues from the solver's saved model (for PPO nothing is lost between chunks)."""

    def __init__(self, solver: Any, problem: Any, evaluator: Any = None, callback: Callback | None = None) -> None:
        self.solver, self.problem, self.evaluator, self.callback = solver, problem, evaluator, callback
        self._scores: list[float] = []
        self._z = np.full(solver.dim, 0.5)

    @property
    def evaluations(self) -> int:
        """Evaluations spent by this learner."""
        return int(self.solver.evaluations)

    @property
    def stopped(self) -> bool:
        """True once the callback stopped the run (SIGTERM on rank 0)."""
        return bool(self.solver.stopped)

    def default_interval(self) -> int:
        """16 vector steps (bandit form); the step form also pays its final rollout per chunk."""
        s = self.solver.settings
        n = int(s.get("n_envs", 32))
        if s.get("form", "bandit") == "step":
            return n * (1 + 2 * int(s.get("episode_steps", 20))) + 16 * 2 * n
        return 16 * n

    def min_chunk(self) -> int:
        """The fewest evaluations one ``solver.run`` call can take (one step, plus the step
        form's start and final rollout)."""
        s = self.solver.settings
        n = int(s.get("n_envs", 32))
        if s.get("form", "bandit") == "step":
            return n * (1 + 2 * int(s.get("episode_steps", 20))) + 3 * n
        return n

    def learn_chunk(self, n: int) -> None:
        """About ``n`` more evaluations of learning."""
        self._scores = []

        def record(sv: Any, info: Any) -> bool | None:
            self._scores.append(float(np.mean(info.scores)))
            return self.callback(sv, info) if self.callback is not None else None

        res = self.solver.run(self.problem, self.evaluations + int(n), self.evaluator, record)
        self._z = np.asarray(res.z, dtype=np.float64)

    def score(self) -> float:
        """Mean score over the second half of the last chunk (lower is better)."""
        s = self._scores[len(self._scores) // 2 :]
        return float(np.mean(s)) if s else float("inf")

    def recommend(self) -> np.ndarray:
        """The learner's current answer (unit cube)."""
        return self._z

    def get_params(self) -> bytes:
        """The SB3 model (policy, value net, optimiser state) as zip bytes."""
        return self.solver.state_dict()["model"]

    def set_params(self, params: bytes, factor: float) -> None:
        """Adopt another learner's model, learning rate times ``factor``."""
        cls = self.solver.algo_class()
        model = cls.load(io.BytesIO(params), device=self.solver.settings.get("device", "cpu"))
        if isinstance(model.learning_rate, float | int):
            model.learning_rate = float(model.learning_rate) * factor
            model._setup_lr_schedule()  # SB3 rebuilds its schedule from learning_rate
        buf = io.BytesIO()
        model.save(buf)
        state = self.solver.state_dict()
        state["model"] = buf.getvalue()
        self.solver.load_state_dict(state)


def _probe(comm: Any, MPI: Any, source: int, status: Any) -> tuple | None:
    msg = comm.improbe(source=source, tag=MPI.ANY_TAG, status=status)
    return None if msg is None else (msg.recv(), status.Get_source(), status.Get_tag())


def coordinate(
    comm: Any, learner: Any, budget: int, cfg: PBTConfig, rng: np.random.Generator, log: Callable | None = None
) -> dict[int, dict]:
    """Rank 0: learn, read reports, advise, adopt; then stop the workers. Returns the board
    ``{rank: {"score", "evaluations", "z", "adopted"}}`` with every learner's last report."""
    from mpi4py import MPI

    size, status = comm.Get_size(), MPI.Status()
    interval = cfg.interval or learner.default_interval()
    board: dict[int, dict] = {r: {"score": np.inf, "evaluations": 0, "z": None, "adopted": 0} for r in range(size)}
    params: dict[int, tuple[float, Any]] = {}  # rank -> (score, policy) of its last report with a policy
    last_adopt = {r: -(10**9) for r in range(size)}
    chunks = {r: 0 for r in range(size)}
    sends: list = []

    def best() -> tuple[int, float]:
        r = min(params, key=lambda k: params[k][0]) if params else -1
        return r, (params[r][0] if r >= 0 else np.inf)

    def behind(r: int) -> bool:
        scores = sorted(b["score"] for b in board.values() if np.isfinite(b["score"]))
        if len(scores) < 2:
            return False
        cut = scores[-max(1, int(np.ceil(cfg.fraction * len(scores))))]
        return board[r]["score"] >= cut and chunks[r] - last_adopt[r] > cfg.cooldown

    def take(data: tuple, src: int, tag: int) -> None:
        board[src].update(score=data[0], evaluations=data[1], z=data[2])
        chunks[src] += 1
        if tag == TAG_REPORT and data[3] is not None:
            params[src] = (data[0], data[3])

    smallest = getattr(learner, "min_chunk", lambda: 1)()
    while budget - learner.evaluations >= smallest and not learner.stopped:
        learner.learn_chunk(max(smallest, min(interval, budget - learner.evaluations)))
        take((learner.score(), learner.evaluations, learner.recommend(), learner.get_params()), 0, TAG_REPORT)
        while (got := _probe(comm, MPI, MPI.ANY_SOURCE, status)) is not None:
            data, src, tag = got
            take(data, src, tag)
            b, b_score = best()
            advice = None
            if behind(src) and b not in (-1, src):
                last_adopt[src] = chunks[src]
                advice = (b, params[b][1], float(rng.uniform(*cfg.perturb)))
                board[src]["adopted"] += 1
            sends.append(comm.isend((b_score, advice), dest=src, tag=TAG_ADVICE))
        b, _ = best()
        if behind(0) and b not in (-1, 0):
            last_adopt[0] = chunks[0]
            board[0]["adopted"] += 1
            learner.set_params(params[b][1], float(rng.uniform(*cfg.perturb)))
            if log:
                log(f"rank 0 adopts the policy of rank {b}")
        sends = [s for s in sends if not s.Test()]
    sends += [comm.isend(None, dest=r, tag=TAG_STOP) for r in range(1, size)]
    waiting, t0 = set(range(1, size)), time.perf_counter()
    while waiting and time.perf_counter() - t0 < cfg.final_timeout:
        got = _probe(comm, MPI, MPI.ANY_SOURCE, status)
        if got is None:
            time.sleep(1e-3)
            continue
        data, src, tag = got
        take(data, src, tag)
        if tag == TAG_FINAL:
            waiting.discard(src)
    if waiting:
        print(f"warning: PBT ranks {sorted(waiting)} sent no final report in time", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    while not all(s.Test() for s in sends) and time.perf_counter() - t0 < cfg.final_timeout:
        time.sleep(1e-3)
    return board


def work(comm: Any, learner: Any, cfg: PBTConfig, rng: np.random.Generator) -> None:
    """A worker rank: learn chunks, post reports, adopt when advised, until rank 0 says stop."""
    from mpi4py import MPI

    status = MPI.Status()
    interval = max(cfg.interval or learner.default_interval(), getattr(learner, "min_chunk", lambda: 1)())
    known_best, advice, stop, sends = np.inf, None, False, []

    def read() -> None:
        nonlocal known_best, advice, stop
        while (got := _probe(comm, MPI, 0, status)) is not None:
            data, _, tag = got
            if tag == TAG_STOP:
                stop = True
            elif tag == TAG_ADVICE:
                known_best = data[0]
                advice = data[1] or advice  # the latest policy offered wins

    while True:
        read()
        if stop:
            break
        if advice is not None:
            learner.set_params(advice[1], advice[2])
            advice = None
        learner.learn_chunk(interval)
        score = learner.score()
        policy = learner.get_params() if score < known_best else None
        sends.append(comm.isend((score, learner.evaluations, learner.recommend(), policy), dest=0, tag=TAG_REPORT))
        sends = [s for s in sends if not s.Test()]
    sends.append(comm.isend((learner.score(), learner.evaluations, learner.recommend()), dest=0, tag=TAG_FINAL))
    while not all(s.Test() for s in sends):
        time.sleep(1e-3)


def learner_seed(seed: int, rank: int) -> int:
    """Rank 0 keeps the run's seed (it is the single-learner run until it adopts); others differ."""
    if rank == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), PBT_STREAM, rank]).generate_state(1)[0] % 2**31)


class PBTSolver(Solver):
    """Rank 0's side: its learner plus the coordination. Checkpoints are its learner's."""

    name = "pbt"

    def __init__(self, inner: Solver, comm: Any, cfg: PBTConfig | None = None) -> None:
        super().__init__(inner.dim, inner.seed)
        self.inner, self.comm, self.cfg = inner, comm, cfg or PBTConfig.from_env()
        self.board: dict[int, dict] = {}

    @property
    def evaluations(self) -> int:  # type: ignore[override]
        """Rank 0's learner's evaluations (the progress bar's count)."""
        inner = self.__dict__.get("inner")
        return int(inner.evaluations) if inner is not None else 0

    @evaluations.setter
    def evaluations(self, value: int) -> None:
        pass  # Solver.__init__ sets it; the inner learner keeps the count

    def history_extra(self) -> dict:
        """Nothing beyond the learner's own records."""
        return {}

    def run(self, problem: Any, budget: int, evaluator: Any = None, callback: Callback | None = None) -> SolverResult:
        """Learn on rank 0 while exchanging with the other ranks; the best learner's answer."""
        t0 = time.perf_counter()
        learner = SB3Learner(self.inner, problem, evaluator, callback)
        rng = rngmod.stream(self.seed, PBT_STREAM, 0)
        self.board = coordinate(self.comm, learner, budget, self.cfg, rng)
        finite = {r: b for r, b in self.board.items() if b["z"] is not None}
        best = min(finite, key=lambda r: finite[r]["score"]) if finite else 0
        z = finite[best]["z"] if finite else learner.recommend()
        total = int(sum(b["evaluations"] for b in self.board.values()))
        extra = {
            "pbt_best_rank": best,
            "pbt_scores": [float(self.board[r]["score"]) for r in sorted(self.board)],
            "pbt_evaluations": [int(self.board[r]["evaluations"]) for r in sorted(self.board)],
            "pbt_adoptions": [int(self.board[r]["adopted"]) for r in sorted(self.board)],
        }
        return SolverResult(
            z=np.asarray(z, dtype=np.float64),
            evaluations=total,
            generations=self.inner.generation,
            converged=False,
            message=f"population-based training over {len(self.board)} learners; answer of rank {best}"
            + ("; stopped by callback" if learner.stopped else ""),
            wall_time_s=time.perf_counter() - t0,
            extra=extra,
        )

    def state_dict(self) -> dict:
        """Rank 0's learner state."""
        return self.inner.state_dict()

    def load_state_dict(self, state: dict) -> None:
        """Restore rank 0's learner."""
        self.inner.load_state_dict(state)


class PBTEvaluator:
    """Serial evaluation on every rank; on worker ranks ``serve`` runs that rank's learner."""

    name = "pbt"
    n_workers = 1
    last_workers = None

    def __init__(self, comm: Any, learner_solver: Solver | None, cfg: PBTConfig) -> None:
        from ..evaluate import SerialEvaluator

        self.comm, self.solver, self.cfg = comm, learner_solver, cfg
        self.is_root = comm.Get_rank() == 0
        self._serial = SerialEvaluator()

    def map(self, problem: Any, Z: np.ndarray, seed: int) -> np.ndarray:
        """Scores of Z in this process."""
        return self._serial.map(problem, Z, seed)

    def serve(self, problem: Any) -> None:
        """A worker rank's learner loop; SIGTERM/SIGINT are left to rank 0, which stops everyone."""
        import signal

        from .. import rng as rngm

        rank = self.comm.Get_rank()
        old = {s: signal.signal(s, lambda *_: None) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            learner = SB3Learner(self.solver, problem, self._serial)
            work(self.comm, learner, self.cfg, rngm.stream(self.solver.seed, PBT_STREAM, rank))
        except Exception as exc:  # noqa: BLE001 - one broken learner must not hang the job
            print(f"error: PBT rank {rank}: {type(exc).__name__}: {exc}; aborting the job", file=sys.stderr)
            sys.stderr.flush()
            self.comm.Abort(1)
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def close(self) -> None:
        """Nothing to release (rank 0 stopped the workers at the end of ``run``)."""


def pbt_setup(make_solver: Callable[[int], Solver], solver: Solver, seed: int) -> tuple[Solver, Any]:
    """(solver, evaluator) for ``--workers async``: PBTSolver on rank 0, a learner in serve elsewhere."""
    from .rl import RLSolver

    if not isinstance(solver, RLSolver):
        raise ConfigError(
            f"--workers async runs RL learners (ppo, sac, td3); '{solver.name}' is not one "
            "(for population methods use --evaluator mpi or mpi-async)"
        )
    try:
        from mpi4py import MPI
    except ImportError:
        raise ConfigError("--workers async needs mpi4py (pip install 'quantom_gf[mpi]')") from None
    comm, cfg = MPI.COMM_WORLD, PBTConfig.from_env()
    rank = comm.Get_rank()
    if rank == 0:
        return PBTSolver(solver, comm, cfg), PBTEvaluator(comm, None, cfg)
    return solver, PBTEvaluator(comm, make_solver(learner_seed(seed, rank)), cfg)
