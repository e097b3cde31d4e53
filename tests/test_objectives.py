"""Objectives: the two-sample deviance, finiteness over the whole cube, and basic behaviour."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from quantom_gf.objectives import OBJECTIVES, WORST_SCORE, two_sample_deviance

OBJECTIVE_NAMES = sorted(OBJECTIVES)


def plain_poisson_deviance(n: np.ndarray, nu: np.ndarray) -> np.ndarray:
    """2 sum[n log(n/nu) - n + nu] (n log n = 0 at n = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(n > 0, n * np.log(n / nu), 0.0)
    return 2.0 * np.sum(t - n + nu, axis=-1)


# --- two_sample_deviance ------------------------------------------------------------------------


def test_deviance_limit_synthetic_much_larger():
    """r -> 0 with r m = nu fixed: the synthetic sample is exact, the plain Poisson deviance."""
    rng = np.random.default_rng(0)
    nu = rng.uniform(1.0, 50.0, 30)
    n = rng.poisson(nu).astype(float)
    n[:3] = 0.0  # empty data bins count too
    for r in (1e-5, 1e-7):
        m = (nu / r)[None, :]
        np.testing.assert_allclose(two_sample_deviance(n, m, r), plain_poisson_deviance(n, nu), rtol=1e-4)
    # ... and it is really a limit: at r = 1 the synthetic fluctuation makes it flatter.
    assert two_sample_deviance(n, nu[None, :], 1.0)[0] < plain_poisson_deviance(n, nu)


def test_deviance_non_negative():
    rng = np.random.default_rng(1)
    mu = rng.uniform(0.0, 20.0, (200, 40))
    for r in (0.1, 1.0, 7.0):
        n = rng.poisson(r * mu[0]).astype(float)
        m = rng.poisson(mu).astype(float)
        d = two_sample_deviance(n, m, r)
        assert d.shape == (200,)
        assert np.all(np.isfinite(d))
        assert np.all(d >= -1e-9)


def test_deviance_zero_when_counts_agree():
    rng = np.random.default_rng(2)
    m = rng.uniform(0.5, 100.0, (3, 25))
    m[:, 0] = 0.0
    for r in (0.3, 1.0, 2.5):
        d = two_sample_deviance(r * m[1], m[1:2], r)
        np.testing.assert_allclose(d, 0.0, atol=1e-10)
    assert two_sample_deviance(0.5 * m[1], m, 0.5)[0] > 1.0  # ... and not for other rows


def test_deviance_per_member_ratio():
    rng = np.random.default_rng(3)
    n = rng.poisson(20.0, 10).astype(float)
    m = rng.poisson(15.0, (4, 10)).astype(float)
    r = np.array([0.5, 1.0, 1.5, 2.0])
    d = two_sample_deviance(n, m, r)
    for i in range(4):
        np.testing.assert_allclose(d[i], two_sample_deviance(n, m[i : i + 1], float(r[i]))[0], rtol=1e-14)


@pytest.mark.parametrize("r", [1.0, 0.25])
def test_deviance_chi2_calibration(r):
    """At the true mu, the deviance is chi2 with one degree of freedom per bin."""
    rng = np.random.default_rng(4)
    K, T = 50, 4000
    mu = rng.uniform(50.0, 500.0, K)
    n = rng.poisson(r * mu, (T, K)).astype(float)
    m = rng.poisson(mu, (T, K)).astype(float)
    d = np.array([two_sample_deviance(n[t], m[t : t + 1], r)[0] for t in range(T)])
    assert abs(d.mean() - K) < 0.05 * K
    assert abs(d.var() / (2 * K) - 1.0) < 0.2


# --- every objective over the whole cube --------------------------------------------------------


def cube_points(n_random: int = 1000) -> np.ndarray:
    """Random points, all 64 corners, and unnormalisable points (N_u = N_d = 0)."""
    rng = np.random.default_rng(5)
    corners = np.array(list(itertools.product([0.0, 1.0], repeat=6)))
    zero = rng.random((20, 6))
    zero[:, [0, 3]] = 0.0
    return np.concatenate([rng.random((n_random, 6)), corners, zero])


@pytest.mark.parametrize("env", ["proxy1d", "proxy1d-detector"])
@pytest.mark.parametrize("name", OBJECTIVE_NAMES)
def test_objective_finite_over_cube(make_problem, env, name):
    prob = make_problem(env, n_sim=2000, n_data=2000, objective=name)
    Z = cube_points()
    sim = prob.simulate(Z, seed=3)
    assert not sim.valid[-20:].any() and sim.valid[:-20].sum() > 1000
    raw = prob.objective.score(sim)  # before the WORST_SCORE guard: the objective itself is finite
    assert raw.shape == (Z.shape[0],)
    assert np.all(np.isfinite(raw)), Z[~np.isfinite(raw)]
    scores = prob.evaluate(Z, seed=3)
    np.testing.assert_array_equal(scores, raw)
    truth = prob.evaluate(prob.space.truth_unit, seed=3)[0]
    assert np.all(scores[-20:] > truth)  # unnormalisable: worse than the truth


@pytest.mark.parametrize("name", OBJECTIVE_NAMES)
def test_objective_prefers_truth_to_a_far_point(make_problem, name):
    prob = make_problem("proxy1d-detector", n_sim=20_000, n_data=20_000, objective=name)
    far = prob.space.truth_unit + np.array([0.2, -0.2, 0.1, -0.2, 0.2, -0.1])
    s = prob.evaluate(np.stack([prob.space.truth_unit, far]), seed=8)
    assert s[0] < s[1]


def test_guard_replaces_non_finite_scores(make_problem):
    prob = make_problem("proxy1d", n_sim=500, n_data=500)
    obj = prob.objective
    sim = prob.simulate(np.full((3, 6), 0.5), seed=1)
    obj.score = lambda sim: np.array([np.nan, np.inf, 2.0 * WORST_SCORE])
    np.testing.assert_array_equal(obj(sim), [WORST_SCORE] * 3)


def test_binned_likelihood_dof_and_bins(make_problem):
    prob = make_problem("proxy1d", n_sim=2000, n_data=20_000)
    obj = prob.objective
    assert obj.n_bins == 400
    assert obj.dof == 402  # extended: bins + two totals
    # Quantile bins: the data histogram's marginals are equally populated.
    n = obj.n.reshape(20, 20)
    for marg in (n.sum(axis=0), n.sum(axis=1)):
        assert marg.sum() == prob.data.n_events
        assert marg.max() - marg.min() <= 0.02 * marg.mean()


def test_binned_histogram_counts_selected_events(make_problem):
    from quantom_gf.objectives.histogram import hist2d

    prob = make_problem("proxy1d-detector", n_sim=3000)
    sim = prob.simulate(np.random.default_rng(6).random((3, 6)), seed=2)
    inner = prob.objective.inner
    h = hist2d(sim.events, sim.mask, *inner)
    for p in range(3):
        ev = sim.events[p][sim.mask[p]]
        i = np.searchsorted(inner[0], ev[:, 0], side="right")
        j = np.searchsorted(inner[1], ev[:, 1], side="right")
        ref = np.bincount(i * (inner[1].size + 1) + j, minlength=h.shape[1])
        np.testing.assert_array_equal(h[p], ref)


@pytest.mark.parametrize("name", OBJECTIVE_NAMES)
def test_data_without_n_generated_profiles_the_yield(make_problem, name):
    """Data that do not know how many events were generated: the yield is profiled (dof - 1)."""
    from dataclasses import replace

    from quantom_gf.build import build_problem

    gen = make_problem("proxy1d-detector", n_sim=500, n_data=20_000).data
    data = replace(gen, n_generated=None)
    prob = build_problem(
        "proxy1d-detector", data=data, overrides={"simulation": {"n_events": 20_000}, "objective": {"name": name}}
    )
    if name == "binned_likelihood":
        assert prob.objective.dof == 401
    far = prob.space.truth_unit + np.array([0.2, -0.2, 0.1, -0.2, 0.2, -0.1])
    Z = np.stack([prob.space.truth_unit, far, np.zeros(6), np.ones(6)])
    raw = prob.objective.score(prob.simulate(Z, seed=4))
    assert np.all(np.isfinite(raw))
    assert raw[0] < raw[1] and raw[0] < raw[2]
