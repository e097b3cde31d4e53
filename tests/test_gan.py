"""The torch pipeline against the numpy one, its gradients, and tiny GAN runs."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from quantom_gf.build import build_problem  # noqa: E402
from quantom_gf.solvers import get  # noqa: E402
from quantom_gf.torch_pipeline import TorchPipeline  # noqa: E402

SMALL = {"simulation": {"n_events": 3000}, "data": {"n_events": 2000}}


@pytest.fixture(scope="module", params=["proxy1d", "proxy1d-detector"])
def problem(request):
    """Small 1D proxy problems, detector off and on."""
    return build_problem(request.param, overrides=SMALL)


def _points(problem) -> np.ndarray:
    rng = np.random.default_rng(11)
    return np.vstack([problem.space.truth_unit, rng.uniform(0.05, 0.95, (3, problem.dim))])


def test_torch_pipeline_matches_numpy(problem):
    Z = _points(problem)
    sim = problem.simulate(Z, 7)  # numpy: Experiment.simulate with the noise of seed 7
    pipe = TorchPipeline(problem.space, problem.experiment)
    u, det = pipe.noise(7)  # the same uniforms and detector matrices
    events, totals, valid = pipe.simulate(torch.tensor(Z), u, det)
    assert valid.all() and sim.valid.all()
    np.testing.assert_allclose(events.numpy(), sim.events, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(totals.numpy(), sim.totals, rtol=1e-12)
    np.testing.assert_array_equal(pipe.hard_mask(events).numpy(), sim.mask)
    # The soft mask is the hard cut away from the edges (0.1 = five sigmoid widths).
    ev = events.numpy()
    far = np.all((np.abs(ev - 0.0) > 0.1) & (np.abs(ev - 1.0) > 0.1), axis=-1)
    soft = pipe.soft_mask(events).numpy()
    assert far.sum() > 0.5 * far.size
    np.testing.assert_allclose(soft[far], sim.mask[far].astype(float), atol=0.03)


def test_gradients_match_finite_differences():
    problem = build_problem("proxy1d-detector", overrides=SMALL)
    pipe = TorchPipeline(problem.space, problem.experiment)
    u, det = pipe.noise(3)
    z = torch.tensor(problem.space.truth_unit, requires_grad=True)

    def f(zz):
        events, totals, _ = pipe.simulate(zz[None], u, det)
        return events.mean() + totals.sum()

    f(z).backward()
    grad = z.grad.numpy()
    h = 1e-6
    fd = []
    for i in range(problem.dim):
        e = torch.zeros(problem.dim, dtype=torch.float64)
        e[i] = h
        with torch.no_grad():
            fd.append(float((f(z + e) - f(z - e)) / (2 * h)))
    assert np.all(np.isfinite(grad)) and np.all(grad != 0)
    np.testing.assert_allclose(grad, fd, rtol=1e-4, atol=1e-7)


def _gan(problem, budget, records=None, **kw):
    settings = {"ensemble": 2, "batch_size": 64, "hidden": 16, "log_every": 5, **kw}
    solver = get("gan")(problem.dim, seed=4, **settings)
    cb = None if records is None else (lambda s, info: records.append(info))
    return solver, solver.run(problem, budget, callback=cb)


@pytest.mark.parametrize("generator", ["direct", "reference"])
def test_tiny_gan_runs(generator):
    problem = build_problem("proxy1d-detector", overrides=SMALL)
    records = []
    _, res = _gan(problem, 2, records, generator=generator)
    steps = 2 * 3000 // (2 * 64)
    assert res.generations == steps and res.evaluations <= 2
    assert res.z.shape == (problem.dim,) and np.all((res.z > 0) & (res.z < 1))
    assert len(res.extra["spread_unit"]) == problem.dim and res.extra["spread_kind"] == "ensemble"
    assert len(records) == steps // 5 + (steps % 5 > 0)
    assert records[0].Z.shape == (2, problem.dim) and np.isfinite(records[-1].extra["d_loss_norm"])
    _, again = _gan(problem, 2, generator=generator)
    np.testing.assert_array_equal(res.z, again.z)


def test_gan_resume_is_bit_identical():
    problem = build_problem("proxy1d", overrides=SMALL)
    _, straight = _gan(problem, 2, generator="direct")
    first, _ = _gan(problem, 1, generator="direct")
    state = pickle.loads(pickle.dumps(first.state_dict()))
    resumed = get("gan")(problem.dim, seed=4, ensemble=2, batch_size=64, hidden=16, log_every=5, generator="direct")
    resumed.load_state_dict(state)
    res = resumed.run(problem, 2)
    assert res.generations == straight.generations
    np.testing.assert_array_equal(res.z, straight.z)


def test_device_cuda_without_a_gpu_is_one_clear_line(tmp_path):
    import subprocess
    import sys

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: --device cuda runs")
    cp = subprocess.run([sys.executable, "-m", "quantom_gf.run", "--strategy", "gan", "--device", "cuda",
                         "--out", str(tmp_path / "x")], cwd=tmp_path, capture_output=True, text=True)  # fmt: skip
    assert cp.returncode == 2 and "sees no GPU" in cp.stderr and "Traceback" not in cp.stderr
    assert not (tmp_path / "x").exists()
