"""Batched SB3 vector environments over a Problem: one evaluation call per step for all envs.

The package's Gymnasium envs (quantom_gf.env) score one parameter vector per ``step``; wrapping
them in DummyVecEnv would cost one Problem call per env and per step, and SubprocVecEnv one
process per env. Here every step hands all ``n_envs`` actions to ``evaluator.map`` at once,
with one evaluation seed per step: the envs of a step share their random numbers (common
random numbers), so their rewards differ only through their parameters.

Importing this module imports stable_baselines3 (and torch); only the RL solvers import it.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv

from .. import rng as rngmod
from ..evaluate import SerialEvaluator

# Stream purpose of the step form's start positions (22 is random search's, 21 the eval seeds).
START_STREAM = 23


def symlog(s: np.ndarray, scale: float) -> np.ndarray:
    """sign(s) log(1 + |s|/scale): monotone in s, linear near 0, logarithmic far away."""
    return np.sign(s) * np.log1p(np.abs(s) / scale)


def score_scale(problem: Any) -> float:
    """A likelihood's natural unit is its number of degrees of freedom; other scores are O(1)."""
    obj = problem.objective
    return float(getattr(obj, "dof", 1.0)) if getattr(obj, "is_likelihood", False) else 1.0


class _BatchedVecEnv(VecEnv):
    """Common part: the problem, the evaluator, per-step seeds and the last step's record."""

    def __init__(
        self,
        problem: Any,
        n_envs: int,
        observation_space: spaces.Space,
        seed: int = 0,
        evaluator: Any = None,
        reward_scale: float | None = None,
        first_step: int = 0,
        action_bound: float = 1.0,
    ) -> None:
        self.problem = problem
        self.evaluator = evaluator or SerialEvaluator()
        self.solver_seed = int(seed)
        # Scores of the default likelihood are ~dof (about 400) at the optimum and up to 1e12
        # where the densities cannot be normalised: -score/dof would hand the critics rewards
        # spanning ten decades. symlog(score, dof) keeps the ordering, is ~-log 2 at the optimum
        # and at most ~-22 anywhere, and still resolves a change of 1 in the score (one unit of
        # -2 log L) near the optimum as ~1/(2 dof).
        self.scale = float(reward_scale or score_scale(problem))
        self.d = problem.dim
        self.steps = int(first_step)  # vector steps taken; keys the evaluation seeds
        self.evaluations = 0
        self.last: dict[str, Any] = {}
        self._actions: np.ndarray | None = None
        self._t0 = time.perf_counter()
        action_space = spaces.Box(-action_bound, action_bound, (self.d,), dtype=np.float32)
        super().__init__(n_envs, observation_space, action_space)

    def _seed(self) -> int:
        return rngmod.generation_seed(self.solver_seed, self.steps)

    def _score(self, Z: np.ndarray, seed: int) -> np.ndarray:
        scores = np.asarray(self.evaluator.map(self.problem, Z, seed), dtype=np.float64)
        self.evaluations += Z.shape[0]
        return scores

    def reward(self, scores: np.ndarray) -> np.ndarray:
        """Rewards of scores (higher is better)."""
        return -symlog(scores, self.scale)

    # The VecEnv API below has nothing per-env to forward to: the envs are rows of arrays.
    def step_async(self, actions: np.ndarray) -> None:
        """Store the actions (n_envs, d) in [-1, 1]."""
        self._actions = np.asarray(actions, dtype=np.float64).reshape(self.num_envs, self.d)

    def close(self) -> None:
        """Nothing to release."""

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        """Attributes are shared by all envs (``render_mode`` is None)."""
        n = len(self._get_indices(indices))
        value = None if attr_name == "render_mode" else getattr(self, attr_name)
        return [value] * n

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        """Set a shared attribute."""
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices: Any = None, **method_kwargs) -> list[Any]:
        """Call a shared method once per requested env."""
        return [getattr(self, method_name)(*method_args, **method_kwargs) for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        """No gym wrappers here."""
        return [False] * len(self._get_indices(indices))


class BanditVecEnv(_BatchedVecEnv):
    """One-step episodes: the action is the parameter vector. The observation is a constant,
    so the policy is a learned search distribution.

    ``squash=False``: actions in [-1, 1]^d (SB3's convention; SAC and TD3 squash their own
    actions into it), z = (a + 1)/2, so that a fresh policy's mean, ~0, is the cube's centre.
    ``squash=True``: for unsquashed Gaussian policies (PPO). SB3 clips their actions to the box;
    a mean that drifts past a face then sees only clipped samples with equal rewards and gets
    no signal back. Actions in [-SQUASH_BOUND, SQUASH_BOUND] map smoothly to z = (tanh(a) + 1)/2.
    ``baseline=True``: the batch's mean point is scored with the batch (one more evaluation
    per step, same seed) and rewards are relative to it. A step's seed shifts every score of
    the step by a common amount (about 0.035 in symlog units at the optimum, as much as the
    differences the critic has to resolve there); PPO's per-batch advantage normalisation
    removes it, a replay critic (SAC, TD3) mixing many steps does not. Measured on
    proxy1d-detector it made SAC less stable, not more (the reference moves with the policy,
    so old transitions in the replay buffer carry stale offsets): off by default.
    """

    SQUASH_BOUND = 5.0  # tanh(5) = 0.99991: the clip at the box is never felt

    def __init__(
        self,
        problem: Any,
        n_envs: int = 32,
        seed: int = 0,
        evaluator: Any = None,
        squash: bool = False,
        baseline: bool = False,
        **kw: Any,
    ) -> None:
        obs_space = spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)
        self.squash, self.baseline = bool(squash), bool(baseline)
        bound = self.SQUASH_BOUND if squash else 1.0
        super().__init__(problem, n_envs, obs_space, seed, evaluator, action_bound=bound, **kw)
        self._obs = np.zeros((n_envs, 1), dtype=np.float32)

    def to_unit(self, actions: np.ndarray) -> np.ndarray:
        """Actions (..., d) -> parameter vectors in the unit cube."""
        a = np.asarray(actions, dtype=np.float64)
        z = (np.tanh(a) + 1.0) / 2.0 if self.squash else (a + 1.0) / 2.0
        return np.clip(z, 0.0, 1.0)

    def cost_per_step(self) -> int:
        """Evaluations of one vector step."""
        return self.num_envs + self.baseline

    def reset(self) -> np.ndarray:
        """The constant observation."""
        return self._obs.copy()

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict]]:
        """Score all actions in one call on one seed; every episode ends."""
        Z = self.to_unit(self._actions)
        seed = self._seed()
        if self.baseline:
            both = self._score(np.vstack([Z, Z.mean(axis=0)]), seed)
            scores = both[:-1]
            rewards = self.reward(scores) - self.reward(both[-1:])
        else:
            scores = self._score(Z, seed)
            rewards = self.reward(scores)
        self.steps += 1
        t = time.perf_counter() - self._t0
        infos = [
            {
                "terminal_observation": self._obs[i].copy(),
                "TimeLimit.truncated": False,
                "score": float(scores[i]),
                "episode": {"r": float(rewards[i]), "l": 1, "t": t},
            }
            for i in range(self.num_envs)
        ]
        self.last = {"Z": Z, "scores": scores, "seed": seed}
        return self._obs.copy(), rewards.astype(np.float32), np.ones(self.num_envs, dtype=bool), infos


