"""Fidelity of the VAE detector surrogate against the reference DIS detector, on held-out events.

    python benchmarks/surrogate.py [--events 100000] [--seed 7]

True (x, Q2) events are drawn from Duke & Owens at the truth (proton) with a seed the training
never used. For the same true events the reference (dis2d) and the surrogate (vae) each draw
their own random numbers; a second, independent reference sample is the yardstick: a perfect
surrogate is as far from the reference as the reference is from itself. Printed, per region of
y (where the resolution differs most) and overall:

- energy distance of the standardised residuals (R_x, R_Q2), surrogate vs reference and
  reference vs reference (2D, on 4,000-event subsamples, exact O(n^2) form);
- per-bin pulls of the R_x and R_Q2 histograms (40 bins at reference quantiles): chi2/ndf and
  the largest |pull|, for both comparisons;
- the means, widths and radiative-tail fractions of R_Q2;
- downstream: the two-sample deviance/ndf of the reconstructed (x', Q2') events (20 x 20
  quantile bins) after the full detectors (acceptance and background included).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402

import numpy as np  # noqa: E402

from quantom_gf.detector import DISDetector, VAEDetector  # noqa: E402
from quantom_gf.objectives import two_sample_deviance  # noqa: E402
from quantom_gf.objectives.histogram import hist2d  # noqa: E402
from quantom_gf.sampling import LOITSSampler  # noqa: E402
from quantom_gf.theory import DukeOwensTheory  # noqa: E402


def energy_distance(a: np.ndarray, b: np.ndarray) -> float:
    """2 E|A - B| - E|A - A'| - E|B - B'| of two samples (n, d), exact."""

    def mean_dist(p, q):
        return float(np.mean(np.sqrt(((p[:, None, :] - q[None, :, :]) ** 2).sum(-1))))

    return 2.0 * mean_dist(a, b) - mean_dist(a, a) - mean_dist(b, b)


def pulls(ref: np.ndarray, other: np.ndarray, bins: int = 40) -> tuple[float, float]:
    """chi2/ndf and max |pull| of two equal-size 1D samples on ``bins`` reference-quantile bins."""
    edges = np.quantile(ref, np.linspace(0, 1, bins + 1))
    edges[0], edges[-1] = -np.inf, np.inf
    n, _ = np.histogram(ref, edges)
    m, _ = np.histogram(other, edges)
    ok = (n + m) > 0
    p = (m[ok] - n[ok]) / np.sqrt(n[ok] + m[ok])
    return float((p**2).sum() / ok.sum()), float(np.abs(p).max())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--weights", default="", help="VAE weights .npz (default: the shipped ones)")
    ap.add_argument("--no-output-noise", action="store_true", help="decoder mean only (no unexplained variance)")
    args = ap.parse_args()
    rng = np.random.default_rng(10_000 + args.seed)  # training used seeds 0..; never this one
    th = DukeOwensTheory(target="proton")
    ev, _ = LOITSSampler().sample(th.grid, th.densities(th.parameter_space().truth[None]), rng.random((args.events, 2)))
    true = ev[0][np.isfinite(ev[0, :, 0])]
    x, q = true[:, 0], true[:, 1]
    ref, sur = DISDetector(), VAEDetector(weights=args.weights, output_noise=not args.no_output_noise)
    n1, n2, n3 = (ref.draw(rng, len(true)) for _ in range(3))
    R_ref = np.column_stack(ref.residuals(x, q, n1))
    R_ref2 = np.column_stack(ref.residuals(x, q, n2))
    R_sur = np.column_stack(sur.residuals(x, q, n3))
    scale = R_ref.std(0)
    y = ref.y(x, q)
    print(f"surrogate: {sur.weights} (hidden {sur.meta['hidden']}, latent {sur.meta['latent']}, "
          f"beta {sur.meta['beta']}, {sur.meta['steps']} steps); {len(true):,} held-out true events")  # fmt: skip
    print("residuals R = (true - reco)/true; 'VAE' = surrogate vs reference, 'ref' = reference vs an independent one")
    head = f"{'region':<18}{'events':>8} | {'energy dist VAE':>15} {'ref':>8} | {'R_x chi2/ndf VAE':>16} {'ref':>6}"
    head += f" {'max|pull|':>9} | {'R_Q2 chi2/ndf VAE':>17} {'ref':>6} {'max|pull|':>9}"
    print(head)
    sub = np.random.default_rng(1)
    for name, sel in (("all", np.ones_like(y, bool)), ("y < 0.03", y < 0.03),
                      ("0.03 <= y < 0.2", (y >= 0.03) & (y < 0.2)), ("y >= 0.2", y >= 0.2)):  # fmt: skip
        idx = np.flatnonzero(sel)
        k = sub.choice(idx, min(4000, idx.size), replace=False)
        ed = energy_distance(R_sur[k] / scale, R_ref[k] / scale)
        ed0 = energy_distance(R_ref2[k] / scale, R_ref[k] / scale)
        cx, px = pulls(R_ref[idx, 0], R_sur[idx, 0])
        cx0, _ = pulls(R_ref[idx, 0], R_ref2[idx, 0])
        cq, pq = pulls(R_ref[idx, 1], R_sur[idx, 1])
        cq0, _ = pulls(R_ref[idx, 1], R_ref2[idx, 1])
        print(f"{name:<18}{idx.size:>8} | {ed:>15.5f} {ed0:>8.5f} | {cx:>16.2f} {cx0:>6.2f} {px:>9.1f}"
              f" | {cq:>17.2f} {cq0:>6.2f} {pq:>9.1f}")  # fmt: skip
    core = 3 * np.median(np.abs(R_ref[:, 1] - np.median(R_ref[:, 1]))) * 1.4826
    for label, R in (("reference", R_ref), ("VAE", R_sur)):
        print(f"R_Q2 {label:<9}: mean {R[:, 1].mean():+.4f}  std {R[:, 1].std():.4f}  "
              f"tail fraction (R_Q2 > 3 sigma_core) {np.mean(R[:, 1] > core):.4f};  "
              f"R_x mean {R[:, 0].mean():+.4f} std {R[:, 0].std():.4f}")  # fmt: skip
    # Downstream: the full detectors (acceptance, background) on the same true events.
    det = []
    for d, nz in ((ref, n1), (ref, n2), (sur, n3)):
        e = d.apply(true[None].copy(), nz)[0]
        det.append(e[np.isfinite(e[:, 0])])
    inner = [np.quantile(det[0][:, o], np.linspace(0, 1, 21)[1:-1]) for o in range(2)]

    def counts(e):
        return hist2d(e[None], np.ones((1, len(e)), bool), *inner)[0]

    h_ref = counts(det[0])
    for label, e in (("VAE", det[2]), ("ref", det[1])):
        dev = float(two_sample_deviance(h_ref, counts(e)[None], 1.0)[0])
        print(f"reconstructed (x', Q2') 20x20 bins, {label} vs reference: deviance/ndf = {dev:.1f}/{h_ref.size} "
              f"= {dev / h_ref.size:.2f}; events kept {len(e):,} vs {len(det[0]):,}")  # fmt: skip


if __name__ == "__main__":
    main()
