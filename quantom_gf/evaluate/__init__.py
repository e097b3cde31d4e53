"""Evaluators: how a population's scores are computed (serial, MPI, asynchronous).

Every evaluator has ``map(problem, Z, seed) -> scores``, ``is_root`` (False on MPI worker
ranks, which call ``serve(problem)`` instead of running a solver) and ``close()``.
"""

from __future__ import annotations

from ..errors import ConfigError
from .serial import SerialEvaluator


def make_evaluator(name: str = "auto") -> SerialEvaluator:
    """The evaluator named on the command line ("auto": serial unless under mpiexec)."""
    if name in ("auto", "serial"):
        return SerialEvaluator()
    raise ConfigError(f"unknown evaluator '{name}'; choose one of: auto, serial")


__all__ = ["SerialEvaluator", "make_evaluator"]