class StepVecEnv(_BatchedVecEnv):
    """Multi-step episodes: each env walks z by ``max_step * a`` per step for ``episode_steps`` steps.

    Observation: the position and bounded discrepancy features (as quantom_gf.env.StepEnv).
    Reward: the decrease of symlog(score), old and new positions scored together on the same
    seed, so the reward is a low-noise difference; over an episode it telescopes to the total
    decrease. All envs start and end their episodes together; at the end the new start
    positions are scored in the same call, and the evaluations of every call are counted.
    """

    def __init__(
        self,
        problem: Any,
        n_envs: int = 16,
        seed: int = 0,
        evaluator: Any = None,
        max_step: float = 0.05,
        episode_steps: int = 20,
        **kw: Any,
    ) -> None:
        d, k = problem.dim, 2 * problem.data.n_obs
        low = np.concatenate([np.zeros(d), -np.ones(k)]).astype(np.float32)
        obs_space = spaces.Box(low, np.ones(d + k, dtype=np.float32), dtype=np.float32)
        super().__init__(problem, n_envs, obs_space, seed, evaluator, **kw)
        self.max_step, self.episode_steps = float(max_step), int(episode_steps)
        self.episodes = 0
        self.t = 0
        self.z = np.full((n_envs, d), 0.5)
        self.feats = np.zeros((n_envs, k))
        self.returns = np.zeros(n_envs)
        self.fixed_starts: np.ndarray | None = None

    def cost_per_step(self) -> int:
        """Evaluations of the next vector step (old + new, plus the new starts at an episode's end)."""
        return (3 if self.t + 1 >= self.episode_steps else 2) * self.num_envs

    def _features(self, Z: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        # Features need more than scores; an evaluator may provide them, else this process does.
        fn = getattr(self.evaluator, "features", None)
        scores, feats = fn(self.problem, Z, seed) if fn else self.problem.features(Z, seed)
        self.evaluations += Z.shape[0]
        return np.asarray(scores, dtype=np.float64), np.asarray(feats, dtype=np.float64)

    def _starts(self) -> np.ndarray:
        if self.fixed_starts is not None:
            return np.array(self.fixed_starts, dtype=np.float64)
        rng = rngmod.stream(self.solver_seed, START_STREAM, self.episodes)
        return rng.uniform(0.1, 0.9, (self.num_envs, self.d))

    def _obs(self) -> np.ndarray:
        return np.concatenate([self.z, self.feats], axis=1).astype(np.float32)

    def reset(self) -> np.ndarray:
        """New start positions in [0.1, 0.9]^d (one evaluation each, for the features)."""
        self.z, self.t, self.returns[:] = self._starts(), 0, 0.0
        _, self.feats = self._features(self.z, self._seed())
        self.steps += 1
        return self._obs()

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict]]:
        """Move all envs, score [old; new] on one seed; at the episode's end reset all envs."""
        n = self.num_envs
        new = np.clip(self.z + self.max_step * np.clip(self._actions, -1.0, 1.0), 0.0, 1.0)
        self.t += 1
        done = self.t >= self.episode_steps
        parts = [self.z, new]
        if done:
            self.episodes += 1
            parts.append(self._starts())
        seed = self._seed()
        scores, feats = self._features(np.concatenate(parts), seed)
        rewards = self.reward(scores[n : 2 * n]) - self.reward(scores[:n])
        self.returns += rewards
        self.steps += 1
        self.last = {"Z": new, "scores": scores[n : 2 * n], "seed": seed}
        self.z, self.feats = new, feats[n : 2 * n]
        infos: list[dict] = [{"score": float(scores[n + i])} for i in range(n)]
        if done:
            t = time.perf_counter() - self._t0
            for i in range(n):
                infos[i]["terminal_observation"] = self._obs()[i]
                # The walk has no goal state: its end is a time limit, so values bootstrap.
                infos[i]["TimeLimit.truncated"] = True
                infos[i]["episode"] = {"r": float(self.returns[i]), "l": self.t, "t": t}
            self.last["final_z"] = new.copy()
            self.z, self.feats, self.t, self.returns[:] = parts[2], feats[2 * n :], 0, 0.0
        return self._obs(), rewards.astype(np.float32), np.full(n, done), infos


