"""LOITS: local orthogonal inverse transform sampling on a 2D grid (SPEC 2c), batched, with CRN.

For each member: cell weights = density at the cell centre x area x acceptance, normalised;
every event lands in a cell with probability its weight; inside the cell, u and v are drawn
independently ("orthogonal") from 1D CDFs built by the trapezoid rule on the density at
``grid.n_line`` points along each line through the centre, inverted by linear interpolation.

Smoothness under common random numbers (two uniforms per event, a and b): the cell is chosen
in two inverse-CDF steps, its row j (fixed v) from b over the row masses, then its column i
from a over the cells of row j; the in-cell draws use where a and b fall *inside* the chosen
intervals, t_u = (a - C_j[i]) / w_ij and t_v = (b - R[j]) / R_j, not separate uniforms. Given
the cell, t_u and t_v are independent uniforms, so the distribution is exactly LOITS's; but
when a parameter change moves a across a cell boundary the event passes to the neighbouring
cell with u continuous (right edge of one = left edge of the next), and when b crosses a row
boundary v is continuous the same way and u moves only by the difference between neighbouring
rows' conditional quantiles. A plain inverse CDF over all cells would make such events jump by
a whole row, and the score would be jagged (hundreds of events changing bins at random).

numba for the per-event search, as in sampling/inverse_cdf.py.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..theory.base import Grid2D
from .base import Sampler


@njit(cache=True)
def _line_cdfs(dens, p, off, K, F):  # pragma: no cover - compiled
    # Trapezoid masses of the K-point line starting at dens[p, 0, i, j, off] -> normalised CDF
    # F[c, 0..K-1]; an all-zero line (a cell whose line misses the region) becomes uniform.
    _, _, Gx, Gy, _ = dens.shape
    for i in range(Gx):
        for j in range(Gy):
            c = i * Gy + j
            acc = 0.0
            F[c, 0] = 0.0
            prev = max(dens[p, 0, i, j, off], 0.0)
            for k in range(1, K):
                cur = max(dens[p, 0, i, j, off + k], 0.0)
                acc += 0.5 * (prev + cur)
                F[c, k] = acc
                prev = cur
            if acc > 0.0 and acc < np.inf:
                inv = 1.0 / acc
                for k in range(1, K - 1):
                    F[c, k] *= inv
            else:
                for k in range(1, K - 1):
                    F[c, k] = k / (K - 1.0)
            F[c, K - 1] = 1.0


@njit(cache=True)
def _invert(F, c, nodes, t):  # pragma: no cover - compiled
    # Linear interpolation of the inverse of the K-point CDF F[c] at t in [0, 1); returns (x, m).
    K = F.shape[1]
    m = 0
    while m < K - 2 and F[c, m + 1] <= t:
        m += 1
    dF = F[c, m + 1] - F[c, m]
    frac = (t - F[c, m]) / dF if dF > 0.0 else 0.0
    return nodes[m] + frac * (nodes[m + 1] - nodes[m]), m


@njit(cache=True)
def _search(F, lo, hi, t):  # pragma: no cover - compiled
    # The k in [lo, hi) with F[k] <= t < F[k + 1] (F non-decreasing, F[hi] > t): bisection.
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if F[mid] <= t:
            lo = mid
        else:
            hi = mid
    return lo


@njit(cache=True)
def _loits(un, vn, wgeom, dens, u, logu, logv, out, valid, cells):  # pragma: no cover - compiled
    P, _, Gx, Gy, L = dens.shape
    K = (L - 1) // 2
    C = Gx * Gy
    N = u.shape[0]
    want_cells = cells.shape[0] > 0
    RC = np.empty(Gy + 1)  # CDF over rows j
    CC = np.empty((Gy, Gx + 1))  # CDF over the cells i of each row, normalised within the row
    FU = np.empty((C, K))
    FV = np.empty((C, K))
    for p in range(P):
        acc = 0.0
        RC[0] = 0.0
        for j in range(Gy):
            row = 0.0
            CC[j, 0] = 0.0
            for i in range(Gx):
                row += max(dens[p, 0, i, j, 0], 0.0) * wgeom[i, j]
                CC[j, i + 1] = row
            if row > 0.0:
                inv = 1.0 / row
                for i in range(1, Gx):
                    CC[j, i] *= inv
            CC[j, Gx] = 1.0
            acc += row
            RC[j + 1] = acc
        if not (acc > 0.0 and acc < np.inf):
            valid[p] = False
            out[p] = np.nan
            continue
        inv = 1.0 / acc
        for j in range(1, Gy):
            RC[j] *= inv
        RC[Gy] = 1.0
        _line_cdfs(dens, p, 1, K, FU)
        _line_cdfs(dens, p, 1 + K, K, FV)
        for n in range(N):
            a, b = u[n, 0], u[n, 1]
            j = _search(RC, 0, Gy, b)
            tv = (b - RC[j]) / (RC[j + 1] - RC[j])
            i = _search(CC[j], 0, Gx, a)
            tu = (a - CC[j, i]) / (CC[j, i + 1] - CC[j, i])
            tu = min(max(tu, 0.0), 1.0 - 1e-16)
            tv = min(max(tv, 0.0), 1.0 - 1e-16)
            c = i * Gy + j
            x, mu = _invert(FU, c, un[i], tu)
            y, mv = _invert(FV, c, vn[j], tv)
            out[p, n, 0] = np.exp(x) if logu else x
            out[p, n, 1] = np.exp(y) if logv else y
            if want_cells:
                cells[p, 0, n] = c
                cells[p, 1, n] = c * (K - 1) + mu
                cells[p, 2, n] = c * (K - 1) + mv


class LOITSSampler(Sampler):
    """LOITS on a Grid2D (module doc). Two uniforms per event, shared by the whole population.

    Reweighting (quantom_gf.reweight) sees each event's cells through ``sample_with_cells`` and
    the per-cell probability ratios through ``cell_ratios``: the exact density of this sampler at
    an event is w_c * p_u(sub-interval) * p_v(sub-interval), three table look-ups.
    """

    def draw(self, rng: np.random.Generator, n_events: int, n_obs: int) -> np.ndarray:
        """Uniforms in [0, 1), shape (n_events, 2): column-and-u, and row-and-v."""
        if n_obs != 2:
            raise ValueError("LOITS draws events with two observables")
        return rng.random((n_events, 2))

    def _run(self, grid: Grid2D, dens: np.ndarray, noise: np.ndarray, with_cells: bool):
        if not isinstance(grid, Grid2D):
            raise ValueError("the loits sampler needs a 2D theory (a Grid2D); use inverse_cdf for 1D theories")
        dens = np.ascontiguousarray(dens, dtype=np.float64)
        P = dens.shape[0]
        if dens.shape[1:] != (1, *grid.shape, 1 + 2 * grid.n_line):
            raise ValueError(f"loits: densities of shape {dens.shape[1:]} do not match the grid")
        out = np.empty((P, noise.shape[0], 2))
        valid = np.ones(P, dtype=np.bool_)
        cells = np.zeros((P, 3, noise.shape[0]) if with_cells else (0, 3, 0), dtype=np.int64)
        wgeom = np.ascontiguousarray(grid.area * grid.accept)
        _loits(grid.u_nodes, grid.v_nodes, wgeom, dens, np.ascontiguousarray(noise, dtype=np.float64),
               bool(grid.log[0]), bool(grid.log[1]), out, valid, cells)  # fmt: skip
        if grid.region is not None:
            # Corners of boundary cells lie outside the kinematic region: those events are lost,
            # like events outside a detector's acceptance (NaN never passes a selection).
            with np.errstate(invalid="ignore", divide="ignore"):
                inside = grid.region(out[..., 0], out[..., 1])
            out[~inside] = np.nan
        return out, valid, cells

    def sample(self, grid: Grid2D, dens: np.ndarray, noise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Densities (P, 1, Gx, Gy, 1 + 2K) on ``grid`` -> events (P, N, 2) and valid (P,)."""
        out, valid, _ = self._run(grid, dens, noise, False)
        return out, valid

    def sample_with_cells(self, grid: Grid2D, dens: np.ndarray, noise: np.ndarray):
        """Events, valid, and each event's table indices (P, 3, N): cell, u sub-interval, v sub-interval."""
        return self._run(grid, dens, noise, True)

    @staticmethod
    def cell_tables(grid: Grid2D, dens: np.ndarray) -> np.ndarray:
        """(P, 3, C (K-1)) probabilities: of each cell, and of each sub-interval within its cell's lines."""
        P = dens.shape[0]
        C, K = grid.n_cells, grid.n_line
        out = np.zeros((P, 3, C * (K - 1)))
        w = np.maximum(dens[:, 0, :, :, 0], 0.0) * (grid.area * grid.accept)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, 0, :C] = (w / w.sum(axis=(1, 2), keepdims=True)).reshape(P, C)
            for f, off in ((1, 1), (2, 1 + K)):
                line = np.maximum(dens[:, 0, :, :, off : off + K], 0.0)
                m = 0.5 * (line[..., 1:] + line[..., :-1])
                tot = m.sum(axis=-1, keepdims=True)
                ok = (tot > 0) & np.isfinite(tot)
                m = np.where(ok, m / np.where(ok, tot, 1.0), 1.0 / (K - 1))
                out[:, f] = m.reshape(P, C * (K - 1))
        return out

    def cell_ratios(self, grid: Grid2D, dens: np.ndarray, dens0: np.ndarray) -> np.ndarray:
        """Ratios (P, 3, C (K-1)) of this sampler's table probabilities at dens over those at dens0 (1, ...)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.cell_tables(grid, dens) / self.cell_tables(grid, dens0)
