"""Measured data: the .npz format, its validation, generation and the `make` command."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import REPO, run_python

from quantom_gf.build import build_problem, make_measured
from quantom_gf.data import EventSet, load_npz
from quantom_gf.errors import DataError


@pytest.fixture
def eventset(make_problem) -> EventSet:
    return make_problem("proxy1d-detector", n_sim=500, n_data=3000).data


def good_arrays(n: int = 50) -> dict:
    rng = np.random.default_rng(0)
    return {"events": rng.random((n, 2)), "xsec_total": np.array([3.3, 1.9]), "xsec_total_err": np.array([0.1, 0.1])}


def test_generated_data(eventset):
    assert eventset.n_obs == 2
    assert eventset.n_generated == 3000
    assert 0 < eventset.n_events < 3000  # the detector moves some events out of the selection
    assert np.all((eventset.events >= 0) & (eventset.events <= 1))
    np.testing.assert_allclose(eventset.truth, [2.1875, -0.5, 3.0, 1.09375, -0.5, 4.0])
    # Totals fluctuated by their error, 1/sqrt(n) relative by default.
    exact = np.array(eventset.meta["xsec_exact"])
    np.testing.assert_allclose(eventset.xsec_total_err, exact / np.sqrt(3000), rtol=1e-12)
    assert np.all(np.abs(eventset.xsec_total - exact) < 5 * eventset.xsec_total_err)
    assert not np.array_equal(eventset.xsec_total, exact)


def test_generation_is_reproducible_and_seeded(make_problem):
    prob = make_problem("proxy1d-detector", n_sim=500)
    a = make_measured(prob.experiment, prob.space, n_events=1000, seed=3)
    b = make_measured(prob.experiment, prob.space, n_events=1000, seed=3)
    c = make_measured(prob.experiment, prob.space, n_events=1000, seed=4)
    assert np.array_equal(a.events, b.events) and np.array_equal(a.xsec_total, b.xsec_total)
    assert not np.array_equal(a.events[:10], c.events[:10])


def test_round_trip(eventset, tmp_path):
    path = tmp_path / "d.npz"
    eventset.save(path)
    back = load_npz(path)
    assert np.array_equal(back.events, eventset.events)
    assert np.array_equal(back.xsec_total, eventset.xsec_total)
    assert np.array_equal(back.xsec_total_err, eventset.xsec_total_err)
    assert np.array_equal(back.truth, eventset.truth)
    assert back.n_generated == eventset.n_generated
    assert back.meta == eventset.meta
    assert not list(tmp_path.glob("*.tmp.npz"))  # the atomic write leaves nothing behind


def test_round_trip_minimal_file(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(path, **good_arrays())
    es = load_npz(path)
    assert es.truth is None and es.n_generated is None and es.meta == {}
    assert es.n_events == 50


def test_loaded_file_gives_same_scores_as_in_memory(eventset, tmp_path):
    path = tmp_path / "d.npz"
    eventset.save(path)
    over = {"simulation": {"n_events": 2000}}
    mem = build_problem("proxy1d-detector", data=eventset, overrides=over)
    disk = build_problem("proxy1d-detector", data=str(path), overrides=over)
    Z = np.random.default_rng(1).random((8, 6))
    assert np.array_equal(mem.evaluate(Z, seed=2), disk.evaluate(Z, seed=2))
    assert disk.config["data"]["source"] == str(path)
    np.testing.assert_array_equal(disk.space.truth, eventset.truth)


def test_real_data_has_no_truth(tmp_path):
    path = tmp_path / "real.npz"
    np.savez(path, **good_arrays())
    prob = build_problem("proxy1d", data=str(path), overrides={"simulation": {"n_events": 500}})
    assert prob.space.truth is None


# --- malformed files ----------------------------------------------------------------------------


def write(tmp_path, **arrays):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return path


def test_missing_key(tmp_path):
    a = good_arrays()
    del a["xsec_total_err"]
    with pytest.raises(DataError, match=r"missing required array\(s\) xsec_total_err"):
        load_npz(write(tmp_path, **a))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"events": np.zeros(10)}, r"'events' must be a non-empty \(N, n_obs\) array; got shape \(10,\)"),
        ({"events": np.zeros((0, 2))}, r"'events' must be a non-empty"),
        ({"xsec_total": np.ones(3)}, r"'xsec_total' must have shape \(2,\) to match events; got \(3,\)"),
        ({"xsec_total_err": np.ones(1)}, r"'xsec_total_err' must have shape \(2,\)"),
        ({"xsec_total_err": np.array([0.1, 0.0])}, r"'xsec_total_err' must be positive"),
        ({"xsec_total": np.array([np.nan, 1.0])}, r"'xsec_total' contains NaN"),
        ({"truth": np.array([1.0, np.nan])}, r"'truth' contains NaN"),
        ({"n_generated": np.int64(3)}, r"'n_generated' \(3\) is smaller than the number of events"),
        ({"meta": np.array("{not json")}, r"an array has the wrong type"),
        ({"events": np.array([["a", "b"]])}, r"an array has the wrong type"),
    ],
)
def test_malformed_arrays(tmp_path, change, message):
    a = {**good_arrays(), **change}
    with pytest.raises(DataError, match=message):
        load_npz(write(tmp_path, **a))


def test_nan_events(tmp_path):
    a = good_arrays()
    a["events"][3, 1] = np.nan
    path = write(tmp_path, **a)
    with pytest.raises(DataError, match="'events' contains NaN or infinite values") as exc:
        load_npz(path)
    assert str(path) in str(exc.value)


def test_not_a_zip(tmp_path):
    path = tmp_path / "text.npz"
    path.write_text("these are not the events you are looking for\n")
    with pytest.raises(DataError, match=r"not a readable \.npz file"):
        load_npz(path)


def test_pickled_object_array_refused(tmp_path):
    a = good_arrays()
    a["meta"] = np.array([{"x": 1}], dtype=object)
    with pytest.raises(DataError, match=r"not a readable \.npz file"):
        load_npz(write(tmp_path, **a))


def test_nonexistent(tmp_path):
    with pytest.raises(DataError, match="data file not found: .*nope.npz"):
        load_npz(tmp_path / "nope.npz")


def test_truth_of_wrong_length_for_env(tmp_path):
    a = {**good_arrays(), "truth": np.ones(4)}
    with pytest.raises(DataError, match="'truth' has 4 values; env 'proxy1d' has 6 parameters"):
        build_problem("proxy1d", data=str(write(tmp_path, **a)), overrides={"simulation": {"n_events": 100}})


# --- the command --------------------------------------------------------------------------------


def test_make_command_writes_loadable_file(tmp_path):
    out = tmp_path / "made.npz"
    res = run_python(
        ["-m", "quantom_gf.data", "make", "--env", "proxy1d", "--out", str(out), "--n-events", "2000", "--seed", "5"],
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    assert "wrote" in res.stdout
    es = load_npz(out)
    assert es.n_generated == 2000 and es.n_events == 2000  # detector off: every event passes
    assert es.meta["env"] == "proxy1d" and es.meta["seed"] == 5
    # Same as generating it in memory.
    prob = build_problem("proxy1d", overrides={"simulation": {"n_events": 100}})
    ref = make_measured(prob.experiment, prob.space, n_events=2000, seed=5)
    assert np.array_equal(es.events, ref.events)
    res = run_python(["-m", "quantom_gf.data", "check", str(out)], cwd=tmp_path)
    assert res.returncode == 0 and "2000 events x 2 observables" in res.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["make", "--env", "nope", "--out", "x.npz"], "unknown env 'nope'; choose one of: "),
        (["check", "missing.npz"], "data file not found: missing.npz"),
        (["make", "--env", "proxy1d", "--out", "x.npz", "--truth", "1", "2"], "--truth needs 6 values"),
    ],
)
def test_command_errors_are_one_line(tmp_path, args, message):
    res = run_python(["-m", "quantom_gf.data", *args], cwd=tmp_path)
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert message in lines[0]
    assert not (tmp_path / "x.npz").exists()


def test_repo_root_is_where_presets_live():
    assert (REPO / "envs" / "proxy1d.toml").is_file()
