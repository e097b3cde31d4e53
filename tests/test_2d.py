"""The 2D proxy apps: lite theory, Duke & Owens, LOITS, DIS detector + VAE surrogate, several experiments."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from conftest import REPO, run_python
from scipy import stats

from quantom_gf.build import build_problem
from quantom_gf.detector import DISDetector, VAEDetector
from quantom_gf.detector.vae import WEIGHTS
from quantom_gf.problem import Problem
from quantom_gf.reweight import Reweighter
from quantom_gf.sampling import LOITSSampler
from quantom_gf.theory import DukeOwensTheory, Proxy2DTheory

LITE_TRUTH = np.array([0.5, 3.0, 0.3, 4.0, 0.75])


def small(n_sim: int = 4000, n_data: int = 4000, bins: int = 8) -> dict:
    """Overrides for fast single-experiment 2D envs."""
    return {"simulation": {"n_events": n_sim}, "data": {"n_events": n_data}, "objective": {"bins": bins}}


def small_dis(n: int = 3000) -> dict:
    """Overrides for a fast proton + neutron env (experiment tables keep their names)."""
    return {
        "simulation": {"n_events": n},
        "objective": {"bins": 8},
        "theory": {"n_x": 20, "n_q2": 20},
        "experiments": [
            {"name": "proton", "theory": {"target": "proton"}, "data": {"n_events": n}},
            {"name": "neutron", "theory": {"target": "neutron"}, "data": {"n_events": n}},
        ],
    }


@pytest.fixture(scope="module")
def lite() -> Proxy2DTheory:
    return Proxy2DTheory()


def test_grid_layout_and_totals(lite):
    dens = lite.densities(LITE_TRUTH[None])
    g = lite.grid
    assert dens.shape == (1, 1, 50, 50, 21) and lite.n_xsec == 1 and lite.n_obs == 2
    # centre value = the density at the centre; line ends = the cell's edges on the centre lines
    i, j = 7, 31
    assert dens[0, 0, i, j, 0] == pytest.approx(
        lite.density_mesh(LITE_TRUTH[None], g.u_centres[[i]], g.v_centres[[j]])[0, 0, 0]
    )
    assert dens[0, 0, i, j, 1] == pytest.approx(
        lite.density_mesh(LITE_TRUTH[None], g.u_edges[[i]], g.v_centres[[j]])[0, 0, 0]
    )
    assert dens[0, 0, i, j, 20] == pytest.approx(
        lite.density_mesh(LITE_TRUTH[None], g.u_centres[[i]], g.v_edges[[j + 1]])[0, 0, 0]
    )
    # midpoint total vs a fine numerical integral (0.4% apart on 50 cells: the sqrt(x) cusp at
    # x -> 0; data and simulation share the definition, so a closure never sees it)
    x = np.linspace(0.001, 0.999, 2001)
    xm = 0.5 * (x[1:] + x[:-1])
    exact = (lite.density_mesh(LITE_TRUTH[None], xm, xm)[0] * np.outer(np.diff(x), np.diff(x))).sum()
    assert lite.totals(dens)[0, 0] == pytest.approx(exact, rel=1e-2)


def test_loits_matches_the_density(lite):
    """Binned chi2 of 50k LOITS events against the exact density integrated per bin.

    (At 400k events and more the SPEC's midpoint cell weights show their bias next to the
    integrable cusps x^0.5, y^0.3 at 0.001: the lowest-y bin runs ~2.5 sigma high.)
    """
    u = LOITSSampler().draw(np.random.default_rng(12345), 50_000, 2)
    ev, valid = LOITSSampler().sample(lite.grid, lite.densities(LITE_TRUTH[None]), u)
    assert valid[0] and np.all(np.isfinite(ev))
    ev = ev[0]
    nb = 8
    ex = np.quantile(ev[:, 0], np.linspace(0, 1, nb + 1))
    ey = np.quantile(ev[:, 1], np.linspace(0, 1, nb + 1))
    ex[[0, -1]] = ey[[0, -1]] = 0.001, 0.999
    H, _, _ = np.histogram2d(ev[:, 0], ev[:, 1], [ex, ey])
    f = np.linspace(0.001, 0.999, 4001)
    fm, df = 0.5 * (f[1:] + f[:-1]), np.diff(f)
    mass = lite.density_mesh(LITE_TRUTH[None], fm, fm)[0] * np.outer(df, df)
    E = np.zeros((nb, nb))
    np.add.at(E, (np.searchsorted(ex, fm)[:, None] - 1, np.searchsorted(ey, fm)[None, :] - 1), mass)
    E *= H.sum() / E.sum()
    chi2 = float(((H - E) ** 2 / E).sum())
    assert stats.chi2.sf(chi2, nb * nb - 1) > 0.01, chi2


def test_loits_crn_continuity(lite):
    """Common random numbers: a small parameter change moves every event a little (no row jumps)."""
    u = LOITSSampler().draw(np.random.default_rng(3), 20_000, 2)
    p = np.stack([LITE_TRUTH, LITE_TRUTH + np.array([0.002, 0.0, -0.002, 0.0, 0.005])])
    ev, _ = LOITSSampler().sample(lite.grid, lite.densities(p), u)
    move = np.abs(ev[1] - ev[0]).max(axis=1)
    assert np.quantile(move, 0.999) < 0.5 / 50  # less than half a cell for all but a few events


def test_duke_owens_cross_section_sanity():
    for target in ("proton", "neutron"):
        th = DukeOwensTheory(target=target)
        truth = th.parameter_space().truth[None]
        x = np.geomspace(th.x_min, 0.9999, 120)
        q2 = np.geomspace(th.q2_min, th.q2_max, 120)
        sig = th.sigma(truth, x, q2)[0]
        inside = th.region(x[:, None], q2[None, :])
        assert np.all(np.isfinite(sig))
        assert np.all(sig[inside] > 0) and np.all(sig[~inside] == 0)
        assert inside.sum() > 1000 and (~inside).sum() > 1000
    p, n = DukeOwensTheory(target="proton"), DukeOwensTheory(target="neutron")
    tp = p.totals(p.densities(p.parameter_space().truth[None]))[0, 0]
    tn = n.totals(n.densities(n.parameter_space().truth[None]))[0, 0]
    assert 0 < tn < tp  # F2_n < F2_p where u dominates
    # The formula of SPEC 2b at one point, by hand.
    xv, qv = 0.01, 10.0
    f = p.pdf_values(p.parameter_space().truth[None], np.array([xv]), np.array([qv]))
    y = qv / (p.q2_max * xv)
    K2 = 1 + (1 - y) ** 2 + 2 * xv**2 * y**2 * 0.93891897**2 / qv
    F2 = 4 / 9 * xv * f["u"][0, 0, 0] + 1 / 9 * xv * f["d"][0, 0, 0]
    norm = 2 * np.pi / 137**2 / (xv * y * qv) * y / qv
    assert p.sigma(p.parameter_space().truth[None], np.array([xv]), np.array([qv]))[0, 0, 0] == pytest.approx(
        norm * K2 * F2
    )


def test_duke_owens_fit_subset_and_errors():
    th = DukeOwensTheory(fit=["u.a0", "d.b1"])
    sp = th.parameter_space()
    assert sp.names == ("u.a0", "d.b1") and np.all(sp.lower < sp.truth) and np.all(sp.truth < sp.upper)
    full = th.full(sp.truth[None])
    assert full.shape == (1, 36) and full[0, 3] == sp.truth[0]
    with pytest.raises(ValueError, match="unknown or repeated"):
        DukeOwensTheory(fit=["u.z9"])
    with pytest.raises(ValueError, match="target"):
        DukeOwensTheory(target="deuteron")


def test_reweighter_2d_equals_direct_simulation_at_its_centre():
    pb = build_problem("proxy2d", overrides=small(3000, 3000))
    z = pb.space.truth_unit + 0.01
    direct = pb.evaluate(z[None], seed=9)[0]
    rw = Reweighter(pb, z, seed=9, factor=1)
    assert rw.scores(z[None])[0] == pytest.approx(direct, rel=1e-12)
    assert rw.ess(z) == pytest.approx(1.0)
    y = rw.scores(z + np.outer(np.linspace(-0.02, 0.02, 9), [0.0, 0.0, 1.0, 0.0, 0.0]))
    assert np.all(np.abs(np.diff(y, 2)) < 5.0)  # smooth: small second differences


def test_lite_truth_recovered():
    """The curvature step started off the truth comes back to it (within 3 sigma per parameter)."""
    from quantom_gf import uq

    pb = build_problem("proxy2d", overrides=small(20_000, 20_000, bins=10))
    zt = pb.space.truth_unit
    c = uq.curvature(pb, zt + np.array([0.02, -0.02, 0.02, -0.02, 0.05]), seed=4)
    assert c.ok
    pull = (c.minimum - zt) / np.sqrt(np.diag(c.cov))
    assert np.all(np.abs(pull) < 3.0), pull


def test_dis_detector_and_surrogate():
    th = DukeOwensTheory(n_x=20, n_q2=20)
    u = LOITSSampler().draw(np.random.default_rng(0), 5000, 2)
    ev, _ = LOITSSampler().sample(th.grid, th.densities(np.repeat(th.parameter_space().truth[None], 3, 0)), u)
    for det in (DISDetector(), VAEDetector()):
        noise = det.draw(np.random.default_rng(1), 5000)
        out = det.apply(ev.copy(), noise)
        lost = np.isnan(out[..., 0])
        assert 0.2 < lost.mean() < 0.8
        bg = noise[5] < det.background
        assert np.all(~lost[:, bg])  # background is always recorded
        ok = ~lost[0] & ~bg
        r = (ev[0, ok, 1] - out[0, ok, 1]) / ev[0, ok, 1]
        assert 0.02 < r.std() < 0.2
        assert np.array_equal(det.apply(ev[1:2].copy(), noise), out[1:2], equal_nan=True)  # chunk-invariant
    assert WEIGHTS.stat().st_size < 200_000


def test_numpy_paths_do_not_import_torch(tmp_path):
    code = (
        "import sys\nfrom quantom_gf.build import build_problem\n"
        "import numpy as np\n"
        "pb = build_problem('dis-duke-owens', overrides={'simulation': {'n_events': 500}, 'experiments': ["
        "{'name': 'proton', 'theory': {'target': 'proton'}, 'data': {'n_events': 500}},"
        "{'name': 'neutron', 'theory': {'target': 'neutron'}, 'data': {'n_events': 500}}]})\n"
        "pb.evaluate(np.full((2, pb.dim), 0.5), 1)\n"
        "print('torch' in sys.modules)\n"
    )
    cp = run_python(["-c", code], cwd=REPO)
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.strip() == "False"


def test_multi_experiment_score_is_the_sum():
    pb = build_problem("dis-duke-owens", overrides=small_dis())
    assert pb.multi and [e.name for e in pb.experiments] == ["proton", "neutron"]
    assert [e.index for e in pb.experiments] == [0, 1]
    Z = np.random.default_rng(0).uniform(0.3, 0.7, (4, pb.dim))
    Z[0] = pb.space.truth_unit
    total = pb.evaluate(Z, seed=5)
    parts = [
        Problem(pb.space, e, copy.deepcopy(o), d).evaluate(Z, seed=5)
        for e, o, d in zip(pb.experiments, pb.objectives, pb.datasets)
    ]
    np.testing.assert_allclose(total, parts[0] + parts[1], rtol=1e-12)
    assert pb.objective.dof == sum(o.dof for o in pb.objectives)
    scores, feats = pb.features(Z, seed=5)
    np.testing.assert_allclose(scores, total, rtol=1e-12)
    assert feats.shape == (4, 2 * pb.data.n_obs) and np.all(np.abs(feats) <= 1)
    # Reweighted: also the sum of the experiments' reweighted scores.
    rw = Reweighter(pb, Z[0], seed=3, factor=1)
    single = [Reweighter(Problem(pb.space, e, copy.deepcopy(o), d), Z[0], seed=3, factor=1)
              for e, o, d in zip(pb.experiments, pb.objectives, pb.datasets)]  # fmt: skip
    np.testing.assert_allclose(rw.scores(Z), single[0].scores(Z) + single[1].scores(Z), rtol=1e-12)
    np.testing.assert_allclose(rw.scores(Z[:1]), pb.evaluate(Z[:1], seed=3), rtol=1e-12)  # at its centre


def test_multi_experiment_data_round_trip(tmp_path):
    pb = build_problem("dis-duke-owens", overrides=small_dis())
    path = tmp_path / "both.npz"
    pb.data.save(path)
    again = build_problem("dis-duke-owens", data=str(path), overrides=small_dis())
    Z = np.full((2, pb.dim), 0.45)
    np.testing.assert_array_equal(again.evaluate(Z, 2), pb.evaluate(Z, 2))
    assert again.space.truth is not None and again.config["experiments"][1]["data"]["source"] == str(path)
    # one file per experiment, comma-separated, in the env's order
    for n, es in pb.data.sets.items():
        es.save(tmp_path / f"{n}.npz")
    comma = f"{tmp_path / 'proton.npz'},{tmp_path / 'neutron.npz'}"
    np.testing.assert_array_equal(build_problem("dis-duke-owens", data=comma, overrides=small_dis()).evaluate(Z, 2),
                                  pb.evaluate(Z, 2))  # fmt: skip
    from quantom_gf.errors import DataError

    with pytest.raises(DataError, match="1 files given for 2 experiment"):
        build_problem("dis-duke-owens", data=str(tmp_path / "proton.npz") + ",", overrides=small_dis())


def test_torch_loits_matches_numpy_and_has_gradients(lite):
    torch = pytest.importorskip("torch")
    from quantom_gf.torch_pipeline import loits_sample_torch, proxy2d_densities_torch

    p = np.stack([LITE_TRUTH, LITE_TRUTH * 1.05])
    u = np.random.default_rng(0).random((2000, 2))
    ev_np, _ = LOITSSampler().sample(lite.grid, lite.densities(p), u)
    pt = torch.tensor(p, requires_grad=True)
    ev, valid = loits_sample_torch(lite.grid, proxy2d_densities_torch(lite, pt), torch.tensor(u))
    assert bool(valid.all())
    np.testing.assert_allclose(ev.detach().numpy(), ev_np, rtol=0, atol=1e-10)
    ev[..., 1].mean().backward()
    g = pt.grad.numpy()
    assert np.all(np.isfinite(g)) and np.abs(g[:, 2]).min() > 0  # y's exponent moves the y draws


@pytest.mark.parametrize("env, over", [("proxy2d", small(3000, 3000)), ("dis-duke-owens", small_dis(2000))])
def test_run_command_on_2d_envs(tmp_path, env, over):
    import tomli_w

    path = tmp_path / "env.toml"
    path.write_text(f'extends = "{env}"\n' + tomli_w.dumps(over))
    out = tmp_path / "run"
    cp = run_python(["-m", "quantom_gf.run", "--strategy", "cmaes", "--env", str(path), "--budget", "96",
                     "--out", str(out), "--no-plots"], cwd=tmp_path, timeout=300)  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    assert (out / "result.json").is_file() and "closure (final estimate):" in cp.stdout


def test_torch_pipeline_2d_matches_numpy_experiment():
    torch = pytest.importorskip("torch")
    from quantom_gf.torch_pipeline import TorchPipeline2D, make_torch_pipeline

    pb = build_problem("proxy2d", overrides=small(2000, 2000))
    pipe = make_torch_pipeline(pb.space, pb.experiment)
    assert isinstance(pipe, TorchPipeline2D)
    Z = np.random.default_rng(0).uniform(0.3, 0.7, (3, pb.dim))
    sim = pb.simulate(Z, 7)
    u, det = pipe.noise(7)
    z = torch.tensor(Z, requires_grad=True)
    ev, tot, valid = pipe.simulate(z, u, det)
    np.testing.assert_allclose(ev.detach().numpy(), sim.events, rtol=0, atol=1e-10)
    np.testing.assert_allclose(tot.detach().numpy(), sim.totals, rtol=1e-12)
    assert np.array_equal(pipe.hard_mask(ev).numpy(), sim.mask)
    ev[..., 0].mean().backward()
    assert np.all(np.isfinite(z.grad.numpy())) and np.abs(z.grad.numpy()).sum() > 0
