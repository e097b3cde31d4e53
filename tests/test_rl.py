"""RL solvers (PPO, SAC, TD3 from stable-baselines3) on the batched vector environments."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

from conftest import REPO, run_python  # noqa: E402

from quantom_gf.build import build_problem  # noqa: E402
from quantom_gf.solvers import get  # noqa: E402

SMALL = {"simulation": {"n_events": 2000}, "data": {"n_events": 2000}}
# Tiny networks and early learning so a few hundred evaluations exercise every code path.
FAST = {
    "ppo": {"n_envs": 8, "net_arch": [16]},
    "sac": {"n_envs": 8, "net_arch": [16], "learning_starts": 16, "batch_size": 16, "gradient_steps": 1},
    "td3": {"n_envs": 8, "net_arch": [16], "learning_starts": 16, "batch_size": 16, "gradient_steps": 1},
}


@pytest.fixture(scope="module")
def problem():
    """The small 1D proxy problem (2,000 events per member and in the data)."""
    return build_problem("proxy1d", overrides=SMALL)


def _run(problem, name, budget, seed=3, **kw):
    records = []
    solver = get(name)(problem.dim, seed=seed, **{**FAST[name], **kw})
    result = solver.run(problem, budget, callback=lambda s, info: records.append(info))
    return solver, result, records


@pytest.mark.parametrize("name", ["ppo", "sac", "td3"])
def test_tiny_run_budget_bounds_determinism(problem, name):
    _, res, records = _run(problem, name, 100)
    assert 0 < res.evaluations <= 100
    assert res.z.shape == (problem.dim,) and np.all((res.z >= 0) & (res.z <= 1))
    spread = np.asarray(res.extra["spread_unit"])
    assert spread.shape == (problem.dim,) and np.all(np.isfinite(spread)) and np.all(spread >= 0)
    assert len(records) == res.evaluations // 8
    assert [r.evaluations for r in records] == [8 * (i + 1) for i in range(len(records))]
    for r in records:
        assert r.Z.shape == (8, problem.dim) and np.all((r.Z >= 0) & (r.Z <= 1))
        assert r.scores.shape == (8,) and np.all(np.isfinite(r.scores))
    assert len({r.seed for r in records}) == len(records)  # a fresh common seed per step
    _, again, records2 = _run(problem, name, 100)
    np.testing.assert_array_equal(res.z, again.z)
    np.testing.assert_array_equal(records[-1].scores, records2[-1].scores)


def test_step_form_counts_every_evaluation(problem):
    kw = {"form": "step", "n_envs": 4, "episode_steps": 3}
    _, res, records = _run(problem, "ppo", 120, **kw)
    # start (4) + steps of [old; new] (8, 12 at an episode's end) + the final rollout's 4 * (2 + 2 * 3)
    assert res.evaluations <= 120 and res.evaluations >= 120 - 12
    assert np.all((res.z >= 0) & (res.z <= 1)) and len(res.extra["spread_unit"]) == problem.dim
    assert records and records[-1].Z.shape == (4, problem.dim)


def test_callback_stops_and_state_round_trip(problem):
    solver = get("ppo")(problem.dim, seed=1, **FAST["ppo"])
    res = solver.run(problem, 400, callback=lambda s, info: True)
    assert res.evaluations == 8 and res.message == "stopped by callback"
    state = pickle.loads(pickle.dumps(solver.state_dict()))
    assert isinstance(state["model"], bytes) and state["evaluations"] == 8
    resumed = get("ppo")(problem.dim, seed=1, **FAST["ppo"])
    resumed.load_state_dict(state)
    res2 = resumed.run(problem, 40)
    assert 8 < res2.evaluations <= 40 and np.all((res2.z >= 0) & (res2.z <= 1))


def test_budget_too_small_is_refused(problem):
    with pytest.raises(ValueError, match="budget"):
        get("ppo")(problem.dim, **FAST["ppo"]).run(problem, 4)


def test_vecenvs_pass_the_checks(problem):
    from stable_baselines3.common.env_checker import check_env

    from quantom_gf.env import BanditEnv
    from quantom_gf.solvers.vecenv import BanditVecEnv, StepVecEnv, check_vecenv

    check_vecenv(BanditVecEnv(problem, 4))
    check_vecenv(StepVecEnv(problem, 3, episode_steps=2), n_steps=4)
    check_env(BanditEnv(problem), warn=False)  # the single env the bandit VecEnv batches


def test_bandit_rewards_use_one_seed_per_step(problem):
    from quantom_gf.solvers.vecenv import BanditVecEnv

    venv = BanditVecEnv(problem, 3, seed=5)
    venv.reset()
    a = np.array([[0.1] * 6, [0.1] * 6, [-0.3] * 6], dtype=np.float32)
    _, rewards, dones, infos = venv.step(a)
    assert rewards[0] == rewards[1] and rewards[0] != rewards[2] and dones.all()
    z = (a.astype(np.float64) + 1) / 2
    np.testing.assert_allclose([i["score"] for i in infos], problem.evaluate(z, venv.last["seed"]))


def test_importing_the_package_does_not_import_torch():
    # rl.py itself is importable without torch: SB3 and torch load when a run starts.
    mods = "quantom_gf, quantom_gf.solvers, quantom_gf.env, quantom_gf.solvers.rl"
    code = f"import sys, {mods}; print('torch' in sys.modules)"
    proc = run_python(["-c", code], cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_tensorboard_log_is_written(problem, tmp_path):
    pytest.importorskip("tensorboard")
    _run(problem, "ppo", 24, tensorboard_log=str(tmp_path))
    assert list(tmp_path.rglob("events.out.tfevents.*"))


def test_bandit_baseline_rewards_are_relative_to_the_batch_mean(problem):
    from quantom_gf.solvers.vecenv import BanditVecEnv, symlog

    venv = BanditVecEnv(problem, 3, seed=5, baseline=True)
    venv.reset()
    a = np.array([[0.1] * 6, [0.2] * 6, [-0.3] * 6], dtype=np.float32)
    _, rewards, _, _ = venv.step(a)
    assert venv.evaluations == 4 and venv.cost_per_step() == 4
    z = (a.astype(np.float64) + 1) / 2
    s = problem.evaluate(np.vstack([z, z.mean(axis=0)]), venv.last["seed"])
    np.testing.assert_allclose(rewards, symlog(s[-1:], venv.scale) - symlog(s[:-1], venv.scale), rtol=1e-6)
