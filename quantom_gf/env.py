"""Gymnasium environments over a Problem: a one-step bandit and a multi-step walk.

Registered as ``quantom_gf/Bandit-v0`` and ``quantom_gf/Step-v0`` when quantom_gf is imported::

    import gymnasium as gym, quantom_gf
    env = gym.make("quantom_gf/Bandit-v0", env="proxy1d-detector")
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from .problem import Problem


def _problem(env: str | dict | Problem, data: Any, overrides: dict | None) -> Problem:
    if isinstance(env, Problem):
        return env
    from .build import build_problem

    return build_problem(env, data=data, overrides=overrides)


def _score_scale(problem: Problem) -> float:
    # A likelihood's natural unit is its number of degrees of freedom; others are O(1) already.
    return float(getattr(problem.objective, "dof", 1.0)) if problem.objective.is_likelihood else 1.0


class BanditEnv(gym.Env):
    """One step: the action is a parameter vector in the unit cube, the reward -score/scale.

    The observation is a constant (there is nothing to observe before the single step), so a
    policy's action distribution is a learned search distribution over the parameters.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        env: str | dict | Problem = "proxy1d-detector",
        data: Any = None,
        overrides: dict | None = None,
        reward_scale: float | None = None,
    ) -> None:
        self.problem = _problem(env, data, overrides)
        d = self.problem.dim
        self.scale = reward_scale or _score_scale(self.problem)
        self.action_space = spaces.Box(0.0, 1.0, (d,), dtype=np.float32)
        self.observation_space = spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        """The constant observation."""
        super().reset(seed=seed)
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Score the action with fresh random numbers; the episode ends."""
        z = np.clip(np.asarray(action, dtype=np.float64).reshape(1, -1), 0.0, 1.0)
        eval_seed = int(self.np_random.integers(2**31))
        score = float(self.problem.evaluate(z, eval_seed)[0])
        info = {"score": score, "params": self.problem.space.to_physical(z[0])}
        return np.zeros(1, dtype=np.float32), -score / self.scale, True, False, info


class StepEnv(gym.Env):
    """Many steps: the action moves the parameters by at most ``max_step`` per coordinate.

    Observation: the current parameters (unit cube) and bounded discrepancy features (totals'
    pulls and mean shifts of each observable, through tanh). Reward: the decrease of the score,
    with old and new parameters scored on the same random numbers (low-noise differences).
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        env: str | dict | Problem = "proxy1d-detector",
        data: Any = None,
        overrides: dict | None = None,
        max_step: float = 0.05,
        reward_scale: float | None = None,
    ) -> None:
        self.problem = _problem(env, data, overrides)
        d = self.problem.dim
        k = 2 * self.problem.data.n_obs
        self.max_step = float(max_step)
        self.scale = reward_scale or _score_scale(self.problem)
        self.action_space = spaces.Box(-1.0, 1.0, (d,), dtype=np.float32)
        low = np.concatenate([np.zeros(d), -np.ones(k)]).astype(np.float32)
        self.observation_space = spaces.Box(low, np.ones(d + k, dtype=np.float32), dtype=np.float32)
        self.z = np.full(d, 0.5)

    def _obs(self, feats: np.ndarray) -> np.ndarray:
        return np.concatenate([self.z, feats]).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        """Start at ``options['z0']`` or a random point of the inner cube [0.1, 0.9]^d."""
        super().reset(seed=seed)
        if options and "z0" in options:
            self.z = np.clip(np.asarray(options["z0"], dtype=np.float64), 0.0, 1.0)
        else:
            self.z = self.np_random.uniform(0.1, 0.9, self.problem.dim)
        score, feats = self.problem.features(self.z[None], int(self.np_random.integers(2**31)))
        return self._obs(feats[0]), {"score": float(score[0])}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Move, then reward the score's decrease (old and new on common random numbers)."""
        a = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        new = np.clip(self.z + self.max_step * a, 0.0, 1.0)
        scores, feats = self.problem.features(np.stack([self.z, new]), int(self.np_random.integers(2**31)))
        self.z = new
        reward = float(scores[0] - scores[1]) / self.scale
        info = {"score": float(scores[1]), "params": self.problem.space.to_physical(new)}
        return self._obs(feats[1]), reward, False, False, info
