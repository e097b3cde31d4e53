"""Event selection: the rectangular cut of SPEC section 1 (a hard cut that drops events)."""

from __future__ import annotations

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
                if not (x >= lo and x <= hi):
                    ok = False
            out[p, n] = ok


class RectangularSelection:
    """Keeps events with every coordinate in [lower, upper] (inclusive)."""

    def __init__(self, lower: float = 0.0, upper: float = 1.0) -> None:
        if not upper > lower:
            raise ValueError("selection needs lower < upper")
        self.lower, self.upper = float(lower), float(upper)

    def mask(self, events: np.ndarray) -> np.ndarray:
        """Boolean mask (P, N): True where the event passes; NaN events never pass."""
        out = np.empty(events.shape[:2], dtype=np.bool_)
        _inside(events, self.lower, self.upper, out)
        return out
