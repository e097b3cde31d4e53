"""The 1D proxy pipeline in torch: differentiable from the parameters to the events (SPEC 1).

Same formulas, grid and conventions as the numpy stages (theory/proxy1d.py,
sampling/inverse_cdf.py, detector/simplified.py, selection.py), so that for the same
parameters and the same random numbers both give the same events to float64 rounding. The
random numbers (sampler uniforms, detector matrices) never depend on the parameters and are
held fixed: the events are then a continuous function of the parameters, and gradients flow
through the densities, the normalised CDF and the linear interpolation inside each grid cell.
The cell an event falls into (torch.searchsorted) is piecewise constant, as upstream's is.

Importing this module imports torch; only the GAN solver and its tests import it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .detector import IdentityDetector, SimplifiedDetector
from .errors import ConfigError
from .sampling.inverse_cdf import InverseCDFSampler
from .theory.proxy1d import Proxy1DTheory

SOFT_SCALE = 50.0  # upstream's sigmoid sharpness for the soft selection (SPEC 1)


class TorchPipeline:
    """Unit-cube parameters -> theory -> inverse-CDF sampling -> detector -> selection, in torch.

    Built from a Problem's ``space`` and ``experiment``; only the 1D proxy theory with the
    inverse-CDF sampler and the identity or simplified detector are supported (ConfigError
    otherwise). ``dtype`` float64 by default, so that it matches the numpy pipeline.
    """

    def __init__(self, space: Any, experiment: Any, device: str = "cpu", dtype: torch.dtype = torch.float64) -> None:
        th, det = experiment.theory, experiment.detector
        if not isinstance(th, Proxy1DTheory):
            raise ConfigError(f"the torch pipeline implements the proxy1d theory only; got {type(th).__name__}")
        if not isinstance(experiment.sampler, InverseCDFSampler):
            raise ConfigError("the torch pipeline implements the inverse_cdf sampler only")
        if not isinstance(det, IdentityDetector | SimplifiedDetector):
            raise ConfigError(f"the torch pipeline implements the none/simplified detectors; got {type(det).__name__}")
        self.device, self.dtype = torch.device(device), dtype
        self.experiment = experiment
        self.smearing = isinstance(det, SimplifiedDetector)
        self.edges = self.tensor(th.edges)
        self.dx = torch.diff(self.edges)
        self.logx = self.tensor(th._logx)
        self.log1mx = self.tensor(th._log1mx)
        self.lower, self.width = self.tensor(space.lower), self.tensor(space.width)
        self.sel_lo, self.sel_hi = experiment.selection.lower, experiment.selection.upper

    def tensor(self, a: np.ndarray | float) -> torch.Tensor:
        """A numpy array as a tensor of this pipeline's dtype and device."""
        return torch.as_tensor(np.asarray(a, dtype=np.float64), dtype=self.dtype, device=self.device)

    def physical(self, z: torch.Tensor) -> torch.Tensor:
        """Unit-cube (..., d) -> physical parameters (..., d)."""
        return self.lower + z * self.width

    def densities(self, params: torch.Tensor) -> torch.Tensor:
        """Physical parameters (P, 6) -> sigma1, sigma2 at the grid's left edges, (P, 2, G)."""
        p = params

        def pdf(n, a, b):
            return n[:, None] * torch.exp(a[:, None] * self.logx + b[:, None] * self.log1mx)

        u = pdf(p[:, 0], p[:, 1], p[:, 2])
        d = pdf(p[:, 3], p[:, 4], p[:, 5])
        return torch.stack([4.0 * u + d, 4.0 * d + u], dim=1)

    def totals(self, dens: torch.Tensor) -> torch.Tensor:
        """Total cross sections (P, 2): left Riemann sums on the grid."""
        return dens @ self.dx

    def sample(self, dens: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Densities (P, O, G) and uniforms u (N, O) or (P, N, O) -> events (P, N, O), valid (P,).

        CDF at the edges: F[0] = 0, F[i] = cumsum(dens dx)[i-1] / total, F[G] = 1; event
        x = edges[i] + (u - F[i]) dx_i / (F[i+1] - F[i]) in the cell with F[i] <= u < F[i+1].
        """
        P, O, G = dens.shape
        mass = torch.cumsum(dens * self.dx, dim=-1)
        total = mass[..., -1:]
        valid = torch.isfinite(total[..., 0]).all(dim=1) & (total[..., 0] > 0).all(dim=1)
        zero = torch.zeros_like(total)
        F = torch.cat([zero, mass[..., :-1] / total, torch.ones_like(total)], dim=-1)  # (P, O, G+1)
        uu = u.transpose(-1, -2)  # (O, N) or (P, O, N)
        uu = uu.expand(P, O, uu.shape[-1]).contiguous()
        # The first edge with F > u, minus one: the cell [F_i, F_i+1) holding u (never an empty cell).
        idx = (torch.searchsorted(F.detach().contiguous(), uu, right=True) - 1).clamp(0, G - 1)
        F_i, F_j = torch.gather(F, -1, idx), torch.gather(F, -1, idx + 1)
        e_i, e_j = self.edges[idx], self.edges[idx + 1]
        dF = F_j - F_i
        safe = dF > 0
        slope = torch.where(safe, (e_j - e_i) / torch.where(safe, dF, torch.ones_like(dF)), torch.zeros_like(dF))
        x = e_i + (uu - F_i) * slope
        x = torch.where(valid[:, None, None], x, torch.full_like(x, float("nan")))
        return x.transpose(-1, -2), valid

    def detect(self, events: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        """Apply the per-event matrices (rows m00, m11, e of SimplifiedDetector.draw); identity if off."""
        if not self.smearing:
            return events
        m00, m11, e = noise[..., 0, :], noise[..., 1, :], noise[..., 2, :]
        a, b = events[..., 0], events[..., 1]
        return torch.stack([m00 * a + e * b, e * a + m11 * b], dim=-1)

    def hard_mask(self, events: torch.Tensor) -> torch.Tensor:
        """The analysis cut: True where every coordinate is in [lower, upper] (NaN never passes)."""
        return ((events >= self.sel_lo) & (events <= self.sel_hi)).all(dim=-1)

    def soft_mask(self, events: torch.Tensor, scale: float = SOFT_SCALE) -> torch.Tensor:
        """Upstream's training weight: product over coordinates of two sigmoids of sharpness ``scale``."""
        w = torch.sigmoid(scale * (events - self.sel_lo)) * torch.sigmoid(scale * (self.sel_hi - events))
        return w.prod(dim=-1)

    def simulate(
        self, z: torch.Tensor, u: torch.Tensor, noise: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Unit-cube parameters (P, d) -> detector-level events (P, N, O), totals (P, O), valid (P,)."""
        dens = self.densities(self.physical(z))
        events, valid = self.sample(dens, u)
        return self.detect(events, noise), self.totals(dens), valid

    def noise(self, seed: int, measured: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The experiment's random numbers of ``seed`` (the numpy pipeline's own), as tensors."""
        u, d = self.experiment.noise(seed, measured)
        return self.tensor(u), (None if d is None else self.tensor(d))


# --- 2D: LOITS in torch (SPEC 2c) ---------------------------------------------------------------
# Added beside the 1D pipeline above, which it leaves unchanged: the same algorithm as
# quantom_gf.sampling.loits (two-step cell choice, trapezoid line CDFs, linear inversion), so for
# the same densities and uniforms both give the same events to float64 rounding.


def proxy2d_densities_torch(theory: Any, params: torch.Tensor) -> torch.Tensor:
    """The lite 2D theory's densities (P, 1, Gx, Gy, 1 + 2K) in torch (layout: theory/base.py)."""
    g = theory.grid
    K = g.n_line
    opts = {"dtype": params.dtype, "device": params.device}

    def mesh(u: np.ndarray, v: np.ndarray) -> torch.Tensor:
        x, y = torch.as_tensor(u, **opts), torch.as_tensor(v, **opts)
        p = params
        fx = torch.exp(p[:, 0:1] * torch.log(x) + p[:, 1:2] * torch.log1p(-x))
        fy = torch.exp(p[:, 2:3] * torch.log(y) + p[:, 3:4] * torch.log1p(-y))
        return (fx[:, :, None] * fy[:, None, :] * (1.0 + p[:, 4, None, None] * torch.outer(x, y))).clamp_min(0.0)

    P, (Gx, Gy) = params.shape[0], g.shape
    centre = mesh(g.u_centres, g.v_centres)[..., None]
    lu = mesh(g.u_nodes.ravel(), g.v_centres).reshape(P, Gx, K, Gy).permute(0, 1, 3, 2)
    lv = mesh(g.u_centres, g.v_nodes.ravel()).reshape(P, Gx, Gy, K)
    return torch.cat([centre, lu, lv], dim=-1)[:, None]


def _line_cdf_torch(line: torch.Tensor) -> torch.Tensor:
    """Trapezoid CDF (..., K) of K-point lines; an all-zero line becomes uniform (as in numpy)."""
    line = line.clamp_min(0.0)
    m = 0.5 * (line[..., 1:] + line[..., :-1])
    tot = m.sum(-1, keepdim=True)
    ok = (tot > 0) & torch.isfinite(tot)
    K1 = m.shape[-1]
    m = torch.where(ok, m / torch.where(ok, tot, torch.ones_like(tot)), torch.full_like(m, 1.0 / K1))
    F = torch.cumsum(m, -1)
    return torch.cat([torch.zeros_like(F[..., :1]), F[..., :-1], torch.ones_like(F[..., :1])], -1)


def _invert_torch(F: torch.Tensor, nodes: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Linear inversion of per-event K-point CDFs F (P, N, K) on nodes (P, N, K) at t (P, N)."""
    K = F.shape[-1]
    m = torch.searchsorted(F.detach().contiguous(), t.detach()[..., None].contiguous(), right=True) - 1
    m = m.clamp(0, K - 2)
    F0, F1 = torch.gather(F, -1, m)[..., 0], torch.gather(F, -1, m + 1)[..., 0]
    n0, n1 = torch.gather(nodes, -1, m)[..., 0], torch.gather(nodes, -1, m + 1)[..., 0]
    dF = F1 - F0
    safe = dF > 0
    frac = torch.where(safe, (t - F0) / torch.where(safe, dF, torch.ones_like(dF)), torch.zeros_like(dF))
    return n0 + frac * (n1 - n0)


def loits_sample_torch(grid: Any, dens: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Differentiable LOITS: densities (P, 1, Gx, Gy, 1 + 2K) on a Grid2D, uniforms u -> events (P, N, 2).

    ``u``: (N, 2), shared by the population, or (P, N, 2), one set per member.

    The choice of row and column (the cell) is piecewise constant (searchsorted on detached
    CDFs, as upstream detaches its allocation); gradients flow through the positions inside the
    chosen intervals (t_u, t_v, which depend on the cell weights), the in-cell line CDFs and the
    linear interpolation. Memory is O(P N (Gx + K)): meant for GAN batches, not 1e5-event samples.
    Returns events and valid (P,); events outside ``grid.region`` are NaN, like the numpy sampler's.
    """
    P, _, Gx, Gy, L = dens.shape
    K = (L - 1) // 2
    opts = {"dtype": dens.dtype, "device": dens.device}
    wgeom = torch.as_tensor(grid.area * grid.accept, **opts)
    w = dens[:, 0, :, :, 0].clamp_min(0.0) * wgeom  # (P, Gx, Gy)
    rows = w.sum(1)  # (P, Gy)
    total = rows.sum(1, keepdim=True)
    valid = torch.isfinite(total[:, 0]) & (total[:, 0] > 0)
    zero = torch.zeros_like(total)
    RC = torch.cat([zero, torch.cumsum(rows, 1)[:, :-1] / total, torch.ones_like(total)], 1)  # (P, Gy+1)
    safe_rows = torch.where(rows > 0, rows, torch.ones_like(rows))
    CC = torch.cumsum(w, 1) / safe_rows[:, None, :]  # (P, Gx, Gy)
    CC = torch.cat([torch.zeros_like(CC[:, :1]), CC[:, :-1], torch.ones_like(CC[:, :1])], 1).transpose(1, 2)
    a = u[..., 0].to(**opts).expand(P, -1).contiguous()  # u: (N, 2) shared, or (P, N, 2) per set
    b = u[..., 1].to(**opts).expand(P, -1).contiguous()
    j = (torch.searchsorted(RC.detach().contiguous(), b, right=True) - 1).clamp(0, Gy - 1)  # (P, N)
    r0, r1 = torch.gather(RC, 1, j), torch.gather(RC, 1, j + 1)
    tv = ((b - r0) / torch.where(r1 > r0, r1 - r0, torch.ones_like(r0))).clamp(0.0, 1.0 - 1e-16)
    CCj = torch.gather(CC, 1, j[..., None].expand(-1, -1, Gx + 1))  # (P, N, Gx+1): row j's CDF per event
    i = (torch.searchsorted(CCj.detach().contiguous(), a[..., None], right=True)[..., 0] - 1).clamp(0, Gx - 1)
    c0, c1 = torch.gather(CCj, 2, i[..., None])[..., 0], torch.gather(CCj, 2, i[..., None] + 1)[..., 0]
    tu = ((a - c0) / torch.where(c1 > c0, c1 - c0, torch.ones_like(c0))).clamp(0.0, 1.0 - 1e-16)
    FU = _line_cdf_torch(dens[:, 0, :, :, 1 : 1 + K]).reshape(P, Gx * Gy, K)
    FV = _line_cdf_torch(dens[:, 0, :, :, 1 + K :]).reshape(P, Gx * Gy, K)
    cell = (i * Gy + j)[..., None].expand(-1, -1, K)
    un, vn = torch.as_tensor(grid.u_nodes, **opts), torch.as_tensor(grid.v_nodes, **opts)
    x = _invert_torch(torch.gather(FU, 1, cell), un[i], tu)
    y = _invert_torch(torch.gather(FV, 1, cell), vn[j], tv)
    x = torch.exp(x) if grid.log[0] else x
    y = torch.exp(y) if grid.log[1] else y
    ev = torch.stack([x, y], -1)
    keep = valid[:, None, None].expand_as(ev)
    if grid.region is not None:
        inside = np.asarray(grid.region(x.detach().cpu().numpy(), y.detach().cpu().numpy()))
        keep = keep & torch.as_tensor(inside, device=dens.device)[..., None]
    return torch.where(keep, ev, torch.full_like(ev, float("nan"))), valid


class TorchPipeline2D(TorchPipeline):
    """The lite 2D proxy (proxy2d theory, LOITS, none/simplified detector) with TorchPipeline's interface.

    Same methods and shapes as the 1D class (``simulate(z, u, noise)`` -> events, totals (P, 1),
    valid), so a solver written against TorchPipeline runs on it; ``make_torch_pipeline`` picks
    the class from the experiment. Duke & Owens and the VAE detector have no torch version yet.
    """

    def __init__(self, space: Any, experiment: Any, device: str = "cpu", dtype: torch.dtype = torch.float64) -> None:
        from .sampling.loits import LOITSSampler
        from .theory.proxy2d import Proxy2DTheory

        th, det = experiment.theory, experiment.detector
        if not isinstance(th, Proxy2DTheory) or not isinstance(experiment.sampler, LOITSSampler):
            raise ConfigError("the 2D torch pipeline implements the proxy2d theory with the loits sampler only")
        if not isinstance(det, IdentityDetector | SimplifiedDetector):
            name = type(det).__name__
            raise ConfigError(f"the 2D torch pipeline implements the none/simplified detectors; got {name}")
        sel = experiment.selection
        if np.ndim(getattr(sel, "lower", None)) != 0:
            raise ConfigError("the torch pipelines implement the scalar [selection] lower/upper only")
        self.device, self.dtype = torch.device(device), dtype
        self.experiment, self.theory, self.grid = experiment, th, th.grid
        self.smearing = isinstance(det, SimplifiedDetector)
        self.lower, self.width = self.tensor(space.lower), self.tensor(space.width)
        self.sel_lo, self.sel_hi = sel.lower, sel.upper
        self.wgeom = self.tensor(th.grid.area * th.grid.accept)

    def densities(self, params: torch.Tensor) -> torch.Tensor:
        """Physical parameters (P, 5) -> (P, 1, Gx, Gy, 1 + 2K) (layout: theory/base.py)."""
        return proxy2d_densities_torch(self.theory, params)

    def totals(self, dens: torch.Tensor) -> torch.Tensor:
        """Total cross section (P, 1): midpoint sums, as Theory.totals."""
        return (dens[:, :, :, :, 0] * self.wgeom).sum(dim=(2, 3))

    def sample(self, dens: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Densities and uniforms (N, 2) or (P, N, 2) -> events (P, N, 2), valid (P,)."""
        return loits_sample_torch(self.grid, dens, u)


def make_torch_pipeline(space: Any, experiment: Any, device: str = "cpu", dtype: torch.dtype = torch.float64):
    """TorchPipeline for 1D experiments, TorchPipeline2D for the lite 2D proxy (ConfigError otherwise)."""
    from .theory.base import Grid2D

    cls = TorchPipeline2D if isinstance(experiment.theory.grid, Grid2D) else TorchPipeline
    return cls(space, experiment, device=device, dtype=dtype)
