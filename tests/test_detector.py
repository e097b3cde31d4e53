"""The simplified 2x2 smearing detector (SPEC 1) and the identity ("none")."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from quantom_gf import rng as rngmod
from quantom_gf.detector import DETECTORS, IdentityDetector, SimplifiedDetector

N = 200_000


@pytest.fixture(scope="module")
def matrices():
    det = SimplifiedDetector()
    noise = det.draw(rngmod.stream(7, rngmod.SIM_DETECTOR), N)
    return noise, det.matrices(noise, N)


def test_diagonal_entries(matrices):
    _, m = matrices
    for i, s in ((0, 0.08), (1, 0.15)):
        d = m[:, i, i]
        assert abs(d.mean() - 1.0) < 5 * s / np.sqrt(N)
        assert abs(d.std() - s) < 5 * s / np.sqrt(2 * N)
        assert stats.kstest(d, stats.norm(1.0, s).cdf).pvalue > 0.001


def test_off_diagonal_entries(matrices):
    _, m = matrices
    e = m[:, 0, 1]
    assert np.array_equal(e, m[:, 1, 0])
    assert e.min() >= -0.17 - 1e-12 and e.max() <= 0.09 + 1e-12
    assert e.min() < -0.16 and e.max() > 0.08  # the whole range is used
    assert abs(e.mean() - (-0.04)) < 1e-3  # 0.03 + 0.2 * (-0.35)
    # e = c1 + c2 (r1 + r2)/2 with r ~ U(-1, 0.3): a triangular distribution on [-0.17, 0.09].
    tri = stats.triang(c=0.5, loc=-0.17, scale=0.26)
    assert stats.kstest(e, tri.cdf).pvalue > 0.001
    # Not correlated with the diagonal.
    assert abs(np.corrcoef(e, m[:, 0, 0])[0, 1]) < 0.02


def test_apply_uses_one_matrix_per_event_shared_by_the_population(matrices):
    noise, m = matrices
    n = 1000
    rng = np.random.default_rng(0)
    events = rng.random((3, n, 2))
    expected = np.einsum("nij,pnj->pni", m[:n], events)
    out = SimplifiedDetector().apply(events.copy(), noise[:, :n])
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-15)
    # Unit vectors read the matrix back: the off-diagonal number is the same in both places.
    unit = np.zeros((2, n, 2))
    unit[0, :, 0] = 1.0
    unit[1, :, 1] = 1.0
    out = SimplifiedDetector().apply(unit, noise[:, :n])
    np.testing.assert_array_equal(out[0, :, 0], m[:n, 0, 0])
    np.testing.assert_array_equal(out[1, :, 1], m[:n, 1, 1])
    np.testing.assert_array_equal(out[0, :, 1], out[1, :, 0])


def test_identity_detector_leaves_events_unchanged():
    det = DETECTORS["none"]()
    assert isinstance(det, IdentityDetector)
    events = np.random.default_rng(1).random((2, 50, 2))
    before = events.copy()
    assert det.draw(rngmod.stream(1, rngmod.SIM_DETECTOR), 50) is None
    out = det.apply(events, None)
    assert np.array_equal(out, before)
    np.testing.assert_array_equal(det.matrices(None, 4), np.broadcast_to(np.eye(2), (4, 2, 2)))


def test_detector_off_in_pipeline_is_the_sampler_output(make_problem):
    """env proxy1d (detector none): simulated events are exactly the sampler's."""
    prob = make_problem("proxy1d", n_sim=3000)
    exp = prob.experiment
    Z = np.random.default_rng(2).random((4, 6))
    sim = prob.simulate(Z, seed=11)
    u, d = exp.noise(11)
    assert d is None
    raw, _ = exp.sampler.sample(exp.theory.edges, exp.theory.densities(prob.space.to_physical(Z)), u)
    assert np.array_equal(sim.events, raw)


def test_detector_on_in_pipeline_is_matrix_times_true_events(make_problem):
    off = make_problem("proxy1d", n_sim=3000)
    on = make_problem("proxy1d-detector", n_sim=3000)
    assert isinstance(on.experiment.detector, SimplifiedDetector)
    Z = np.random.default_rng(3).random((4, 6))
    true_events = off.simulate(Z, seed=5).events
    sim = on.simulate(Z, seed=5)
    noise = on.experiment.noise(5)[1]
    m = on.experiment.detector.matrices(noise, 3000)
    np.testing.assert_allclose(sim.events, np.einsum("nij,pnj->pni", m, true_events), rtol=0, atol=1e-15)
    # Smearing moves some events out of [0, 1]: the selection drops them.
    assert 0.5 < sim.mask.mean() < 1.0
    inside = np.all((sim.events >= 0) & (sim.events <= 1), axis=-1)
    np.testing.assert_array_equal(sim.mask, inside)


def test_measured_and_simulated_streams_differ(make_problem):
    exp = make_problem("proxy1d-detector", n_sim=1000).experiment
    u_sim, d_sim = exp.noise(9)
    u_dat, d_dat = exp.noise(9, measured=True)
    assert not np.array_equal(u_sim, u_dat)
    assert not np.array_equal(d_sim, d_dat)


def test_bad_settings_rejected():
    with pytest.raises(ValueError):
        SimplifiedDetector(s0=-0.1)
    with pytest.raises(ValueError):
        SimplifiedDetector(r_lo=1.0, r_hi=0.0)
    with pytest.raises(ValueError):
        SimplifiedDetector().apply(np.zeros((1, 3, 3)), np.zeros((3, 3)))
