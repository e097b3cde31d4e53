"""Solvers by name. Adding one: a module with a Solver subclass, plus one line in REGISTRY.

Entries are "module:Class" strings so that optional dependencies (torch, nevergrad) load only
when their solver is used.
"""

from __future__ import annotations

import importlib

from ..errors import ConfigError
from .base import PopulationSolver, Progress, Solver, SolverResult

REGISTRY: dict[str, str] = {
    "cmaes": ".cmaes:CMAESSolver",
    "ga": ".ga:GASolver",
    "ga-steady": ".ga_steady:SteadyGASolver",
    "nevergrad": ".nevergrad_bridge:NevergradSolver",
    "random": ".random_search:RandomSearch",
    "sa": ".sa:SASolver",
    "ppo": ".rl:PPOSolver",
    "sac": ".rl:SACSolver",
    "td3": ".rl:TD3Solver",
    "gan": ".gan:GANSolver",
}


def available() -> list[str]:
    """Registered solver names."""
    return sorted(REGISTRY)


def get(name: str) -> type[Solver]:
    """The solver class registered under ``name`` (``nevergrad:<Optimizer>`` goes to the bridge)."""
    key = "nevergrad" if name.startswith("nevergrad:") else name
    if key not in REGISTRY:
        raise ConfigError(f"unknown strategy '{name}'; choose one of: {', '.join(available())}")
    module, cls = REGISTRY[key].split(":")
    return getattr(importlib.import_module(module, __name__), cls)


__all__ = ["REGISTRY", "PopulationSolver", "Progress", "Solver", "SolverResult", "available", "get"]