def check_vecenv(venv: VecEnv, n_steps: int = 3) -> None:
    """SB3's env checker takes single gym envs; this checks the same contract for a VecEnv.

    Observations and actions in their spaces with the right shape and dtype, rewards finite
    float32 (n_envs,), dones bool, one info dict per env with ``terminal_observation`` (an
    element of the observation space) wherever an episode ended. AssertionError otherwise.
    """
    n = venv.num_envs
    obs = venv.reset()
    assert isinstance(obs, np.ndarray) and obs.shape == (n, *venv.observation_space.shape), obs.shape
    assert obs.dtype == venv.observation_space.dtype, obs.dtype
    assert all(venv.observation_space.contains(o) for o in obs), "reset observation outside the space"
    box = venv.action_space
    assert isinstance(box, spaces.Box) and np.all(box.low == -box.high), "actions should be symmetric"
    rng = np.random.default_rng(0)
    for _ in range(n_steps):
        actions = rng.uniform(box.low, box.high, (n, *box.shape)).astype(np.float32)
        obs, rewards, dones, infos = venv.step(actions)
        assert obs.shape == (n, *venv.observation_space.shape) and obs.dtype == venv.observation_space.dtype
        assert all(venv.observation_space.contains(o) for o in obs), "step observation outside the space"
        assert rewards.shape == (n,) and rewards.dtype == np.float32 and np.all(np.isfinite(rewards))
        assert dones.shape == (n,) and dones.dtype == np.bool_
        assert isinstance(infos, list) and len(infos) == n and all(isinstance(i, dict) for i in infos)
        for done, info in zip(dones, infos):
            if done:
                assert venv.observation_space.contains(info["terminal_observation"]), "bad terminal_observation"
    assert venv.get_attr("render_mode") == [None] * n
    assert venv.env_is_wrapped(object) == [False] * n
