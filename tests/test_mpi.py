"""MPI evaluation, asynchronous evaluation, faults, checkpoints across rank counts, PBT workers.

Each MPI test launches ``mpiexec -n 2`` (4 where it matters, oversubscribed: MPICH needs no
flag; Open MPI would need --oversubscribe) on ``python -m quantom_gf.run`` with a small env
(5,000 events) and a small budget; skipped without mpiexec or mpi4py.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
try:
    import mpi4py  # noqa: F401

    HAVE_MPI4PY = True
except ImportError:
    HAVE_MPI4PY = False
needs_mpi = pytest.mark.skipif(MPIEXEC is None or not HAVE_MPI4PY, reason="needs mpiexec and mpi4py")

ENV_TOML = 'extends = "proxy1d"\n[simulation]\nn_events = 5000\n[data]\nn_events = 5000\n'
GA_TOML = 'description = "small ga"\nsolver = "ga"\nbudget = 160\n[settings]\npopulation = 16\n'
CMAES_TOML = 'description = "small cmaes"\nsolver = "cmaes"\nbudget = 160\n[settings]\npopsize = 16\n'
STEADY_TOML = 'description = "small steady ga"\nsolver = "ga-steady"\nbudget = 96\n[settings]\npopulation = 16\n'
PPO_TOML = 'description = "tiny ppo"\nsolver = "ppo"\nbudget = 256\n[settings]\nn_envs = 8\nnet_arch = [16]\n'


def _env(extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QUANTOM_GF_", "PMI_", "OMPI_", "PMIX_"))}
    env.update({"OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "CI": "1"})
    env.update(extra or {})
    return env


def _cmd(ranks: int, args: list[str]) -> list[str]:
    py = [sys.executable, "-m", "quantom_gf.run", *args, "--quiet", "--no-plots"]
    return py if ranks == 0 else [MPIEXEC, "-n", str(ranks), *py]


def _run(ranks: int, args: list[str], extra: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``mpiexec -n ranks python -m quantom_gf.run ARGS`` (ranks 0: plain python, no MPI)."""
    return subprocess.run(
        _cmd(ranks, args), cwd=REPO, env=_env(extra), capture_output=True, text=True, timeout=timeout, check=False
    )


def _numbers(run_dir: Path) -> dict:
    """result.json without the wall time and the package versions."""
    res = json.loads((run_dir / "result.json").read_text())
    return {k: v for k, v in res.items() if k not in ("wall_time_s", "versions", "run_dir")}


@pytest.fixture(scope="module")
def presets(tmp_path_factory) -> dict[str, str]:
    """Small env and strategy TOML files."""
    d = tmp_path_factory.mktemp("presets")
    out = {}
    texts = {"env": ENV_TOML, "ga": GA_TOML, "cmaes": CMAES_TOML, "steady": STEADY_TOML, "ppo": PPO_TOML}
    for name, text in texts.items():
        (d / f"{name}.toml").write_text(text)
        out[name] = str(d / f"{name}.toml")
    return out


def _ga_args(presets: dict, out: Path, *extra: str, strategy: str = "ga") -> list[str]:
    return ["--strategy", presets[strategy], "--env", presets["env"], "--seed", "3", "--out", str(out), *extra]


@pytest.fixture(scope="module")
def serial_ga(presets, tmp_path_factory) -> dict:
    """The serial reference run of the small GA."""
    out = tmp_path_factory.mktemp("serial") / "run"
    p = _run(0, _ga_args(presets, out))
    assert p.returncode == 0, p.stderr
    return _numbers(out)


@pytest.mark.mpi
@needs_mpi
def test_results_bit_identical_for_1_2_4_ranks(presets, serial_ga, tmp_path):
    # 1 rank: the serial reference (no mpiexec); 2 ranks through --evaluator auto (which must
    # pick MPI under mpiexec); 4 ranks oversubscribed.
    for ranks, evaluator in ((2, "auto"), (4, "mpi")):
        out = tmp_path / f"n{ranks}"
        p = _run(ranks, _ga_args(presets, out, "--evaluator", evaluator))
        assert p.returncode == 0, p.stderr
        assert _numbers(out) == serial_ga, f"{ranks} ranks differ from the serial run"
        rows = (out / "evaluations.csv").read_text().splitlines()
        header, body = rows[0].split(","), [r.split(",") for r in rows[1:]]
        assert len(body) == 160
        workers = {int(r[header.index("worker")]) for r in body}
        assert workers == set(range(ranks)), "every rank (rank 0 included) scores a share"


