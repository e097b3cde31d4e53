"""The Gymnasium environments: API conformance and what reward and observation mean."""

from __future__ import annotations

import copy
import warnings

import gymnasium as gym
import numpy as np
import pytest
from conftest import small_overrides
from gymnasium.utils.env_checker import check_env

import quantom_gf  # noqa: F401  (registers the envs)
from quantom_gf.env import BanditEnv, StepEnv

ENV_IDS = ["quantom_gf/Bandit-v0", "quantom_gf/Step-v0"]


def make(env_id: str):
    return gym.make(env_id, env="proxy1d", overrides=small_overrides(2000, 2000))


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_env_checker(env_id):
    env = make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the checker's warnings (bounds, dtypes, seeding) count too
        check_env(env.unwrapped)
    env.close()


def test_registration():
    assert isinstance(make("quantom_gf/Bandit-v0").unwrapped, BanditEnv)
    step = make("quantom_gf/Step-v0")
    assert isinstance(step.unwrapped, StepEnv)
    assert step.spec.max_episode_steps == 50


def test_bandit_reward_is_minus_scaled_score():
    env = make("quantom_gf/Bandit-v0").unwrapped
    env.reset(seed=3)
    action = np.linspace(0.2, 0.8, 6).astype(np.float32)
    eval_seed = int(copy.deepcopy(env.np_random).integers(2**31))
    _, reward, terminated, truncated, info = env.step(action)
    score = env.problem.evaluate(action.astype(np.float64)[None], eval_seed)[0]
    assert terminated and not truncated
    assert env.scale == env.problem.objective.dof == 402
    assert reward == -score / env.scale
    assert info["score"] == score
    np.testing.assert_allclose(info["params"], env.problem.space.to_physical(action.astype(np.float64)))


def test_step_env_moves_at_most_max_step_and_rewards_the_decrease():
    env = make("quantom_gf/Step-v0").unwrapped
    obs, info = env.reset(seed=4, options={"z0": np.full(6, 0.5)})
    np.testing.assert_allclose(obs[:6], 0.5)
    z0 = env.z.copy()
    action = np.array([1.0, -1.0, 0.5, 0.0, 3.0, -0.2], dtype=np.float32)
    eval_seed = int(copy.deepcopy(env.np_random).integers(2**31))
    obs, reward, terminated, truncated, info = env.step(action)
    np.testing.assert_allclose(env.z - z0, 0.05 * np.clip(action, -1, 1), atol=1e-7)
    s = env.problem.evaluate(np.stack([z0, env.z]), eval_seed)
    assert reward == pytest.approx((s[0] - s[1]) / env.scale, rel=1e-12)
    assert info["score"] == s[1]
    assert not terminated and not truncated
    assert env.observation_space.contains(obs)
