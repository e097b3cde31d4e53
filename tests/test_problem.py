"""Problem.evaluate: validation, common random numbers, bit-identical splits, minimum at truth."""

from __future__ import annotations

import numpy as np
import pytest

from quantom_gf.errors import DataError
from quantom_gf.objectives import OBJECTIVES


@pytest.fixture
def problem(make_problem):
    return make_problem("proxy1d-detector", n_sim=2000, n_data=2000)


# --- input validation ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(3, 5), (3, 7), (5,), (2, 3, 6), (6, 1)])
def test_evaluate_rejects_wrong_shapes(problem, shape):
    with pytest.raises(ValueError, match="shape"):
        problem.evaluate(np.full(shape, 0.5), seed=1)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_evaluate_rejects_non_finite(problem, bad):
    Z = np.full((3, 6), 0.5)
    Z[1, 2] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        problem.evaluate(Z, seed=1)


def test_evaluate_clips_to_the_cube(problem):
    Z = np.array([[1.3, -0.2, 0.5, 0.4, 2.0, -5.0], [0.5] * 6])
    np.testing.assert_array_equal(problem.evaluate(Z, seed=2), problem.evaluate(np.clip(Z, 0, 1), seed=2))


def test_evaluate_accepts_one_vector_and_empty_population(problem):
    z = np.full(6, 0.4)
    s = problem.evaluate(z, seed=3)
    assert s.shape == (1,)
    np.testing.assert_array_equal(s, problem.evaluate(z[None], seed=3))
    assert problem.evaluate(np.empty((0, 6)), seed=3).shape == (0,)


def test_data_with_other_observable_count_rejected(problem):
    from quantom_gf.build import build_problem
    from quantom_gf.data import EventSet

    es = EventSet(np.full((10, 3), 0.5), np.ones(3), np.ones(3))
    with pytest.raises(DataError, match="3 observables"):
        build_problem("proxy1d", data=es, overrides={"simulation": {"n_events": 100}})


# --- common random numbers ----------------------------------------------------------------------


def test_same_seed_same_scores_other_seed_other_scores(problem):
    Z = np.random.default_rng(0).random((5, 6))
    a = problem.evaluate(Z, seed=10)
    problem.evaluate(Z, seed=11)
    problem.evaluate(Z, seed=12)  # evicts seed 10 from the noise cache
    np.testing.assert_array_equal(problem.evaluate(Z, seed=10), a)
    assert not np.array_equal(problem.evaluate(Z, seed=11), a)


def test_member_score_does_not_depend_on_the_rest_of_the_population(problem):
    rng = np.random.default_rng(1)
    z = rng.random(6)
    a = problem.evaluate(np.stack([z, rng.random(6)]), seed=4)[0]
    b = problem.evaluate(np.stack([rng.random(6), rng.random(6), z]), seed=4)[2]
    assert a == b


@pytest.mark.parametrize("env", ["proxy1d", "proxy1d-detector"])
@pytest.mark.parametrize("objective", sorted(OBJECTIVES))
def test_bit_identical_whole_members_slices_and_chunks(make_problem, env, objective):
    prob = make_problem(env, n_sim=3000, n_data=3000, objective=objective)
    Z = np.random.default_rng(2).random((23, 6))
    Z[3, [0, 3]] = 0.0  # an unnormalisable member among them
    whole = prob.evaluate(Z, seed=21)
    members = np.concatenate([prob.evaluate(Z[i : i + 1], seed=21) for i in range(len(Z))])
    slices = np.concatenate([prob.evaluate(Z[:9], seed=21), prob.evaluate(Z[9:], seed=21)])
    assert np.array_equal(whole, members)
    assert np.array_equal(whole, slices)
    prob.chunk = 4  # the memory-bounding chunk loop must not change anything either
    assert np.array_equal(prob.evaluate(Z, seed=21), whole)


# --- the minimum is at the truth ----------------------------------------------------------------


def neighbours(truth: np.ndarray, frac: float = 0.05) -> np.ndarray:
    """Truth and, per parameter, truth +- frac * |truth value| (the others at truth): (1 + 2d, d)."""
    pts = [truth]
    for i in range(truth.size):
        for sign in (1.0, -1.0):
            p = truth.copy()
            p[i] += sign * frac * abs(truth[i])
            pts.append(p)
    return np.array(pts)


@pytest.mark.parametrize("objective", ["binned_likelihood", "energy_distance"])
@pytest.mark.parametrize("data_seed", [None, 7])
def test_truth_scores_lower_than_5_percent_away(make_problem, objective, data_seed):
    """Measured data from one data seed, simulation from others (100k events each, detector on).

    Neighbours: each parameter moved by +-5% of its truth value, the rest at truth. Scores are
    averaged over three simulation seeds (common random numbers within each seed).
    """
    prob = make_problem("proxy1d-detector", n_sim=100_000, n_data=100_000, objective=objective, data_seed=data_seed)
    pts = neighbours(prob.space.truth)
    Z = prob.space.to_unit(pts)
    assert np.all((Z >= 0) & (Z <= 1))
    score = np.mean([prob.evaluate(Z, seed=s) for s in (101, 102, 103)], axis=0)
    worse = score[1:] - score[0]
    assert np.all(worse > 0), dict(zip([f"{n}{s}" for n in prob.space.names for s in "+-"], worse.round(2)))


def test_features_shape_and_bounds(problem):
    Z = np.random.default_rng(3).random((6, 6))
    scores, feats = problem.features(Z, seed=5)
    np.testing.assert_array_equal(scores, problem.evaluate(Z, seed=5))
    assert feats.shape == (6, 4)
    assert np.all(np.abs(feats) <= 1.0)