@pytest.mark.mpi
@needs_mpi
def test_transient_fault_is_retried_elsewhere(presets, serial_ga, tmp_path):
    out = tmp_path / "run"
    p = _run(2, _ga_args(presets, out, "--evaluator", "mpi"), {"QUANTOM_GF_FAULT": "1:2"})
    assert p.returncode == 0, p.stderr
    assert _numbers(out) == serial_ga
    first = [r.split(",") for r in (out / "evaluations.csv").read_text().splitlines()[1:17]]
    assert {r[3] for r in first} == {"0"}, "rank 1's failed share of generation 1 was rescored on rank 0"


@pytest.mark.mpi
@needs_mpi
@pytest.mark.parametrize("evaluator", ["mpi", "mpi-async"])
def test_persistent_fault_aborts_cleanly(presets, tmp_path, evaluator):
    t0 = time.perf_counter()
    args = ["--strategy", presets["steady" if evaluator == "mpi-async" else "ga"], "--env", presets["env"]]
    p = _run(2, [*args, "--out", str(tmp_path / "run"), "--evaluator", evaluator], {"QUANTOM_GF_FAULT": "*:1000000"})
    assert time.perf_counter() - t0 < 30
    assert p.returncode != 0
    errors = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "injected fault" in errors[0] and "failed 3 times" in errors[0], p.stderr
    assert "Traceback" not in p.stderr


