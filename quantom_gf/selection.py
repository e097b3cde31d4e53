"""Event selection: the rectangular cut of SPEC section 1 (a hard cut that drops events).

Bounds are one number for every coordinate (the unit-square proxies) or one per observable
(events in (x, Q2) need different ranges).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit


@njit(cache=True)
def _inside(events, lo, hi, out):  # pragma: no cover - compiled
    # One pass without temporaries: numpy's version costs three (P, N, n_obs) arrays.
    P, N, O = events.shape
    for p in range(P):
        for n in range(N):
            ok = True
            for o in range(O):
                x = events[p, n, o]
                ok &= (x >= lo[o]) & (x <= hi[o])  # branch-free: NaN compares False
            out[p, n] = ok


class RectangularSelection:
    """Keeps events with coordinate o in [lower[o], upper[o]] (inclusive); scalars apply to all."""

    def __init__(self, lower: float | Sequence[float] = 0.0, upper: float | Sequence[float] = 1.0) -> None:
        lo, hi = np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
        if lo.ndim > 1 or hi.ndim > 1 or (lo.ndim == hi.ndim == 1 and lo.shape != hi.shape):
            raise ValueError("selection needs lower and upper as numbers or lists of equal length")
        if not np.all(hi > lo):
            raise ValueError("selection needs lower < upper")
        self.lower = float(lo) if lo.ndim == 0 else lo.tolist()
        self.upper = float(hi) if hi.ndim == 0 else hi.tolist()
        self._lo, self._hi = np.atleast_1d(lo), np.atleast_1d(hi)

    def mask(self, events: np.ndarray) -> np.ndarray:
        """Boolean mask (P, N): True where the event passes; NaN events never pass."""
        n_obs = events.shape[-1]
        if self._lo.size not in (1, n_obs) or self._hi.size not in (1, n_obs):
            raise ValueError(f"selection has bounds for {max(self._lo.size, self._hi.size)} observables; "
                             f"events have {n_obs}")  # fmt: skip
        lo = np.ascontiguousarray(np.broadcast_to(self._lo, (n_obs,)))
        hi = np.ascontiguousarray(np.broadcast_to(self._hi, (n_obs,)))
        out = np.empty(events.shape[:2], dtype=np.bool_)
        _inside(np.ascontiguousarray(events), lo, hi, out)
        return out

    def to_dict(self) -> dict:
        """Resolved settings for the run's configuration."""
        return {"lower": self.lower, "upper": self.upper}
