"""The 1D proxy theory and the parameter space against SPEC section 1."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TRUTH, TRUTH_UNIT
from scipy.special import beta

from quantom_gf.errors import ConfigError
from quantom_gf.params import ParameterSpace


def test_truth_and_bounds(space):
    assert space.names == ("N_u", "a_u", "b_u", "N_d", "a_d", "b_d")
    np.testing.assert_array_equal(space.lower, [0, -1, 0, 0, -1, 0])
    np.testing.assert_array_equal(space.upper, [3, 1, 5, 3, 1, 5])
    np.testing.assert_allclose(space.truth, TRUTH, rtol=0, atol=1e-12)
    # N_u = 2/B(0.5, 4), N_d = 1/B(0.5, 4) (upstream normalises d with u's exponents).
    np.testing.assert_allclose(space.truth[[0, 3]], [2 / beta(0.5, 4), 1 / beta(0.5, 4)], rtol=1e-12)


def test_truth_in_unit_cube(space):
    np.testing.assert_allclose(space.truth_unit, TRUTH_UNIT, rtol=0, atol=1e-8)


def test_total_cross_sections_at_truth(theory, space):
    totals = theory.totals(theory.densities(space.truth[None]))
    assert totals.shape == (1, 2)
    np.testing.assert_allclose(totals[0], [3.2786, 1.8790], rtol=0, atol=1e-3)


def test_grid_is_spec_grid(theory):
    dx = (0.99999 - 0.1) / 1000
    assert theory.x.size == 1000
    assert theory.x[0] == 0.1
    np.testing.assert_allclose(np.diff(theory.edges), dx, rtol=1e-12)
    np.testing.assert_allclose(theory.edges[-1], 0.99999, rtol=0, atol=1e-12)


def test_totals_are_left_riemann_sums(theory, space):
    dens = theory.densities(space.truth[None])
    dx = (0.99999 - 0.1) / 1000
    np.testing.assert_allclose(theory.totals(dens)[0], dens[0].sum(axis=-1) * dx, rtol=1e-12)


def test_round_trip_unit_physical(space):
    rng = np.random.default_rng(0)
    z = rng.random((200, 6))
    np.testing.assert_allclose(space.to_unit(space.to_physical(z)), z, rtol=0, atol=1e-14)
    p = space.lower + rng.random((200, 6)) * space.width
    np.testing.assert_allclose(space.to_physical(space.to_unit(p)), p, rtol=0, atol=1e-13)
    np.testing.assert_allclose(space.to_physical(np.zeros(6)), space.lower)
    np.testing.assert_allclose(space.to_physical(np.ones(6)), space.upper)


def test_cross_sections_are_built_from_u_and_d(theory):
    rng = np.random.default_rng(1)
    params = theory.parameter_space().to_physical(rng.random((5, 6)))
    dens = theory.densities(params)
    assert dens.shape == (5, 2, 1000)
    pdf = theory.pdfs(params, theory.x)
    u, d = pdf["u"], pdf["d"]
    np.testing.assert_allclose(dens[:, 0], 4 * u + d, rtol=1e-13)
    np.testing.assert_allclose(dens[:, 1], 4 * d + u, rtol=1e-13)
    x = theory.x
    p = params[2]
    np.testing.assert_allclose(u[2], p[0] * x ** p[1] * (1 - x) ** p[2], rtol=1e-12)
    np.testing.assert_allclose(d[2], p[3] * x ** p[4] * (1 - x) ** p[5], rtol=1e-12)
    assert np.all(dens >= 0)


def test_population_rows_are_independent(theory):
    params = theory.parameter_space().to_physical(np.random.default_rng(2).random((7, 6)))
    whole = theory.densities(params)
    rows = np.concatenate([theory.densities(params[i : i + 1]) for i in range(7)])
    assert np.array_equal(whole, rows)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"names": ["a", "b"], "lower": [0], "upper": [1, 2]},
        {"names": ["a"], "lower": [1], "upper": [1]},
        {"names": ["a"], "lower": [0], "upper": [np.inf]},
        {"names": ["a"], "lower": [0], "upper": [1], "truth": [np.nan]},
    ],
)
def test_parameter_space_rejects_bad_bounds(kwargs):
    with pytest.raises(ConfigError, match="parameters"):
        ParameterSpace(**kwargs)
