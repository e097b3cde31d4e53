"""Batched inverse-CDF sampling on a 1D grid (SPEC 1), with common random numbers.

numba because the per-event lookup is a data-dependent walk that numpy can only do with
np.interp per member (about 5x slower and a full pass over memory per call).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .base import Sampler


@njit(cache=True)
def _inverse_cdf(edges, dens, u, out, valid):  # pragma: no cover - compiled
    P, O, G = dens.shape
    N = u.shape[0]
    K = 8 * G  # guide-table cells in u; fine enough that the walk below rarely takes a step
    F = np.empty(G + 1)
    slope = np.empty(G)
    guide = np.empty(K + 1, np.int32)
    for p in range(P):
        for o in range(O):
            acc = 0.0
            F[0] = 0.0
            for i in range(G):
                acc += dens[p, o, i] * (edges[i + 1] - edges[i])
                F[i + 1] = acc
            if not (acc > 0.0 and acc < np.inf):
                valid[p] = False
                out[p, :, o] = np.nan
                continue
            inv = 1.0 / acc
            for i in range(1, G):
                F[i] *= inv
            F[G] = 1.0
            for i in range(G):
                dF = F[i + 1] - F[i]
                slope[i] = (edges[i + 1] - edges[i]) / dF if dF > 0.0 else 0.0
            i = 0
            for k in range(K + 1):
                t = k / K
                while i < G - 1 and F[i + 1] <= t:
                    i += 1
                guide[k] = i
            op = out[p]
            for n in range(N):
                t = u[n, o]
                # Unsigned indices skip numba's negative-index fix-up in this hot loop;
                # F[G] = 1 > t, so the first step never runs past the table.
                i = guide[np.uint32(t * K)]
                if F[np.uint32(i + 1)] <= t:
                    i += 1
                    while i < G - 1 and F[np.uint32(i + 1)] <= t:
                        i += 1
                op[n, o] = edges[np.uint32(i)] + (t - F[np.uint32(i)]) * slope[np.uint32(i)]


class InverseCDFSampler(Sampler):
    """Inverse CDF of the piecewise-constant (left Riemann) density, linear between edges.

    Uniforms u (N, n_obs) are shared by the whole population; observable o of event n is
    drawn from u[n, o] (x1 and x2 independent, paired by index as upstream does).
    """

    n_random = None  # one uniform per event and observable

    def draw(self, rng: np.random.Generator, n_events: int, n_obs: int) -> np.ndarray:
        """Uniforms in [0, 1), shape (n_events, n_obs)."""
        return rng.random((n_events, n_obs))

    def sample(self, edges: np.ndarray, dens: np.ndarray, noise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Densities (P, n_obs, G) on ``edges`` -> events (P, N, n_obs) and valid (P,)."""
        dens = np.ascontiguousarray(dens, dtype=np.float64)
        P, O, _ = dens.shape
        out = np.empty((P, noise.shape[0], O))
        valid = np.ones(P, dtype=np.bool_)
        _inverse_cdf(np.ascontiguousarray(edges, dtype=np.float64), dens, noise, out, valid)
        return out, valid


def grid_cdf(edges: np.ndarray, dens: np.ndarray) -> np.ndarray:
    """The CDF at the edges (..., G+1) of the density the sampler draws from (for tests, plots)."""
    mass = np.cumsum(dens * np.diff(edges), axis=-1)
    cdf = np.concatenate([np.zeros(mass.shape[:-1] + (1,)), mass], axis=-1)
    return cdf / cdf[..., -1:]