@pytest.mark.mpi
@needs_mpi
def test_sigterm_checkpoint_then_resume_with_one_rank(presets, tmp_path):
    # CMA-ES: any generational solver will do (ga's history gains a column once it has scores).
    ref = tmp_path / "ref"
    p = _run(0, _ga_args(presets, ref, strategy="cmaes"))
    assert p.returncode == 0, p.stderr
    out = tmp_path / "run"
    # Slow every rank down (results unchanged) so the signal lands mid-run.
    proc = subprocess.Popen(
        _cmd(2, _ga_args(presets, out, "--evaluator", "mpi", strategy="cmaes")),
        cwd=REPO,
        env=_env({"QUANTOM_GF_SLOW": "*:40"}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    t0 = time.perf_counter()
    while not (out / "checkpoint.pkl").is_file() and time.perf_counter() - t0 < 60:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "checkpoint written" in err and not (out / "result.json").exists()
    done = pickle.loads((out / "checkpoint.pkl").read_bytes())["solver_state"]["evaluations"]
    assert 0 < done < 160
    p = _run(0, ["--resume", str(out)])  # one process, no MPI
    assert p.returncode == 0, p.stderr
    assert _numbers(out) == _numbers(ref)


@pytest.mark.mpi
@needs_mpi
def test_steady_state_ga_on_async_workers(presets, tmp_path):
    out = tmp_path / "run"
    args = ["--strategy", presets["steady"], "--env", presets["env"], "--out", str(out), "--evaluator", "mpi-async"]
    p = _run(2, args)
    assert p.returncode == 0, p.stderr
    assert _numbers(out)["evaluations"] == 96
    rows = (out / "evaluations.csv").read_text().splitlines()
    header, body = rows[0].split(","), [r.split(",") for r in rows[1:]]
    cand = sorted(int(r[header.index("candidate")]) for r in body)
    assert cand == list(range(96)), "every candidate scored exactly once"
    assert {r[header.index("worker")] for r in body} == {"0", "1"}
    seeds = {int(r[header.index("candidate")]): int(r[header.index("seed")]) for r in body}
    assert len({seeds[k] for k in range(16)}) == 1 and seeds[0] != seeds[16], "one seed per cohort of 16"


PBT_SCRIPT = """
import json, sys, time
import numpy as np
from mpi4py import MPI
from quantom_gf.solvers.pbt import PBTConfig, coordinate, work

class Fake:
    # Rank 1 is good but slow; rank 0 is fast but learns nothing on its own.
    def __init__(self, rank):
        self.rank, self.evaluations, self.stopped = rank, 0, False
        self.theta, self.lr = (0.9 if rank == 1 else 5.0), 1.0
    def default_interval(self): return 10
    def learn_chunk(self, n):
        time.sleep(0.3 if self.rank == 1 else 0.05)
        self.evaluations += n
    def score(self): return abs(self.theta - 1.0)
    def get_params(self): return self.theta
    def set_params(self, p, factor): self.theta, self.lr = p, self.lr * factor
    def recommend(self): return np.array([self.theta])

comm = MPI.COMM_WORLD
cfg = PBTConfig(interval=10, cooldown=1, final_timeout=20)
learner = Fake(comm.rank)
rng = np.random.default_rng(comm.rank)
if comm.rank == 0:
    t0 = time.perf_counter()
    board = coordinate(comm, learner, 400, cfg, rng)
    print("RESULT " + json.dumps({"seconds": time.perf_counter() - t0, "theta": learner.theta,
          "adopted": board[0]["adopted"], "evals": [board[r]["evaluations"] for r in sorted(board)]}))
else:
    work(comm, learner, cfg, rng)
"""


@pytest.mark.mpi
@needs_mpi
def test_pbt_exchange_with_a_slow_worker(tmp_path):
    script = tmp_path / "pbt_fake.py"
    script.write_text(textwrap.dedent(PBT_SCRIPT))
    p = subprocess.run(
        [MPIEXEC, "-n", "2", sys.executable, str(script)],
        cwd=REPO, env=_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    res = json.loads([ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")][-1][7:])
    assert res["adopted"] >= 1 and res["theta"] == pytest.approx(0.9), "rank 0 adopted the better policy"
    assert res["evals"][0] == 400
    # 40 chunks on rank 0; in lock-step with rank 1 they would take 40 x 0.3 s.
    assert res["seconds"] < 6.0, "rank 0 was held by the slow worker"
    assert 0 < res["evals"][1] < 400


@pytest.mark.mpi
@pytest.mark.torch
@needs_mpi
def test_ppo_async_workers(presets, tmp_path):
    pytest.importorskip("stable_baselines3")
    out = tmp_path / "run"
    args = ["--strategy", presets["ppo"], "--env", presets["env"], "--out", str(out), "--workers", "async"]
    p = _run(2, args, {"QUANTOM_GF_PBT": "interval=64"}, timeout=180)
    assert p.returncode == 0, p.stderr
    res = _numbers(out)
    assert "population-based training over 2 learners" in res["solver_message"]
    assert res["evaluations"] > 256  # both learners' evaluations


def test_serial_runs_do_not_import_mpi4py():
    code = (
        "import sys, numpy as np\n"
        "import quantom_gf\n"
        "from quantom_gf.evaluate import make_evaluator, as_async\n"
        "from quantom_gf.build import build_problem\n"
        "from quantom_gf.solvers import get\n"
        "ev = make_evaluator('auto')\n"
        "p = build_problem('proxy1d', overrides={'simulation': {'n_events': 500}, 'data': {'n_events': 500}})\n"
        "get('ga-steady')(p.dim, 0, population=4).run(p, 8, ev)\n"
        "assert ev.name == 'serial' and 'mpi4py' not in sys.modules, sorted(sys.modules)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=_env(), capture_output=True, text=True, check=False)
    assert p.returncode == 0, p.stderr


def test_steady_state_ga_serial_is_deterministic_and_resumable(make_problem):
    from quantom_gf.solvers import get

    problem = make_problem("proxy1d", n_sim=1000, n_data=1000)
    cls = get("ga-steady")
    full = cls(problem.dim, 5, population=8)
    res = full.run(problem, 64)
    first = cls(problem.dim, 5, population=8)
    first.run(problem, 64, callback=lambda sv, info: info.generation >= 3)  # stop after 3 reports
    assert first.evaluations == 24
    resumed = cls(problem.dim, 5, population=8)
    resumed.load_state_dict(pickle.loads(pickle.dumps(first.state_dict())))
    again = resumed.run(problem, 64)
    np.testing.assert_array_equal(again.z, res.z)
    assert again.evaluations == res.evaluations == 64
