"""The run command end to end: run directory, result.json, bad input, kill -9 + resume, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import run_python

REQUIRED = {
    "parameter_names", "estimate", "uncertainty", "truth", "pull", "objective", "evaluations",
    "wall_time_s", "converged", "strategy", "env", "seed",
}  # fmt: skip


def small_env(tmp_path: Path, n: int = 5000, name: str = "small.toml") -> str:
    """A fast variant of the default closure test, written as a user would."""
    path = tmp_path / name
    path.write_text(
        f'extends = "proxy1d-detector"\n[simulation]\nn_events = {n}\n[data]\nn_events = {n}\n[objective]\nbins = 8\n'
    )
    return str(path)


def numbers(result: dict) -> dict:
    """result.json without the fields that may differ between identical runs."""
    return {k: v for k, v in result.items() if k not in ("wall_time_s", "versions")}


def test_help_lists_strategies_and_envs(tmp_path):
    cp = run_python(["-m", "quantom_gf.run", "--help"], cwd=tmp_path)
    assert cp.returncode == 0
    for word in ("cmaes", "ga", "sa", "random", "proxy1d", "proxy1d-detector"):
        assert word in cp.stdout


def test_small_run_writes_run_directory(tmp_path):
    out = tmp_path / "run"
    cp = run_python(
        ["-m", "quantom_gf.run", "--strategy", "cmaes", "--env", small_env(tmp_path), "--budget", "640",
         "--seed", "3", "--out", str(out), "--no-plots"], cwd=tmp_path)  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    for f in ("config.toml", "history.csv", "checkpoint.pkl", "result.json", "data.npz"):
        assert (out / f).is_file(), f
    res = json.loads((out / "result.json").read_text())
    assert REQUIRED <= set(res)
    assert res["evaluations"] <= 640 and res["strategy"] == "cmaes" and res["seed"] == 3
    assert len(res["estimate"]) == 6 and len(res["uncertainty"]) == 6
    assert all(np.isfinite(res["uncertainty"])) and all(u > 0 for u in res["uncertainty"])
    assert "closure (final estimate):" in cp.stdout and "| N_u" in cp.stdout
    rows = (out / "history.csv").read_text().strip().splitlines()
    assert len(rows) - 1 == res["evaluations"] // 32  # one row per generation (popsize 32)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--strategy", "nope"], "unknown strategy 'nope'"),
        (["--env", "nope"], "unknown env 'nope'"),
        (["--budget", "0"], "budget must be a positive integer"),
        (["--budget", "-5"], "budget must be a positive integer"),
        (["--seed", "-1"], "--seed must be a non-negative integer"),
        (["--resume", "."], "is not a run directory"),
        (["--evaluator", "carrier-pigeon"], "unknown evaluator"),
        (["--strategy", "ga", "--device", "cuda"], "runs on the CPU only"),
    ],
)
def test_bad_input_one_line_no_traceback(tmp_path, args, message):
    cp = run_python(["-m", "quantom_gf.run", *args, "--out", str(tmp_path / "x")], cwd=tmp_path)
    assert cp.returncode != 0
    assert message in cp.stderr
    assert "Traceback" not in cp.stderr and len(cp.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()  # no half-written run directory


def test_unknown_key_in_strategy_preset(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('solver = "cmaes"\nbudget = 100\n[settings]\npopsize = 8\nwarp_drive = true\n')
    cp = run_python(["-m", "quantom_gf.run", "--strategy", str(bad), "--out", str(tmp_path / "x")], cwd=tmp_path)
    assert cp.returncode == 2 and "warp_drive" in cp.stderr and "Traceback" not in cp.stderr
    bad.write_text('solver = "cmaes"\nbudgett = 100\n')
    cp = run_python(["-m", "quantom_gf.run", "--strategy", str(bad), "--out", str(tmp_path / "x")], cwd=tmp_path)
    assert cp.returncode == 2 and "budgett" in cp.stderr
    assert not (tmp_path / "x").exists()


def test_data_file_with_nan(tmp_path):
    from quantom_gf.data import load_npz

    good = tmp_path / "d.npz"
    cp = run_python(["-m", "quantom_gf.data", "make", "--env", small_env(tmp_path), "--out", str(good)], cwd=tmp_path)
    assert cp.returncode == 0, cp.stderr
    es = load_npz(good)
    es.events[3, 1] = np.nan
    np.savez(tmp_path / "nan.npz", events=es.events, xsec_total=es.xsec_total, xsec_total_err=es.xsec_total_err)
    cp = run_python(["-m", "quantom_gf.run", "--data", str(tmp_path / "nan.npz"), "--out", str(tmp_path / "x")],
                    cwd=tmp_path)  # fmt: skip
    assert cp.returncode == 2 and "NaN" in cp.stderr and "Traceback" not in cp.stderr
    assert not (tmp_path / "x").exists()


def _start(tmp_path, out, budget, env):
    cmd = [sys.executable, "-m", "quantom_gf.run", "--strategy", "cmaes", "--env", env, "--budget", str(budget),
           "--seed", "11", "--out", str(out), "--no-plots"]  # fmt: skip
    return subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_rows(out: Path, rows: int, proc, timeout: float = 60) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        h = out / "history.csv"
        if h.is_file() and len(h.read_text().splitlines()) > rows:
            return
        if proc.poll() is not None:
            pytest.fail(f"run ended before it could be interrupted: {proc.stderr.read()}")
        time.sleep(0.02)
    pytest.fail("run made no progress")


@pytest.mark.slow
@pytest.mark.parametrize("how", ["kill9", "sigterm"])
def test_interrupt_and_resume_is_bit_identical(tmp_path, how):
    env = small_env(tmp_path, n=20000)
    budget = 1920
    ref = tmp_path / "ref"
    cp = run_python(["-m", "quantom_gf.run", "--strategy", "cmaes", "--env", env, "--budget", str(budget),
                     "--seed", "11", "--out", str(ref), "--no-plots"], cwd=tmp_path)  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    out = tmp_path / "cut"
    proc = _start(tmp_path, out, budget, env)
    _wait_rows(out, 8, proc)
    if how == "kill9":
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    else:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 128 + signal.SIGTERM and "--resume" in err
    assert not (out / "result.json").exists()
    cp = run_python(["-m", "quantom_gf.run", "--resume", str(out), "--no-plots"], cwd=tmp_path)
    assert cp.returncode == 0, cp.stderr
    a = json.loads((ref / "result.json").read_text())
    b = json.loads((out / "result.json").read_text())
    assert numbers(a) == numbers(b)
    ha = (ref / "history.csv").read_text().splitlines()
    hb = (out / "history.csv").read_text().splitlines()
    strip = [lambda r: r.split(",")[:4] for _ in (0,)][0]
    assert [strip(r) for r in ha] == [strip(r) for r in hb]  # same generations, seeds, best scores
    if os.environ.get("CI"):
        return
