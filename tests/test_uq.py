"""Uncertainties, reweighting, replicas, ensembles, convergence and the comparison command."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_python

from quantom_gf import convergence, uq
from quantom_gf.ensemble import poisson_replica, replicas
from quantom_gf.reweight import Reweighter


@pytest.fixture(scope="module")
def problem():
    from quantom_gf.build import build_problem

    over = {"simulation": {"n_events": 20000}, "data": {"n_events": 20000}, "objective": {"bins": 12}}
    return build_problem("proxy1d-detector", overrides=over)


def test_reweighter_equals_direct_simulation_at_its_centre(problem):
    z = problem.space.truth_unit + 0.01
    rw = Reweighter(problem, z, seed=5, factor=1)
    direct = problem.evaluate(z[None], 5)[0]
    assert rw.scores(z[None])[0] == pytest.approx(direct, rel=1e-12)


def test_reweighted_score_is_smooth(problem):
    zt = problem.space.truth_unit
    rw = Reweighter(problem, zt, seed=5, factor=2)
    t = np.linspace(-1, 1, 21)
    y = rw.scores(zt + np.outer(t, [0.01, 0, 0, 0, 0, 0]))
    resid = y - np.polyval(np.polyfit(t, y, 2), t)
    assert np.ptp(y) > 1.0 and np.abs(resid).max() < 1e-2 * np.ptp(y)
    # the event-moving score has steps where events cross bin edges: much rougher
    yd = problem.evaluate(zt + np.outer(t, [0.01, 0, 0, 0, 0, 0]), 5)
    rd = yd - np.polyval(np.polyfit(t, yd, 2), t)
    assert np.abs(rd).max() > 10 * np.abs(resid).max()


def test_curvature_gives_positive_definite_covariance_and_sane_pulls(problem):
    zt = problem.space.truth_unit
    c = uq.curvature(problem, zt, seed=3)
    assert c.ok, c.message
    assert np.allclose(c.cov, c.cov.T) and np.all(np.linalg.eigvalsh(c.cov) > 0)
    pull = (c.minimum - zt) / np.sqrt(np.diag(c.cov))
    assert np.all(np.abs(pull) < 4)
    # from a start several sigma away, the Newton steps come back to the same minimum
    far = np.clip(zt + 3 * np.sqrt(np.diag(c.cov)), 0, 1)
    c2 = uq.curvature(problem, far, seed=3)
    assert c2.ok and c2.distance > 2.0
    assert np.all(np.abs(c2.minimum - c.minimum) < 0.5 * np.sqrt(np.diag(c.cov)))


def test_replicas_spread_matches_curvature(problem):
    zt = problem.space.truth_unit
    c = uq.curvature(problem, zt, seed=3)
    rep = replicas(problem, c.minimum, 8, seed=4)
    assert rep["n"] == 8 and rep["failed"] == 0
    sig = np.sqrt(np.diag(c.cov)) * problem.space.width
    ratio = rep["std"] / sig
    assert np.all((ratio > 0.35) & (ratio < 2.5)), ratio  # 8 replicas: the spread is itself uncertain
    assert set(rep["bands"]) >= {"x", "u", "d", "sigma_x1", "sigma_x2"}


def test_poisson_replica_is_deterministic_and_differs_from_data(problem):
    a, b = poisson_replica(problem.data, 1, 0), poisson_replica(problem.data, 1, 0)
    c = poisson_replica(problem.data, 1, 1)
    assert np.array_equal(a.events, b.events) and not np.array_equal(a.events, c.events)
    assert abs(a.n_events - problem.data.n_events) < 5 * np.sqrt(problem.data.n_events)


def test_convergence_report_says_converged_at_minimum_and_not_when_far():
    good = convergence.report(1.0, 6, 100.0, 100, np.r_[np.linspace(500, 100, 20), np.full(20, 100.0)])
    assert good["converged"] and good["at_minimum"] and good["plateau"]
    early = convergence.report(8.0, 6, 100.0, 100, np.linspace(500, 100, 40))
    assert not early["converged"] and not early["at_minimum"] and early["plateau"] is False
    bad_fit = convergence.report(1.0, 6, 400.0, 100, None)
    assert not bad_fit["converged"] and bad_fit["fit_acceptable"] is False


def small_env(tmp_path, n=5000):
    p = tmp_path / "small.toml"
    p.write_text(f'extends = "proxy1d-detector"\n[simulation]\nn_events = {n}\n[data]\nn_events = {n}\n'
                 '[objective]\nbins = 8\n')  # fmt: skip
    return str(p)


@pytest.mark.slow
def test_run_converged_versus_stopped_early(tmp_path):
    """The truth-free verdict: converged for a full run, not converged for one stopped early."""
    env = small_env(tmp_path, 20000)
    out = {}
    for tag, budget in (("full", 6400), ("early", 128)):
        cp = run_python(["-m", "quantom_gf.run", "--strategy", "ga", "--env", env, "--budget", str(budget),
                         "--out", str(tmp_path / tag), "--no-plots"], cwd=tmp_path)  # fmt: skip
        assert cp.returncode == 0, cp.stderr
        out[tag] = json.loads((tmp_path / tag / "result.json").read_text())
    assert out["full"]["converged"] and out["full"]["closure"] and out["full"]["solver_closure"]
    assert not out["early"]["converged"]


@pytest.mark.slow
def test_ensemble_and_replicas_from_the_command_line(tmp_path):
    env = small_env(tmp_path)
    cp = run_python(["-m", "quantom_gf.run", "--strategy", "cmaes", "--env", env, "--budget", "640", "--ensemble", "2",
                     "--out", str(tmp_path / "ens"), "--no-plots"], cwd=tmp_path)  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    ens = json.loads((tmp_path / "ens" / "ensemble.json").read_text())
    assert ens["members"] == 2 and len(ens["ensemble_std"]) == 6 and "u" in ens["bands"]
    assert (tmp_path / "ens" / "member-01" / "result.json").is_file()
    cp = run_python(["-m", "quantom_gf.run", "--strategy", "cmaes", "--env", env, "--budget", "640", "--replicas", "3",
                     "--out", str(tmp_path / "rep"), "--no-plots"], cwd=tmp_path)  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    res = json.loads((tmp_path / "rep" / "result.json").read_text())
    assert res["replicas"]["n"] + res["replicas"]["failed"] == 3
    assert "data replicas" in cp.stdout


@pytest.mark.slow
def test_compare_and_coverage_commands(tmp_path):
    env = small_env(tmp_path)
    cp = run_python(["-m", "quantom_gf.compare", "--strategies", "cmaes", "random", "--seeds", "1", "--env", env,
                     "--budget", "320", "--out", str(tmp_path / "cmp"), "--jobs", "1"], cwd=tmp_path)  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    md = (tmp_path / "cmp" / "compare.md").read_text()
    assert "| cmaes |" in md and "| random |" in md and "evals_to_closure" in md
    assert (tmp_path / "cmp" / "runs.csv").is_file() and (tmp_path / "cmp" / "summary.csv").is_file()
    cp = run_python(["-m", "quantom_gf.compare", "--coverage", "2", "--strategies", "cmaes", "--env", env,
                     "--budget", "320", "--out", str(tmp_path / "cov"), "--jobs", "1"], cwd=tmp_path)  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    cov = json.loads((tmp_path / "cov" / "coverage.json").read_text())
    assert cov["truths"] == 2 and 0.0 <= cov["coverage_68"] <= 1.0
    cp = run_python(["-m", "quantom_gf.compare", "--strategies", "nope"], cwd=tmp_path)
    assert cp.returncode == 2 and "unknown strategy" in cp.stderr and "Traceback" not in cp.stderr
