"""The "lite" 2D proxy theory (SPEC 2a): one joint density in (x, y), five parameters."""

from __future__ import annotations

import numpy as np

from ..params import ParameterSpace
from .base import Grid2D, Theory2D

NAMES = ("p0", "p1", "p2", "p3", "p4")
TRUTH = (0.5, 3.0, 0.3, 4.0, 0.75)
LOWER = (-0.5, 2.75, 0.0, 3.0, 0.0)
UPPER = (1.0, 4.0, 1.3, 4.5, 1.5)


class Proxy2DTheory(Theory2D):
    """sigma(x, y) = x^p0 (1-x)^p1 y^p2 (1-y)^p3 (1 + p4 x y) on [lo, hi]^2, a uniform n x n grid.

    No kinematic region beyond the box; the density is sampled in (x, y) directly (Jacobian 1).
    """

    observables = ("x", "y")

    def __init__(self, lo: float = 0.001, hi: float = 0.999, n_grid: int = 50, n_line: int = 10) -> None:
        if not (0.0 < lo < hi < 1.0) or n_grid < 2:
            raise ValueError("proxy2d grid needs 0 < lo < hi < 1 and n_grid >= 2")
        self.lo, self.hi, self.n_grid, self.n_line = float(lo), float(hi), int(n_grid), int(n_line)
        e = np.linspace(self.lo, self.hi, self.n_grid + 1)
        self.grid = Grid2D(e, e, n_line=self.n_line)

    def parameter_space(self) -> ParameterSpace:
        """The SPEC 2a bounds and truth."""
        return ParameterSpace(NAMES, LOWER, UPPER, TRUTH)

    def density_mesh(self, params: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """sigma on the mesh x = u (nu,), y = v (nv,): (P, nu, nv)."""
        p = np.atleast_2d(np.asarray(params, dtype=np.float64))
        x, y = np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64)
        # Separable except the (1 + p4 x y) factor: two 1D power laws and one outer product.
        fx = np.exp(p[:, 0:1] * np.log(x) + p[:, 1:2] * np.log1p(-x))  # (P, nu)
        fy = np.exp(p[:, 2:3] * np.log(y) + p[:, 3:4] * np.log1p(-y))  # (P, nv)
        out = fx[:, :, None] * fy[:, None, :] * (1.0 + p[:, 4, None, None] * np.multiply.outer(x, y))
        return np.maximum(out, 0.0)  # p4 >= 0 in the box; a user's wider bounds must not go negative

    def pdfs(self, params: np.ndarray, x: np.ndarray) -> dict[str, np.ndarray]:
        """The two 1D factors, f_x = x^p0 (1-x)^p1 and f_y = y^p2 (1-y)^p3 at the points x."""
        p = np.atleast_2d(np.asarray(params, dtype=np.float64))
        x = np.asarray(x, dtype=np.float64)
        lx, l1 = np.log(x), np.log1p(-x)
        return {
            "f_x": np.exp(p[:, 0:1] * lx + p[:, 1:2] * l1),
            "f_y": np.exp(p[:, 2:3] * lx + p[:, 3:4] * l1),
        }
