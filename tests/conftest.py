"""Shared small fixtures: the 1D proxy theory, its parameter space, and small Problems.

Event counts are small by default (2,000 per member) so the whole suite stays fast; tests that
need statistics ask for more explicitly.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from quantom_gf.build import build_problem
from quantom_gf.theory import Proxy1DTheory

REPO = Path(__file__).resolve().parent.parent

TRUTH = np.array([2.1875, -0.5, 3.0, 1.09375, -0.5, 4.0])
TRUTH_UNIT = np.array([0.72916667, 0.25, 0.6, 0.36458333, 0.25, 0.8])


def small_overrides(n_sim: int = 2000, n_data: int = 2000, objective: str | dict | None = None) -> dict:
    """Overrides for a fast env: few events per member and in the generated data."""
    over: dict = {"simulation": {"n_events": n_sim}, "data": {"n_events": n_data}}
    if objective is not None:
        over["objective"] = {"name": objective} if isinstance(objective, str) else dict(objective)
    return over


@pytest.fixture(scope="session")
def theory() -> Proxy1DTheory:
    """The 1D proxy theory on the SPEC grid."""
    return Proxy1DTheory()


@pytest.fixture(scope="session")
def space(theory):
    """Its parameter space (SPEC bounds and truth)."""
    return theory.parameter_space()


@pytest.fixture
def make_problem():
    """Factory: a fresh small Problem, ``make_problem(env, n_sim=, n_data=, objective=, **build_kw)``."""

    def make(env: str = "proxy1d-detector", n_sim: int = 2000, n_data: int = 2000, objective=None, **kw):
        return build_problem(env, overrides=small_overrides(n_sim, n_data, objective), **kw)

    return make


def run_python(args: list[str], cwd: str | os.PathLike, env_extra: dict | None = None, timeout: float = 120):
    """Run ``python ARGS`` in a subprocess with this interpreter; returns the CompletedProcess."""
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
