"""Theory contract: physical parameters (P, d) -> cross-section densities on a grid.

Two grid kinds, one contract (``theory.grid`` is what the sampler receives):

- **1D** (the proxy1d theory): ``grid`` is the cell-edge array ``edges`` (G+1,). Densities are
  (P, n_obs, G): one independent density per observable, each value the cross section at the
  left edge of its cell (left Riemann convention); totals (P, n_obs) are left Riemann sums.
- **2D** (proxy2d, duke_owens): ``grid`` is a :class:`Grid2D`. There is one joint density and
  events have two observables. Densities are (P, 1, Gx, Gy, 1 + 2K), a (P, 1, Gx, Gy) array of
  cells whose trailing axis carries what the LOITS sampler needs inside each cell:

  - ``[..., 0]``: the density at the cell centre (what cell weights, totals and reweighting use);
  - ``[..., 1 : 1 + K]``: the density along u (first coordinate) through the centre's v, at the
    K equally spaced points ``grid.u_nodes[i]`` from the cell's left to its right edge;
  - ``[..., 1 + K :]``: the density along v through the centre's u, at ``grid.v_nodes[j]``.

  Values are densities in the *sampling* coordinates (u, v) of the grid, Jacobian included
  (Duke & Owens samples in (log x, log Q2), so its density there is sigma(x, Q2) x Q2), and zero
  outside the accepted region. ``grid.accept`` (Gx, Gy) is the accepted fraction of each cell's
  area; totals (P, 1) are midpoint sums: sum over cells of centre density x area x acceptance.
  Lines instead of a full (10 Gx) x (10 Gy) lattice: 2K + 1 evaluations per cell instead of
  ~K^2, and the sampler only ever reads the density along these two lines.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..params import ParameterSpace


@dataclass
class Grid2D:
    """Cells of a 2D sampling grid in coordinates (u, v), with in-cell line points and acceptance.

    ``log[k]`` marks a coordinate sampled in its logarithm (u = log x): events are returned as
    exp(u). ``region(a, b) -> bool`` (observable coordinates, optional) tells the accepted
    kinematic region; events LOITS draws outside it (corners of boundary cells) are discarded.
    """

    u_edges: np.ndarray
    v_edges: np.ndarray
    n_line: int = 10
    log: tuple[bool, bool] = (False, False)
    accept: np.ndarray | None = None
    region: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.u_edges = np.asarray(self.u_edges, dtype=np.float64)
        self.v_edges = np.asarray(self.v_edges, dtype=np.float64)
        if self.u_edges.ndim != 1 or self.v_edges.ndim != 1 or min(self.u_edges.size, self.v_edges.size) < 2:
            raise ValueError("Grid2D needs 1D edge arrays with at least two edges each")
        if np.any(np.diff(self.u_edges) <= 0) or np.any(np.diff(self.v_edges) <= 0):
            raise ValueError("Grid2D edges must be strictly increasing")
        if self.n_line < 2:
            raise ValueError("Grid2D needs n_line >= 2 points per cell and coordinate")
        self.u_centres = 0.5 * (self.u_edges[:-1] + self.u_edges[1:])
        self.v_centres = 0.5 * (self.v_edges[:-1] + self.v_edges[1:])
        t = np.linspace(0.0, 1.0, self.n_line)
        self.u_nodes = self.u_edges[:-1, None] + np.diff(self.u_edges)[:, None] * t  # (Gx, K)
        self.v_nodes = self.v_edges[:-1, None] + np.diff(self.v_edges)[:, None] * t  # (Gy, K)
        self.area = np.outer(np.diff(self.u_edges), np.diff(self.v_edges))
        if self.accept is None:
            self.accept = np.ones(self.shape)
        self.accept = np.ascontiguousarray(self.accept, dtype=np.float64)
        if self.accept.shape != self.shape:
            raise ValueError(f"Grid2D accept must have shape {self.shape}")

    @property
    def shape(self) -> tuple[int, int]:
        """Cells (Gx, Gy)."""
        return self.u_edges.size - 1, self.v_edges.size - 1

    @property
    def n_cells(self) -> int:
        """Gx * Gy."""
        return self.shape[0] * self.shape[1]

    def to_observables(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sampling coordinates -> observables (exp where the coordinate is a logarithm)."""
        return (np.exp(u) if self.log[0] else u), (np.exp(v) if self.log[1] else v)

    def to_sampling(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Observables -> sampling coordinates."""
        return (np.log(a) if self.log[0] else a), (np.log(b) if self.log[1] else b)

    def accepted_fraction(self, n_sub: int = 16) -> np.ndarray:
        """Fraction (Gx, Gy) of each cell inside ``region``, on an n_sub x n_sub midpoint lattice."""
        if self.region is None:
            return np.ones(self.shape)
        s = (np.arange(n_sub) + 0.5) / n_sub
        uu = (self.u_edges[:-1, None] + np.diff(self.u_edges)[:, None] * s).ravel()
        vv = (self.v_edges[:-1, None] + np.diff(self.v_edges)[:, None] * s).ravel()
        a, b = self.to_observables(uu[:, None], vv[None, :])
        inside = np.asarray(self.region(np.broadcast_to(a, (uu.size, vv.size)), b), dtype=np.float64)
        Gx, Gy = self.shape
        return inside.reshape(Gx, n_sub, Gy, n_sub).mean(axis=(1, 3))


class Theory(ABC):
    """Maps a population of physical parameters to cross sections on a fixed grid (see module doc).

    1D subclasses set ``observables`` and ``edges``; 2D subclasses set ``observables`` and
    ``grid`` (a Grid2D) and ``n_xsec = 1``.
    """

    observables: tuple[str, ...]
    edges: np.ndarray

    @property
    def grid(self) -> np.ndarray | Grid2D:
        """What the sampler draws on: the edges (1D) or a Grid2D (2D theories override)."""
        return self.edges

    @property
    def n_obs(self) -> int:
        """Number of observables (event coordinates)."""
        return len(self.observables)

    @property
    def n_xsec(self) -> int:
        """Number of densities, hence of total cross sections: n_obs in 1D, 1 for a joint 2D density."""
        return 1 if isinstance(self.grid, Grid2D) else self.n_obs

    @abstractmethod
    def parameter_space(self) -> ParameterSpace:
        """Names, bounds and reference truth of this theory's parameters."""

    @abstractmethod
    def densities(self, params: np.ndarray) -> np.ndarray:
        """Cross sections for physical parameters (P, d); non-negative (shapes: module doc)."""

    def totals(self, dens: np.ndarray) -> np.ndarray:
        """Total cross sections (P, n_xsec): left Riemann sums (1D) or midpoint sums (2D)."""
        grid = self.grid
        if isinstance(grid, Grid2D):
            return np.einsum("pcij,ij->pc", dens[..., 0], grid.area * grid.accept)
        return dens @ np.diff(self.edges)

    @abstractmethod
    def pdfs(self, params: np.ndarray, x: np.ndarray) -> dict[str, np.ndarray]:
        """Named parton densities (P, len(x)) for plots and bands."""


class Theory2D(Theory):
    """Helper base of 2D theories: implement ``density_mesh``; the grid layout is done here."""

    grid: Grid2D = None  # type: ignore[assignment]  # set by the constructor; shadows Theory.grid

    @property
    def edges(self) -> np.ndarray:  # type: ignore[override]
        """The u edges (for code that only wants a 1D range)."""
        return self.grid.u_edges

    @abstractmethod
    def density_mesh(self, params: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Density in sampling coordinates on the mesh u (nu,) x v (nv,): (P, nu, nv), >= 0."""

    def densities(self, params: np.ndarray) -> np.ndarray:
        """(P, d) -> (P, 1, Gx, Gy, 1 + 2K): centre, line along u, line along v (module doc)."""
        p = np.atleast_2d(np.asarray(params, dtype=np.float64))
        g = self.grid
        (Gx, Gy), K = g.shape, g.n_line
        out = np.empty((p.shape[0], 1, Gx, Gy, 1 + 2 * K))
        out[:, 0, :, :, 0] = self.density_mesh(p, g.u_centres, g.v_centres)
        lu = self.density_mesh(p, g.u_nodes.ravel(), g.v_centres).reshape(p.shape[0], Gx, K, Gy)
        out[:, 0, :, :, 1 : 1 + K] = lu.transpose(0, 1, 3, 2)
        lv = self.density_mesh(p, g.u_centres, g.v_nodes.ravel()).reshape(p.shape[0], Gx, Gy, K)
        out[:, 0, :, :, 1 + K :] = lv
        return out
