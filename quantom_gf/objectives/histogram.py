"""Histogram kernels shared by the binned objectives.

numba because numpy's histogramdd per member costs a sort-like pass per call; this is one
pass over the events with the bin search in registers.
"""

from __future__ import annotations

import numpy as np
from numba import njit


def bin_lut(inner: np.ndarray) -> tuple[np.ndarray, float, float]:
    """A uniform lookup table x -> bin over the span of the interior edges.

    Its cells are at most half the smallest gap between edges, so the table is off by at
    most one bin and one compare each way makes the lookup exact.
    """
    lo, hi = float(inner[0]), float(inner[-1])
    gaps = np.diff(inner)
    if np.any(gaps <= 0):
        raise ValueError("histogram edges must be strictly increasing")
    size = 1 if hi <= lo else int(min(2**22, max(1024, np.ceil(2.0 * (hi - lo) / gaps.min()))))
    span = max(hi - lo, 1e-300)
    starts = lo + span * np.arange(size) / size
    return np.searchsorted(inner, starts, side="right").astype(np.int32), lo, size / span


@njit(cache=True)
def _lut_bin(inner, lut, lo, scale, x):  # pragma: no cover - compiled
    # Number of interior edges <= x (bins open at both ends: events are already selected).
    # Branch-free corrections and unsigned indices: this runs once per event and member.
    # NaN (events of an unnormalisable member, masked out) must land in the table too:
    # min/max pass NaN through and np.uint32(NaN) indexes out of bounds (segfault).
    t = (x - lo) * scale
    t = t if t > 0.0 else 0.0
    t = t if t < lut.size - 1.0 else lut.size - 1.0
    b = lut[np.uint32(t)]
    b -= (inner[np.uint32(max(b - 1, 0))] > x) & (b > 0)
    b += (inner[np.uint32(min(b, inner.size - 1))] <= x) & (b < inner.size)
    return b


@njit(cache=True)
def _hist2d(events, mask, inner_x, lut_x, lo_x, sc_x, inner_y, lut_y, lo_y, sc_y, out):  # pragma: no cover
    P, N, _ = events.shape
    ny = inner_y.size + 1
    h = np.zeros(out.shape[1], np.int64)
    for p in range(P):
        h[:] = 0
        ev = events[p]
        mk = mask[p]
        for n in range(N):
            i = _lut_bin(inner_x, lut_x, lo_x, sc_x, ev[n, 0])
            j = _lut_bin(inner_y, lut_y, lo_y, sc_y, ev[n, 1])
            h[np.uint32(i * ny + j)] += mk[n]
        out[p] = h


@njit(cache=True)
def _hist1d_proj(events, mask, w, lo, hi, nb, out):  # pragma: no cover - compiled
    # Histogram of the projection events @ w on nb uniform bins of [lo, hi] (ends clamped).
    P, N, O = events.shape
    scale = nb / (hi - lo)
    for p in range(P):
        for n in range(N):
            if mask[p, n]:
                t = 0.0
                for o in range(O):
                    t += events[p, n, o] * w[o]
                k = int((t - lo) * scale)
                if k < 0:
                    k = 0
                elif k >= nb:
                    k = nb - 1
                out[p, k] += 1.0


def hist2d(events: np.ndarray, mask: np.ndarray, inner_x: np.ndarray, inner_y: np.ndarray) -> np.ndarray:
    """Counts (P, nx*ny) on bins split by the interior edges; open at both ends."""
    out = np.zeros((events.shape[0], (inner_x.size + 1) * (inner_y.size + 1)))
    _hist2d(events, mask, inner_x, *bin_lut(inner_x), inner_y, *bin_lut(inner_y), out)
    return out


def hist_projection(events: np.ndarray, mask: np.ndarray, w: np.ndarray, lo: float, hi: float, nb: int) -> np.ndarray:
    """Counts (P, nb) of the projection events @ w on uniform bins of [lo, hi]."""
    out = np.zeros((events.shape[0], nb))
    _hist1d_proj(events, mask, np.asarray(w, dtype=np.float64), float(lo), float(hi), int(nb), out)
    return out
