"""A reference "full simulation" of a DIS detector in (x, Q2): resolution, acceptance, background.

Not a GEANT model, a parametrised stand-in with the features a surrogate must learn and an
analysis must live with (SPEC 2d), all functions of the true kinematics (x, Q2, y = Q2/(Q2max x)):

- resolution: relative residuals R_x = (x - x')/x and R_Q2 = (Q2 - Q2')/Q2. R_Q2 is Gaussian
  with sigma_Q = q_const + q_y (1 - y) (the scattered electron's energy and angle); R_x shares
  that electron (correlation ``rho``) and degrades at low y, where x = Q2/(y s) inherits
  sigma_y/y ~ x_lowy/y: sigma_x = sqrt(x_const^2 + (x_lowy/y)^2), at most ``x_max``. A
  radiative tail: with probability ``tail_frac`` both are shifted by an exponential (mean
  ``tail_scale`` in R_Q2, 1.5x that in R_x): initial-state radiation lowers the reconstructed
  Q2 and x.
- acceptance: an event is recorded with efficiency eff_max / (1 + (y_min/y)^(1/y_width)):
  low-y events (electron down the beam pipe) are lost; lost events become NaN (no selection
  passes them).
- background: a fraction ``background`` of the generated events is replaced by photoproduction-
  like background at reconstructed level, independent of the parameters: y uniform in
  [0.3, 0.95], Q2 log-uniform in [Q2min, 10 Q2min].

The per-event random numbers are drawn once per seed (shared by the population); the
resolution's two Gaussians are rows 0-1, which the VAE surrogate (vae.py) uses as its latent.
"""

from __future__ import annotations

import numpy as np

from ..kinematics import PROTON_MASS, Q2_MIN, SQRT_S
from .base import Detector

N_ROWS = 10  # g1, g2 | tail u, tail e | accept u | background u, bg y, bg q | spare gaussians n1, n2


class DISDetector(Detector):
    """The reference DIS detector (module doc); events (P, N, 2) are (x, Q2)."""

    def __init__(
        self,
        sqrt_s: float = SQRT_S,
        mass: float = PROTON_MASS,
        q2_min: float = Q2_MIN,
        q_const: float = 0.02,
        q_y: float = 0.03,
        x_const: float = 0.03,
        x_lowy: float = 0.004,
        x_max: float = 0.5,
        rho: float = 0.5,
        tail_frac: float = 0.1,
        tail_scale: float = 0.04,
        eff_max: float = 0.95,
        y_min: float = 0.01,
        y_width: float = 0.5,
        background: float = 0.02,
    ) -> None:
        if not (0 <= background < 1 and 0 <= tail_frac <= 1 and 0 < eff_max <= 1 and -1 < rho < 1):
            raise ValueError("dis2d needs 0 <= background < 1, 0 <= tail_frac <= 1, 0 < eff_max <= 1, |rho| < 1")
        if min(q_const, x_const, x_max, y_min, y_width) <= 0 or min(q_y, x_lowy, tail_scale) < 0:
            raise ValueError("dis2d resolutions, y_min and y_width must be positive")
        self.q2_max = float(sqrt_s) ** 2 - float(mass) ** 2
        self.q2_min = float(q2_min)
        self.q_const, self.q_y, self.x_const, self.x_lowy, self.x_max = q_const, q_y, x_const, x_lowy, x_max
        self.rho, self.tail_frac, self.tail_scale = rho, tail_frac, tail_scale
        self.eff_max, self.y_min, self.y_width, self.background = eff_max, y_min, y_width, background

    def draw(self, rng: np.random.Generator, n_events: int) -> np.ndarray:
        """Per-event random numbers (N_ROWS, N), independent of the parameters."""
        out = np.empty((N_ROWS, n_events))
        out[0:2] = rng.standard_normal((2, n_events))
        out[2] = rng.random(n_events)
        out[3] = rng.standard_exponential(n_events)
        out[4:8] = rng.random((4, n_events))
        out[8:10] = rng.standard_normal((2, n_events))
        return out

    def y(self, x: np.ndarray, q2: np.ndarray) -> np.ndarray:
        """Inelasticity y = Q2/(Q2max x)."""
        return q2 / (self.q2_max * x)

    def efficiency(self, x: np.ndarray, q2: np.ndarray) -> np.ndarray:
        """Probability that an event at true (x, Q2) is recorded."""
        y = np.maximum(self.y(x, q2), 1e-12)
        return self.eff_max / (1.0 + (self.y_min / y) ** (1.0 / self.y_width))

    def residuals(self, x: np.ndarray, q2: np.ndarray, noise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Relative residuals (R_x, R_Q2) of events at true (x, Q2) (broadcast with the noise rows)."""
        y = self.y(x, q2)
        sq = self.q_const + self.q_y * np.clip(1.0 - y, 0.0, 1.0)
        sx = np.minimum(np.sqrt(self.x_const**2 + (self.x_lowy / np.maximum(y, 1e-12)) ** 2), self.x_max)
        g1, g2 = noise[0], noise[1]
        rq = sq * g2
        rx = sx * (self.rho * g2 + np.sqrt(1.0 - self.rho**2) * g1)
        tail = np.where(noise[2] < self.tail_frac, self.tail_scale * noise[3], 0.0)
        return rx + 1.5 * tail, rq + tail

    def background_events(self, noise: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Which events are background (N,) and their reconstructed (x, Q2)."""
        is_bg = noise[5] < self.background
        y = 0.3 + 0.65 * noise[6]
        q2 = self.q2_min * 10.0 ** noise[7]
        return is_bg, q2 / (self.q2_max * y), q2

    def apply(self, events: np.ndarray, noise: np.ndarray | None) -> np.ndarray:
        """Reconstructed events (P, N, 2), in place: resolution, acceptance losses (NaN), background.

        Member by member, and the resolution only for the events that are recorded (about half
        of DIS events are lost at low y): that is what keeps the surrogate's network cheap, and a
        member's result never depends on how the population is chunked.
        """
        if events.shape[-1] != 2:
            raise ValueError("the DIS detector reconstructs (x, Q2) pairs")
        is_bg, xb, qb = self.background_events(noise)
        for p in range(events.shape[0]):
            x, q2 = events[p, :, 0], events[p, :, 1]
            with np.errstate(invalid="ignore", divide="ignore"):
                idx = np.flatnonzero((noise[4] < self.efficiency(x, q2)) & ~is_bg)  # NaN: never recorded
            xk, qk = x[idx], q2[idx]
            rx, rq = self.residuals(xk, qk, noise[:, idx])
            events[p] = np.nan
            events[p, idx, 0] = xk * (1.0 - rx)
            events[p, idx, 1] = qk * (1.0 - rq)
        events[:, is_bg, 0] = xb[is_bg]
        events[:, is_bg, 1] = qb[is_bg]
        return events
