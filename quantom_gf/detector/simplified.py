"""The simplified 2x2 smearing detector of SPEC section 1."""

from __future__ import annotations

import numpy as np
from numba import njit

from .base import Detector


@njit(cache=True)
def _smear(events, m00, m11, e):  # pragma: no cover - compiled
    P, N, _ = events.shape
    for p in range(P):
        for n in range(N):
            a = events[p, n, 0]
            b = events[p, n, 1]
            events[p, n, 0] = m00[n] * a + e[n] * b
            events[p, n, 1] = e[n] * a + m11[n] * b


class SimplifiedDetector(Detector):
    """(x1', x2') = M (x1, x2), M = [[N(1, s0), e], [e, N(1, s1)]], e = c1 + c2 (r1 + r2)/2.

    r1, r2 ~ U(r_lo, r_hi). One fresh matrix per event, shared by the whole population.
    """

    def __init__(
        self,
        s0: float = 0.08,
        s1: float = 0.15,
        c1: float = 0.03,
        c2: float = 0.2,
        r_lo: float = -1.0,
        r_hi: float = 0.3,
    ) -> None:
        if s0 < 0 or s1 < 0 or r_hi < r_lo:
            raise ValueError("simplified detector needs s0, s1 >= 0 and r_lo <= r_hi")
        self.s0, self.s1, self.c1, self.c2, self.r_lo, self.r_hi = s0, s1, c1, c2, r_lo, r_hi

    def draw(self, rng: np.random.Generator, n_events: int) -> np.ndarray:
        """Rows m00, m11, e of each event's matrix, shape (3, N)."""
        g = rng.standard_normal((2, n_events))
        r = rng.uniform(self.r_lo, self.r_hi, size=(2, n_events))
        out = np.empty((3, n_events))
        out[0] = 1.0 + self.s0 * g[0]
        out[1] = 1.0 + self.s1 * g[1]
        out[2] = self.c1 + self.c2 * 0.5 * (r[0] + r[1])
        return out

    def apply(self, events: np.ndarray, noise: np.ndarray | None) -> np.ndarray:
        """Multiply each event by its matrix, in place."""
        if events.shape[-1] != 2:
            raise ValueError("the simplified detector smears two observables")
        _smear(events, noise[0], noise[1], noise[2])
        return events

    def matrices(self, noise: np.ndarray, n_events: int) -> np.ndarray:
        """The matrices (N, 2, 2), for checks against SPEC."""
        m = np.empty((n_events, 2, 2))
        m[:, 0, 0], m[:, 1, 1] = noise[0], noise[1]
        m[:, 0, 1] = m[:, 1, 0] = noise[2]
        return m
