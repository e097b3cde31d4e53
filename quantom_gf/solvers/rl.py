"""Reinforcement-learning solvers: PPO, SAC and TD3 from stable-baselines3, unmodified.

The algorithms run on the batched vector environments of ``vecenv`` (one Problem call per
step for all envs, common random numbers within a step), in one of two forms:

- ``form = "bandit"``: one-step episodes whose action is the parameter vector. The policy at
  its (constant) observation is a learned search distribution; the answer is its
  deterministic action.
- ``form = "step"``: episodes of ``episode_steps`` moves of at most ``max_step`` per
  coordinate, rewarded by the score's decrease. The answer is the mean final position of a
  deterministic rollout from fresh random starts (its evaluations are counted and reserved).

Budget: evaluations of the Problem (one parameter vector scored with the experiment's
``n_events`` events), the same unit as every other solver; in the bandit form that is one
per env step (plus the batch mean per step with ``baseline``), in the step form two (old and
new position on the same random numbers) plus the start positions. torch and
stable_baselines3 are imported only when a run starts.
"""

from __future__ import annotations

import io
import time
from collections import deque
from typing import Any

import numpy as np

from .base import Callback, Progress, Solver, SolverResult

FORMS = ("bandit", "step")
ACTIVATIONS = ("tanh", "relu", "elu")


