"""The serial evaluator: the whole population in one vectorised call."""

from __future__ import annotations

import numpy as np

from ..problem import Problem


class SerialEvaluator:
    """evaluator.map(problem, Z, seed) -> scores, in this process."""

    name = "serial"
    n_workers = 1
    is_root = True
    last_workers = None

    def map(self, problem: Problem, Z: np.ndarray, seed: int) -> np.ndarray:
        """Scores (P,) of population Z (P, d) with the random numbers of ``seed``."""
        return problem.evaluate(Z, seed)

    def serve(self, problem: Problem) -> None:
        """Nothing to serve: the serial evaluator has no workers."""

    def close(self) -> None:
        """Nothing to release."""
