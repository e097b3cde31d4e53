"""A box cut with its own bounds per observable (events in (x, Q2) need different ranges).

RectangularSelection (selection.py) uses one [lower, upper] for every coordinate, which suits
the unit-square proxies; an env whose ``[selection]`` gives lists gets this class instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit


@njit(cache=True)
def _inside_box(events, lo, hi, out):  # pragma: no cover - compiled
    P, N, O = events.shape
    for p in range(P):
        for n in range(N):
            ok = True
            for o in range(O):
                x = events[p, n, o]
                if not (x >= lo[o] and x <= hi[o]):
                    ok = False
            out[p, n] = ok


class BoxSelection:
    """Keeps events with coordinate o in [lower[o], upper[o]] (inclusive) for every o."""

    def __init__(self, lower: Sequence[float], upper: Sequence[float]) -> None:
        lo, hi = np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
        if lo.ndim != 1 or lo.shape != hi.shape or not np.all(hi > lo):
            raise ValueError("selection needs lower and upper lists of equal length with lower < upper")
        self.lower, self.upper = lo, hi

    def mask(self, events: np.ndarray) -> np.ndarray:
        """Boolean mask (P, N): True where the event passes; NaN events never pass."""
        if events.shape[-1] != self.lower.size:
            raise ValueError(f"selection has bounds for {self.lower.size} observables; events have {events.shape[-1]}")
        out = np.empty(events.shape[:2], dtype=np.bool_)
        _inside_box(np.ascontiguousarray(events), self.lower, self.upper, out)
        return out

    def to_dict(self) -> dict:
        """Resolved settings for the run's configuration."""
        return {"lower": self.lower.tolist(), "upper": self.upper.tolist()}
