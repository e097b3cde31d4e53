"""Inverse-CDF sampling (SPEC 1): sampled x follows sigma / total."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TRUTH
from scipy import integrate, stats

from quantom_gf import rng as rngmod
from quantom_gf.sampling import InverseCDFSampler
from quantom_gf.sampling.inverse_cdf import grid_cdf

N_KS = 100_000
SEED = 12345
# The truth and two points far from it (physical parameters), including a = -1 (steep at x_min).
POINTS = np.array([TRUTH, [1.0, 0.5, 1.0, 2.5, -0.8, 0.5], [3.0, -1.0, 5.0, 0.2, 1.0, 0.0]])


@pytest.fixture(scope="module")
def drawn(theory):
    """Events (3, N, 2) at POINTS from one fixed seed, with the densities they came from."""
    sampler = InverseCDFSampler()
    dens = theory.densities(POINTS)
    u = sampler.draw(rngmod.stream(SEED, rngmod.SIM_SAMPLER), N_KS, 2)
    events, valid = sampler.sample(theory.edges, dens, u)
    assert valid.all()
    return dens, u, events


@pytest.mark.parametrize("point", range(len(POINTS)))
@pytest.mark.parametrize("obs", [0, 1])
def test_ks_against_grid_cdf(theory, drawn, point, obs):
    dens, _, events = drawn
    cdf = grid_cdf(theory.edges, dens[point, obs])
    x = events[point, :, obs]
    res = stats.kstest(x, lambda t: np.interp(t, theory.edges, cdf))
    assert res.pvalue > 0.01, (point, obs, res)


def _continuous_cdf(theory, params, obs, nodes):
    """CDF of sigma_obs on [x_min, x_max] at ``nodes`` by adaptive quadrature of u and d."""
    Nu, au, bu, Nd, ad, bd = params
    cu, cd = (4.0, 1.0) if obs == 0 else (1.0, 4.0)

    def sigma(x):
        return cu * Nu * x**au * (1 - x) ** bu + cd * Nd * x**ad * (1 - x) ** bd

    pieces = [integrate.quad(sigma, a, b)[0] for a, b in zip(nodes[:-1], nodes[1:])]
    F = np.concatenate([[0.0], np.cumsum(pieces)])
    return F / F[-1]


@pytest.mark.parametrize("point", range(len(POINTS)))
@pytest.mark.parametrize("obs", [0, 1])
def test_close_to_continuous_cdf(theory, drawn, point, obs):
    """Looser check against the continuous sigma (not the piecewise-constant grid density).

    The grid CDF differs from the continuous one by at most ~1e-3 on this grid, so the
    empirical CDF must lie within the 99.9% KS band (1.95/sqrt(N)) plus 1e-3.
    """
    _, _, events = drawn
    nodes = np.linspace(theory.x_min, theory.x_max, 201)
    F = _continuous_cdf(theory, POINTS[point], obs, nodes)
    x = np.sort(events[point, :, obs])
    emp = np.searchsorted(x, nodes, side="right") / x.size
    assert np.max(np.abs(emp - F)) < 1.95 / np.sqrt(N_KS) + 1e-3


def test_inverse_is_linear_interpolation_of_grid_cdf(theory, drawn):
    """Each x is the exact inverse of the grid CDF (linear between edges) at its uniform."""
    dens, u, events = drawn
    for p in range(len(POINTS)):
        for o in range(2):
            cdf = grid_cdf(theory.edges, dens[p, o])
            expected = np.interp(u[:, o], cdf, theory.edges)
            np.testing.assert_allclose(events[p, :, o], expected, rtol=0, atol=1e-12)


def test_events_in_grid_range(theory, drawn):
    _, _, events = drawn
    assert events.min() >= theory.x_min
    assert events.max() <= theory.x_max


def test_common_random_numbers_make_x_continuous(theory):
    """Same uniforms, nearby parameters -> nearby events (the smooth objective of SPEC 1)."""
    sampler = InverseCDFSampler()
    u = sampler.draw(rngmod.stream(3, rngmod.SIM_SAMPLER), 5000, 2)
    p = np.stack([TRUTH, TRUTH + 1e-6])
    ev, _ = sampler.sample(theory.edges, theory.densities(p), u)
    assert 0 < np.max(np.abs(ev[0] - ev[1])) < 1e-4


def test_unnormalisable_density_is_flagged(theory):
    sampler = InverseCDFSampler()
    params = np.stack([TRUTH, [0.0, 0.0, 1.0, 0.0, 0.0, 1.0]])
    u = sampler.draw(rngmod.stream(4, rngmod.SIM_SAMPLER), 100, 2)
    ev, valid = sampler.sample(theory.edges, theory.densities(params), u)
    np.testing.assert_array_equal(valid, [True, False])
    assert np.all(np.isnan(ev[1]))
    assert np.all(np.isfinite(ev[0]))
    dens = theory.densities(params[:1]).copy()
    dens[0, 1, 5] = np.nan
    _, valid = sampler.sample(theory.edges, dens, u)
    assert not valid[0]


def test_split_population_is_bit_identical(theory):
    sampler = InverseCDFSampler()
    params = theory.parameter_space().to_physical(np.random.default_rng(5).random((9, 6)))
    dens = theory.densities(params)
    u = sampler.draw(rngmod.stream(5, rngmod.SIM_SAMPLER), 3000, 2)
    whole, _ = sampler.sample(theory.edges, dens, u)
    parts = np.concatenate([sampler.sample(theory.edges, dens[i : i + 2], u)[0] for i in range(0, 9, 2)])
    assert np.array_equal(whole, parts)
