"""quantom_gf: gradient-free event-level inference of PDF parameters (QuantOM proxy apps).

The pipeline: parameters -> theory -> sampler -> detector -> selection -> objective -> score.
Start with ``quantom_gf.build.build_problem("proxy1d-detector")`` or ``python -m quantom_gf.run``.
"""

from __future__ import annotations

__version__ = "0.1.0"


def _register_envs() -> None:
    # Registration only names an entry point; the env module loads when an env is made.
    try:
        import gymnasium as gym
    except ImportError:  # pragma: no cover - gymnasium is a core dependency
        return
    for env_id, entry, kw in (
        ("quantom_gf/Bandit-v0", "quantom_gf.env:BanditEnv", {}),
        ("quantom_gf/Step-v0", "quantom_gf.env:StepEnv", {"max_episode_steps": 50}),
    ):
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry, **kw)


_register_envs()
