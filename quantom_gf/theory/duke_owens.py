"""Duke & Owens DIS theory in (x, Q2) for a proton or neutron target (SPEC 2b).

Each PDF is f(x, Q2) = A x^a (1-x)^b (1 + c x + d x^2 + e x^3) with every one of A..e quadratic
in s(Q2) = ln[ln(Q2/L2) / ln(Q0^2/L2)]: 18 numbers per flavour, 36 in all, named
``"<flavour>.<coef><power>"`` (``"u.A0"``, ``"d.b1"``, ...). Which of them are fitted is the
``fit`` option; the others stay at the truth.

Default fit ``u.A0, u.a0, d.A0, d.a0`` (the s^0 normalisation and small-x exponent of each
flavour), because these are what events at sqrt(s) = 140 GeV constrain: with Q2 >= 1.64 and
W2 >= 10 almost all events have x < 0.1, where (1-x)^b ~ 1, so the large-x exponents b0 are
barely seen (a 6-parameter fit with u.b0, d.b0 and 20k events per target found an uncertainty
of 0.24 on u.b0, wider than any sensible prior range, and d.b0 ran to its bound), and the
polynomial coefficients c, d, e are large numbers (|c0..e0| ~ 25-190) that cancel against each
other at large x. Add names to ``fit`` for studies with large-x data. Proton and neutron data
together separate u from d (F2_p ~ 4u + d, F2_n ~ 4d + u); the totals fix the normalisations.

Sampling coordinates are (log x, log Q2) on a uniform grid, so the densities carry the
Jacobian x Q2; the accepted region is Q2 <= Q2max x (y <= 1) and W2 >= W2_min.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..kinematics import PROTON_MASS, Q2_MIN, SQRT_S
from ..params import ParameterSpace
from .base import Grid2D, Theory2D

COEFS = ("A", "a", "b", "c", "d", "e")
FLAVOURS = ("u", "d")
NAMES = tuple(f"{f}.{c}{k}" for f in FLAVOURS for c in COEFS for k in range(3))
TRUTH_U = (
    1.12995643e-01, 2.84816039e-02, 3.49711182e-02, -1.07992996e00, -8.67724315e-02, 2.67006979e-02,
    -3.42002556e-01, 2.16083133e00, -7.06215971e-02, 5.99208979e01, -3.80095917e01, 6.96188257e00,
    -1.93266172e02, 1.76589359e02, -3.96195694e01, 1.62782187e02, -1.79165065e02, 4.60385729e01,
)  # fmt: skip
TRUTH_D = (
    -6.26740092e-02, 3.54363691e-01, -1.06902973e-01, -1.20394986e00, 1.55339980e-01, -7.87939114e-02,
    2.75190189e-01, 3.99743001e00, -8.40757936e-01, 4.31272688e01, -3.26453695e01, 7.87648066e00,
    -1.02351414e02, 1.08446491e02, -2.81885597e01, 2.58442965e01, -4.35307825e01, 1.22755848e01,
)  # fmt: skip
TRUTH = np.array(TRUTH_U + TRUTH_D)
DEFAULT_FIT = ("u.A0", "u.a0", "d.A0", "d.a0")

ALPHA = 1.0 / 137.0
TARGETS = {"proton": (4.0 / 9.0, 1.0 / 9.0), "neutron": (1.0 / 9.0, 4.0 / 9.0)}  # (e_u^2-weight of u, of d)


class DukeOwensTheory(Theory2D):
    """LO DIS cross section d2sigma/dx dQ2 (GeV^-2, F_L = F_3 = 0) on a (log x, log Q2) grid.

    ``rel_width``/``min_width``: the fitted parameters' bounds are truth +- rel_width |truth|, and
    at least +- min_width for the exponents a and b (an env's [parameters] may override them).
    Normalisations and polynomial coefficients get no floor: a floor would let A change sign.
    ``q2_plot``: the Q2 of ``pdfs``.
    """

    observables = ("x", "Q2")

    def __init__(
        self,
        target: str = "proton",
        fit: Sequence[str] = DEFAULT_FIT,
        rel_width: float = 0.3,
        min_width: float = 0.15,
        sqrt_s: float = SQRT_S,
        mass: float = PROTON_MASS,
        q2_min: float = Q2_MIN,
        w2_min: float = 10.0,
        lambda2: float = 0.4,
        q02: float = 1.0,
        n_x: int = 40,
        n_q2: int = 40,
        n_line: int = 10,
        q2_plot: float = 10.0,
    ) -> None:
        if target not in TARGETS:
            raise ValueError(f"duke_owens target must be one of {', '.join(TARGETS)}; got '{target}'")
        unknown = [n for n in fit if n not in NAMES]
        if unknown or not fit or len(set(fit)) != len(fit):
            bad = unknown or list(fit)
            raise ValueError(f"duke_owens fit: unknown or repeated names {bad}; names look like 'u.a0'")
        if rel_width <= 0 or min_width <= 0 or n_x < 2 or n_q2 < 2:
            raise ValueError("duke_owens needs rel_width, min_width > 0 and n_x, n_q2 >= 2")
        if not (q02 > lambda2 > 0 and q2_min > lambda2):
            raise ValueError("duke_owens needs q2_min, q02 > lambda2 > 0")
        self.target, self.fit = target, tuple(fit)
        self.rel_width, self.min_width = float(rel_width), float(min_width)
        self.idx = np.array([NAMES.index(n) for n in self.fit])
        self.weights = TARGETS[target]
        self.mass2 = float(mass) ** 2
        self.q2_min, self.w2_min = float(q2_min), float(w2_min)
        self.q2_max = float(sqrt_s) ** 2 - self.mass2
        self.x_min = self.q2_min / self.q2_max
        self.lambda2, self.log_q0 = float(lambda2), float(np.log(q02 / lambda2))
        self.q2_plot = float(q2_plot)
        g = Grid2D(
            np.linspace(np.log(self.x_min), 0.0, int(n_x) + 1),
            np.linspace(np.log(self.q2_min), np.log(self.q2_max), int(n_q2) + 1),
            n_line=int(n_line),
            log=(True, True),
            region=self.region,
        )
        g.accept = g.accepted_fraction()
        self.grid = g

    def region(self, x: np.ndarray, q2: np.ndarray) -> np.ndarray:
        """The accepted kinematic region: y <= 1 and W2 >= W2_min (x, Q2 broadcast together)."""
        w2 = self.mass2 + q2 / x - q2
        return (q2 <= self.q2_max * x) & (w2 >= self.w2_min) & (x < 1.0)

    def parameter_space(self) -> ParameterSpace:
        """The fitted subset: truth and bounds (class doc)."""
        t = TRUTH[self.idx]
        exponent = np.array([n.split(".")[1][0] in "ab" for n in self.fit])
        half = np.where(exponent, np.maximum(self.rel_width * np.abs(t), self.min_width), self.rel_width * np.abs(t))
        return ParameterSpace(self.fit, t - half, t + half, t)

    def full(self, params: np.ndarray) -> np.ndarray:
        """Fitted parameters (P, d) -> all 36 numbers (P, 36), the rest at the truth."""
        p = np.atleast_2d(np.asarray(params, dtype=np.float64))
        out = np.repeat(TRUTH[None, :], p.shape[0], axis=0)
        out[:, self.idx] = p
        return out

    def s(self, q2: np.ndarray) -> np.ndarray:
        """The evolution variable s(Q2)."""
        return np.log(np.log(np.asarray(q2) / self.lambda2) / self.log_q0)

    def _pdf(self, coef: np.ndarray, lx: np.ndarray, x: np.ndarray, s: np.ndarray) -> np.ndarray:
        """One flavour's f on the mesh x (nu,) x s (nv,); coef (P, 18) -> (P, nu, nv)."""
        c = coef.reshape(-1, 6, 3)
        k = c[:, :, 0, None] + c[:, :, 1, None] * s + c[:, :, 2, None] * s * s  # (P, 6, nv)
        A, a, b, cc, d, e = (k[:, i, None, :] for i in range(6))
        xx = x[:, None]
        shape = np.exp(a * lx[:, None] + b * np.log1p(-np.minimum(xx, 1.0 - 1e-15)))
        return A * shape * (1.0 + xx * (cc + xx * (d + xx * e)))

    def pdf_values(self, params: np.ndarray, x: np.ndarray, q2: np.ndarray) -> dict[str, np.ndarray]:
        """u and d on the mesh x (nx,) x q2 (nq,): each (P, nx, nq)."""
        full = self.full(params)
        x = np.asarray(x, dtype=np.float64)
        s, lx = self.s(q2), np.log(x)
        return {"u": self._pdf(full[:, :18], lx, x, s), "d": self._pdf(full[:, 18:], lx, x, s)}

    def sigma(self, params: np.ndarray, x: np.ndarray, q2: np.ndarray) -> np.ndarray:
        """d2sigma/dx dQ2 on the mesh x (nx,) x q2 (nq,): (P, nx, nq), zero outside the region."""
        x = np.asarray(x, dtype=np.float64)
        q2 = np.asarray(q2, dtype=np.float64)
        return self._sigma_jac(params, x, q2) / np.multiply.outer(x, q2)

    def _sigma_jac(self, params: np.ndarray, x: np.ndarray, q2: np.ndarray) -> np.ndarray:
        """sigma x Q2 (the density in log x, log Q2), clipped at zero and cut to the region."""
        f = self.pdf_values(params, x, q2)
        wu, wd = self.weights
        X, Q = x[:, None], q2[None, :]
        F2 = X * (wu * f["u"] + wd * f["d"])
        y = Q / (self.q2_max * X)
        K2 = 1.0 + (1.0 - y) ** 2 + 2.0 * X * X * y * y * self.mass2 / Q
        # sigma = 2 pi alpha^2/(x y Q2) * y/Q2 * K2 F2; times the Jacobian x Q2: 2 pi alpha^2 K2 F2 / Q2.
        out = (2.0 * np.pi * ALPHA**2) * K2 / Q * F2
        # A negative cross section is unphysical: parameters that make one give none there.
        return np.where(self.region(X, Q), np.maximum(out, 0.0), 0.0)

    def density_mesh(self, params: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Density in (log x, log Q2) on the mesh u (nu,) x v (nv,): sigma x Q2, (P, nu, nv)."""
        return self._sigma_jac(params, np.exp(np.asarray(u)), np.exp(np.asarray(v)))

    def pdfs(self, params: np.ndarray, x: np.ndarray) -> dict[str, np.ndarray]:
        """u(x) and d(x) at Q2 = q2_plot, each (P, len(x))."""
        f = self.pdf_values(params, x, np.array([self.q2_plot]))
        return {k: v[:, :, 0] for k, v in f.items()}
