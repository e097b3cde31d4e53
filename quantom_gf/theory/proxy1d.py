"""The 1D proxy theory (SPEC section 1): toy u and d PDFs, two cross sections."""

from __future__ import annotations

import numpy as np

from ..params import ParameterSpace
from .base import Theory

NAMES = ("N_u", "a_u", "b_u", "N_d", "a_d", "b_d")
LOWER = (0.0, -1.0, 0.0, 0.0, -1.0, 0.0)
UPPER = (3.0, 1.0, 5.0, 3.0, 1.0, 5.0)
# N_u = 2/B(0.5, 4), N_d = 1/B(0.5, 4): upstream's reference truth, kept as is (SPEC 1).
TRUTH = (2.1875, -0.5, 3.0, 1.09375, -0.5, 4.0)


class Proxy1DTheory(Theory):
    """u = N_u x^a_u (1-x)^b_u, d likewise; sigma1 = 4u + d, sigma2 = 4d + u on a 1D grid.

    The grid is 1000 cells of width dx = (x_max - x_min)/1000 whose left edges carry the
    density; this reproduces the SPEC totals 3.2786 and 1.8790 at the truth.
    """

    observables = ("x1", "x2")

    def __init__(self, x_min: float = 0.1, x_max: float = 0.99999, n_grid: int = 1000) -> None:
        if not (0.0 < x_min < x_max < 1.0) or n_grid < 2:
            raise ValueError("proxy1d grid needs 0 < x_min < x_max < 1 and n_grid >= 2")
        self.x_min, self.x_max, self.n_grid = float(x_min), float(x_max), int(n_grid)
        self.edges = np.linspace(self.x_min, self.x_max, self.n_grid + 1)
        self.x = self.edges[:-1]
        self._logx = np.log(self.x)
        self._log1mx = np.log1p(-self.x)

    def parameter_space(self) -> ParameterSpace:
        """The SPEC bounds and truth."""
        return ParameterSpace(NAMES, LOWER, UPPER, TRUTH)

    def _pdf(self, norm: np.ndarray, a: np.ndarray, b: np.ndarray, logx, log1mx) -> np.ndarray:
        return norm[:, None] * np.exp(a[:, None] * logx + b[:, None] * log1mx)

    def densities(self, params: np.ndarray) -> np.ndarray:
        """(P, 6) physical parameters -> (P, 2, G) sigma1, sigma2 at the grid's left edges."""
        p = np.atleast_2d(np.asarray(params, dtype=np.float64))
        u = self._pdf(p[:, 0], p[:, 1], p[:, 2], self._logx, self._log1mx)
        d = self._pdf(p[:, 3], p[:, 4], p[:, 5], self._logx, self._log1mx)
        out = np.empty((p.shape[0], 2, self.x.size))
        out[:, 0] = 4.0 * u + d
        out[:, 1] = 4.0 * d + u
        return out

    def pdfs(self, params: np.ndarray, x: np.ndarray) -> dict[str, np.ndarray]:
        """u(x) and d(x), each (P, len(x))."""
        p = np.atleast_2d(np.asarray(params, dtype=np.float64))
        x = np.asarray(x, dtype=np.float64)
        lx, l1 = np.log(x), np.log1p(-x)
        return {
            "u": self._pdf(p[:, 0], p[:, 1], p[:, 2], lx, l1),
            "d": self._pdf(p[:, 3], p[:, 4], p[:, 5], lx, l1),
        }
