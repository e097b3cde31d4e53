"""Measured data from npz, HDF5 and ROOT files: the same events give the same scores."""

from __future__ import annotations

import numpy as np
import pytest

from quantom_gf.build import build_problem
from quantom_gf.data import EventSet, MultiEventSet
from quantom_gf.data_io import load_data, save_data, save_hdf5, save_root
from quantom_gf.errors import DataError

pytest.importorskip("h5py")
pytest.importorskip("uproot")

SMALL = {"simulation": {"n_events": 3000}, "data": {"n_events": 3000}, "objective": {"bins": 8}}


@pytest.fixture(scope="module")
def generated():
    """A small proxy2d problem with generated data."""
    return build_problem("proxy2d", overrides=SMALL)


@pytest.mark.parametrize("ext", ["npz", "h5", "root"])
def test_same_events_same_scores(tmp_path, generated, ext):
    path = tmp_path / f"data.{ext}"
    save_data(generated.data, path, ["x", "y"])
    es = load_data(path, observables=["x", "y"])
    np.testing.assert_array_equal(es.events, generated.data.events)
    np.testing.assert_array_equal(es.xsec_total, generated.data.xsec_total)
    assert es.n_generated == generated.data.n_generated
    np.testing.assert_array_equal(es.truth, generated.data.truth)
    pb = build_problem("proxy2d", data=str(path), overrides=SMALL)
    Z = np.random.default_rng(1).random((3, 5))
    np.testing.assert_array_equal(pb.evaluate(Z, 4), generated.evaluate(Z, 4))


def test_branch_mapping_tree_name_and_totals_from_options(tmp_path, generated):
    es = generated.data
    bare = EventSet(es.events, es.xsec_total, es.xsec_total_err)  # what a user's tree has: events only
    path = tmp_path / "user.root"
    save_root(bare, path, ["x_rec", "y_rec"], tree="T")
    # Drop the totals to mimic a file that has only the TTree of events.
    import uproot

    with uproot.recreate(path) as f:
        t = f.mktree("T", {"x_rec": np.float64, "y_rec": np.float64, "other": np.float64})
        t.extend({"x_rec": es.events[:, 0], "y_rec": es.events[:, 1], "other": np.zeros(es.n_events)})
    got = load_data(f"{path}:T", observables=["x_rec", "y_rec"], xsec_total=list(es.xsec_total),
                    xsec_total_err=list(es.xsec_total_err))  # fmt: skip
    np.testing.assert_array_equal(got.events, es.events)
    # the same mapping through an env's [data] section
    mapping = {"observables": ["x_rec", "y_rec"], "tree": "T"}
    totals = {"xsec_total": es.xsec_total.tolist(), "xsec_total_err": es.xsec_total_err.tolist()}
    over = {**SMALL, "data": {**mapping, **totals}}
    pb = build_problem("proxy2d", data=str(path), overrides=over)
    np.testing.assert_array_equal(pb.data.events, es.events)
    assert pb.space.truth is None  # a user's file without truth: real data
    with pytest.raises(DataError, match="no branch"):
        load_data(f"{path}:T", observables=["x", "y"], xsec_total=[1.0], xsec_total_err=[0.1])
    with pytest.raises(DataError, match="missing required array"):
        load_data(f"{path}:T", observables=["x_rec", "y_rec"])
    with pytest.raises(DataError, match="no tree 'events'"):
        load_data(path, observables=["x_rec", "y_rec"])


def test_hdf5_columns_and_errors(tmp_path, generated):
    path = tmp_path / "cols.h5"
    save_hdf5(generated.data, path, ["xa", "ya"])
    es = load_data(path, observables=["xa", "ya"])
    np.testing.assert_array_equal(es.events, generated.data.events)
    with pytest.raises(DataError, match=r"no column\(s\) x"):
        load_data(path, observables=["x", "ya"])
    bad = tmp_path / "x.csv"
    bad.write_text("1,2\n")
    with pytest.raises(DataError, match="unknown data format"):
        load_data(bad)
    with pytest.raises(DataError, match="not found"):
        load_data(tmp_path / "nope.root")
    (tmp_path / "junk.h5").write_text("not hdf5")
    with pytest.raises(DataError, match="not a readable HDF5"):
        load_data(tmp_path / "junk.h5")


@pytest.mark.parametrize("ext", ["npz", "h5", "root"])
def test_several_experiments_in_one_file(tmp_path, ext):
    over = {
        "simulation": {"n_events": 1500}, "objective": {"bins": 6}, "theory": {"n_x": 16, "n_q2": 16},
        "experiments": [{"name": "proton", "theory": {"target": "proton"}, "data": {"n_events": 1500}},
                        {"name": "neutron", "theory": {"target": "neutron"}, "data": {"n_events": 1200}}],
    }  # fmt: skip
    pb = build_problem("dis-duke-owens", overrides=over)
    path = tmp_path / f"both.{ext}"
    save_data(pb.data, path, ["x", "Q2"])
    got = load_data(path, observables=["x", "Q2"], experiments=["proton", "neutron"])
    assert isinstance(got, MultiEventSet) and got.names == ["proton", "neutron"]
    for n in got.names:
        np.testing.assert_array_equal(got.sets[n].events, pb.data.sets[n].events)
    again = build_problem("dis-duke-owens", data=str(path), overrides=over)
    Z = np.full((2, pb.dim), 0.55)
    np.testing.assert_array_equal(again.evaluate(Z, 8), pb.evaluate(Z, 8))