class RLSolver(Solver):
    """Common base: env construction, budget and callback bookkeeping, checkpoints, the answer.

    Subclasses name the SB3 class (``algo``) and its keyword arguments (``algo_kwargs``).
    """

    name = "rl"
    algo = ""
    squash_actions = False  # bandit form: map actions to the cube through tanh (see BanditVecEnv)

    def __init__(
        self,
        dim: int,
        seed: int = 0,
        *,
        form: str = "bandit",
        n_envs: int = 32,
        learning_rate: float = 3e-4,
        net_arch: list[int] | dict | None = None,
        activation: str = "tanh",
        max_step: float = 0.05,
        episode_steps: int = 20,
        reward_scale: float | None = None,
        tensorboard_log: str | None = None,
        device: str = "cpu",
        torch_threads: int | None = 1,
        spread_window: int = 20,
        verbose: int = 0,
        baseline: bool = False,
        **algo_settings: Any,
    ) -> None:
        if form not in FORMS:
            raise ValueError(f"{self.name}: form must be one of {FORMS}; got '{form}'")
        if activation not in ACTIVATIONS:
            raise ValueError(f"{self.name}: activation must be one of {ACTIVATIONS}; got '{activation}'")
        if n_envs < 2 or learning_rate <= 0 or not 0 < max_step <= 1 or episode_steps < 1 or spread_window < 2:
            raise ValueError(
                f"{self.name}: need n_envs >= 2, learning_rate > 0, 0 < max_step <= 1, episode_steps >= 1, "
                "spread_window >= 2"
            )
        common = dict(
            form=form, n_envs=n_envs, learning_rate=learning_rate, net_arch=net_arch, activation=activation,
            max_step=max_step, episode_steps=episode_steps, reward_scale=reward_scale,
            tensorboard_log=tensorboard_log, device=device, torch_threads=torch_threads,
            spread_window=spread_window, verbose=verbose, baseline=baseline,
        )  # fmt: skip
        super().__init__(dim, seed, **common, **algo_settings)
        self.form, self.n_envs = form, int(n_envs)
        self.algo_settings = algo_settings
        self._model: Any = None
        self._model_bytes: bytes | None = None
        self._venv: Any = None
        self._venv_steps = 0
        self._recent: deque = deque(maxlen=int(spread_window))

    # -- subclass hooks ---------------------------------------------------------------------
    def algo_class(self) -> type:
        """The stable_baselines3 algorithm class."""
        import stable_baselines3

        return getattr(stable_baselines3, self.algo)

    def algo_kwargs(self, venv: Any) -> dict:
        """Keyword arguments of the SB3 constructor beyond policy, env, seed and the common ones."""
        return dict(self.algo_settings)

    def policy_kwargs(self) -> dict:
        """Network shape and activation (SB3's ``policy_kwargs``)."""
        import torch

        act = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "elu": torch.nn.ELU}[self.settings["activation"]]
        out: dict[str, Any] = {"activation_fn": act}
        if self.settings["net_arch"] is not None:
            out["net_arch"] = self.settings["net_arch"]
        return out

    def policy_spread(self, obs: np.ndarray) -> np.ndarray | None:
        """Per-coordinate spread of the policy's action distribution in unit-cube units, if it has one."""
        return None

    # -- the run ----------------------------------------------------------------------------
    def _make_venv(self, problem: Any, evaluator: Any) -> Any:
        from .vecenv import BanditVecEnv, StepVecEnv

        s = self.settings
        kw = {"reward_scale": s["reward_scale"], "first_step": self._venv_steps}
        if self.form == "bandit":
            squash, baseline = self.squash_actions, s["baseline"]
            return BanditVecEnv(problem, self.n_envs, self.seed, evaluator, squash=squash, baseline=baseline, **kw)
        return StepVecEnv(problem, self.n_envs, self.seed, evaluator, s["max_step"], s["episode_steps"], **kw)

    def _make_model(self, venv: Any) -> Any:
        s, cls = self.settings, self.algo_class()
        if self._model_bytes is not None:
            # Resume: the saved networks and optimisers continue; replay buffers start empty.
            return cls.load(
                io.BytesIO(self._model_bytes), env=venv, device=s["device"], tensorboard_log=s["tensorboard_log"]
            )
        return cls(
            "MlpPolicy",
            venv,
            learning_rate=s["learning_rate"],
            policy_kwargs=self.policy_kwargs(),
            tensorboard_log=s["tensorboard_log"],
            device=s["device"],
            seed=self.seed,
            verbose=s["verbose"],
            **self.algo_kwargs(venv),
        )

    def _rollout_cost(self) -> int:
        # The step form's answer: reset (n_envs) + episode_steps moves of [old; new] evaluations
        # + the next starts the env scores with the last move (n_envs).
        if self.form == "bandit":
            return 0
        return self.n_envs * (2 + 2 * self.settings["episode_steps"])

    def _obs0(self) -> np.ndarray:
        return np.zeros((1, 1), dtype=np.float32)

    def _bandit_answer(self) -> np.ndarray:
        a, _ = self._model.predict(self._obs0(), deterministic=True)
        return self._venv.to_unit(a)[0]

    def _recommend(self) -> np.ndarray:
        if self.form == "bandit":
            return self._bandit_answer()
        final = self._venv.last.get("final_z")
        return (final if final is not None else self._venv.z).mean(axis=0)

    def _step_answer(self) -> tuple[np.ndarray, np.ndarray]:
        venv = self._venv
        obs = venv.reset()
        for _ in range(venv.episode_steps):
            actions, _ = self._model.predict(obs, deterministic=True)
            obs, _, dones, _ = venv.step(actions)
        final = venv.last["final_z"]
        return final.mean(axis=0), final.std(axis=0)

    def run(self, problem: Any, budget: int, evaluator: Any = None, callback: Callback | None = None) -> SolverResult:
        """Learn until the budget (in Problem evaluations) is spent or the callback stops the run."""
        import torch

        from .vecenv import BanditVecEnv  # noqa: F401  (fails early without stable_baselines3)

        if budget <= 0:
            raise ValueError("budget must be positive")
        if self.settings["torch_threads"]:
            torch.set_num_threads(int(self.settings["torch_threads"]))
        t0 = time.perf_counter()
        venv = self._venv = self._make_venv(problem, evaluator)
        base_evals, reserve = self.evaluations, self._rollout_cost()
        start_cost = 0 if self.form == "bandit" else self.n_envs
        if base_evals + start_cost + venv.cost_per_step() + reserve > budget:
            raise ValueError(
                f"{self.name}: budget {budget} leaves no room for one step of {venv.cost_per_step()} evaluations"
                + (f" plus the final rollout's {reserve}" if reserve else "")
            )
        self._model = self._make_model(venv)
        hook = _make_hook(self, venv, budget, reserve, base_evals, callback)
        resumed = self._model_bytes is not None
        self._model.learn(
            total_timesteps=max(1, budget - base_evals),
            callback=hook,
            reset_num_timesteps=not resumed,
            tb_log_name=self.name,
            progress_bar=False,
        )
        extra: dict[str, Any] = {"form": self.form, "env_steps": int(self._model.num_timesteps)}
        if self.form == "bandit":
            z = self._bandit_answer()
            spread = self.policy_spread(self._obs0())
        else:
            z, spread = self._step_answer()
            self.evaluations = base_evals + venv.evaluations
        recent = np.array(self._recent) if len(self._recent) >= 2 else None
        extra["spread_recent"] = recent.std(axis=0).tolist() if recent is not None else None
        if spread is None:  # no policy spread (TD3): the answer's jitter over the last records
            spread = recent.std(axis=0) if recent is not None else np.full(self.dim, np.nan)
        extra["spread_unit"] = np.asarray(spread, dtype=np.float64).tolist()
        self._venv_steps = venv.steps
        self._model_bytes = self._save_model()
        message = "stopped by callback" if self.stopped else "budget exhausted"
        return SolverResult(
            z=np.asarray(z, dtype=np.float64),
            evaluations=self.evaluations,
            generations=self.generation,
            converged=False,
            message=message,
            wall_time_s=time.perf_counter() - t0,
            extra=extra,
        )

    # -- checkpoints ------------------------------------------------------------------------
    def _save_model(self) -> bytes | None:
        if self._model is None:
            return self._model_bytes
        buf = io.BytesIO()
        self._model.save(buf)
        return buf.getvalue()

    def state_dict(self) -> dict:
        """The SB3 model (networks and optimisers, as zip bytes) and the counters; picklable.

        Replay buffers and torch's random state are not kept: a resumed run continues learning
        from the saved networks, on fresh evaluation seeds, but not bit-identically.
        """
        steps = self._venv.steps if self._venv is not None else self._venv_steps
        return {
            "generation": self.generation,
            "evaluations": self.evaluations,
            "seed": self.seed,
            "venv_steps": int(steps),
            "model": self._save_model(),
            "recent": [r.tolist() for r in self._recent],
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore from ``state_dict()``; the model is rebuilt at the next ``run``."""
        self.generation, self.evaluations = int(state["generation"]), int(state["evaluations"])
        self._venv_steps = int(state.get("venv_steps", 0))
        self._model_bytes = state.get("model")
        self._model = None
        self._recent.clear()
        self._recent.extend(np.asarray(r, dtype=np.float64) for r in state.get("recent", []))


def _settings(local_vars: dict) -> dict:
    """A subclass constructor's keyword settings (its locals minus self, dim, seed)."""
    return {k: v for k, v in local_vars.items() if k not in ("self", "dim", "seed", "__class__")}


def _make_hook(solver: RLSolver, venv: Any, budget: int, reserve: int, base_evals: int, callback: Callback | None):
    """An SB3 callback: Progress records to ``callback`` after every vector step; the budget stop."""
    from stable_baselines3.common.callbacks import BaseCallback

    class _Hook(BaseCallback):
        def _on_step(self) -> bool:
            solver.evaluations = base_evals + venv.evaluations
            solver.generation += 1
            last = venv.last
            if not last:  # a step without a record (cannot happen with these envs) changes nothing
                return True
            rec = solver._recommend()
            solver._recent.append(rec)
            extra = {"reward_mean": float(np.mean(venv.reward(last["scores"]))), "env_steps": self.num_timesteps}
            info = Progress(solver.generation, solver.evaluations, last["Z"], last["scores"], last["seed"], rec, extra)
            if callback is not None and callback(solver, info):
                solver.stopped = True
                return False
            return solver.evaluations + venv.cost_per_step() + reserve <= budget

    return _Hook()


class PPOSolver(RLSolver):
    """PPO (clipped policy gradient). Bandit form: the Gaussian policy is a search distribution."""

    name = "ppo"
    algo = "PPO"
    squash_actions = True

    # fmt: off
    def __init__(
        self, dim: int, seed: int = 0, *,
        form: str = "bandit", n_envs: int = 32, learning_rate: float = 3e-4,
        net_arch: list[int] | dict | None = None, activation: str = "tanh", max_step: float = 0.05,
        episode_steps: int = 20, reward_scale: float | None = None, tensorboard_log: str | None = None,
        device: str = "cpu", torch_threads: int | None = 1, spread_window: int = 20, verbose: int = 0,
        baseline: bool = False,
        n_steps: int | None = None, batch_size: int | None = None, n_epochs: int = 10, gamma: float = 0.99,
        gae_lambda: float = 0.95, clip_range: float = 0.2, ent_coef: float = 0.0, vf_coef: float = 0.5,
        max_grad_norm: float = 0.5, log_std_init: float = -1.0, target_kl: float | None = None,
    ) -> None:
        # fmt: on
        super().__init__(dim, seed, **_settings(locals()))

    def algo_kwargs(self, venv: Any) -> dict:
        """PPO's arguments; n_steps defaults to 1 (bandit: a rollout is one batch of one-step
        episodes, all on one seed) or one episode (step form); the batch to the whole rollout."""
        kw = dict(self.algo_settings)
        kw.pop("log_std_init")
        if kw["n_steps"] is None:
            kw["n_steps"] = 1 if self.form == "bandit" else self.settings["episode_steps"]
        if kw["batch_size"] is None:
            kw["batch_size"] = kw["n_steps"] * self.n_envs
        return kw

    def policy_kwargs(self) -> dict:
        """Adds the initial log standard deviation of the Gaussian policy."""
        return {**super().policy_kwargs(), "log_std_init": self.algo_settings["log_std_init"]}

    def policy_spread(self, obs: np.ndarray) -> np.ndarray:
        """The Gaussian's width through the tanh map at its mean: 0.5 (1 - tanh(mu)^2) sigma."""
        import torch

        with torch.no_grad():
            obs_t, _ = self._model.policy.obs_to_tensor(obs)
            dist = self._model.policy.get_distribution(obs_t).distribution
        mu, sd = dist.mean.cpu().numpy()[0], dist.stddev.cpu().numpy()[0]
        return (0.5 * (1.0 - np.tanh(mu) ** 2) * sd).astype(np.float64)


class _OffPolicySolver(RLSolver):
    """SAC and TD3 share their replay settings; ``train_freq`` is in vector steps."""

    def algo_kwargs(self, venv: Any) -> dict:
        """Replay-buffer and update settings as SB3 takes them."""
        kw = dict(self.algo_settings)
        kw["train_freq"] = (int(kw["train_freq"]), "step")
        return kw


class SACSolver(_OffPolicySolver):
    """SAC (soft actor-critic, tanh-squashed Gaussian). Bandit form: the critic learns the
    (symlog) score surface from the replay buffer and the actor climbs it."""

    name = "sac"
    algo = "SAC"

    # fmt: off
    def __init__(
        self, dim: int, seed: int = 0, *,
        form: str = "bandit", n_envs: int = 32, learning_rate: float = 3e-4,
        net_arch: list[int] | dict | None = None, activation: str = "relu", max_step: float = 0.05,
        episode_steps: int = 20, reward_scale: float | None = None, tensorboard_log: str | None = None,
        device: str = "cpu", torch_threads: int | None = 1, spread_window: int = 20, verbose: int = 0,
        baseline: bool = False,
        buffer_size: int = 100_000, learning_starts: int = 256, batch_size: int = 256, tau: float = 0.005,
        gamma: float = 0.99, train_freq: int = 1, gradient_steps: int = 4, ent_coef: str | float = "auto",
        target_entropy: str | float = "auto",
    ) -> None:
        # fmt: on
        super().__init__(dim, seed, **_settings(locals()))

    def policy_spread(self, obs: np.ndarray) -> np.ndarray:
        """The squashed Gaussian's width at its mean: 0.5 (1 - tanh(mu)^2) sigma in unit-cube units."""
        import torch

        with torch.no_grad():
            obs_t, _ = self._model.policy.obs_to_tensor(obs)
            mean, log_std, _ = self._model.policy.actor.get_action_dist_params(obs_t)
        mu, sd = mean.cpu().numpy()[0], np.exp(log_std.cpu().numpy()[0])
        return (0.5 * (1.0 - np.tanh(mu) ** 2) * sd).astype(np.float64)


class TD3Solver(_OffPolicySolver):
    """TD3 (twin delayed deterministic policy gradient) with Gaussian action noise ``action_sigma``.

    Its policy is deterministic: spread_unit is the answer's jitter over the last records.
    """

    name = "td3"
    algo = "TD3"

    # fmt: off
    def __init__(
        self, dim: int, seed: int = 0, *,
        form: str = "bandit", n_envs: int = 32, learning_rate: float = 1e-3,
        net_arch: list[int] | dict | None = None, activation: str = "relu", max_step: float = 0.05,
        episode_steps: int = 20, reward_scale: float | None = None, tensorboard_log: str | None = None,
        device: str = "cpu", torch_threads: int | None = 1, spread_window: int = 20, verbose: int = 0,
        baseline: bool = False,
        buffer_size: int = 100_000, learning_starts: int = 256, batch_size: int = 256, tau: float = 0.005,
        gamma: float = 0.99, train_freq: int = 1, gradient_steps: int = 4, action_sigma: float = 0.1,
        policy_delay: int = 2, target_policy_noise: float = 0.2, target_noise_clip: float = 0.5,
    ) -> None:
        # fmt: on
        if action_sigma < 0:
            raise ValueError("td3: action_sigma must be >= 0")
        super().__init__(dim, seed, **_settings(locals()))

    def algo_kwargs(self, venv: Any) -> dict:
        """Replaces ``action_sigma`` by SB3's vectorised Gaussian action noise."""
        from stable_baselines3.common.noise import NormalActionNoise, VectorizedActionNoise

        kw = super().algo_kwargs(venv)
        sigma = kw.pop("action_sigma")
        if sigma > 0:
            base = NormalActionNoise(np.zeros(self.dim), np.full(self.dim, sigma))
            kw["action_noise"] = VectorizedActionNoise(base, self.n_envs)
        return kw
