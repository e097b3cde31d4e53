"""A conditional VAE as a detector surrogate for DIS (SPEC 2d), numpy inference, torch training.

The VAE learns the distribution of the relative residuals R = (R_x, R_Q2), R_i = (i - i')/i, given
the true kinematics, from (true, reconstructed) pairs of the reference detector (dis2d.py):

- condition c = standardised (log x, log Q2, log y), y = Q2/(Q2max x);
- encoder q(z | R, c): MLP (2 + 3) -> H -> H -> (mu, log var) of a ``latent``-dim Gaussian;
- decoder R_hat(z, c): MLP (latent + 3) -> H -> H -> 2, ReLU (continuous in the true kinematics,
  so events still move continuously with the parameters under common random numbers);
- loss ||W - W_reco||^2 + beta KL(q || N(0, 1)) on whitened residuals W = R / s(y), standardised:
  the resolution spans a decade (R_x ~ 3% at high y, ~40% at low y) and without whitening the
  squared error of the wide low-y residuals drowns the narrow ones. s(y) per component is a
  table of robust widths (1.4826 MAD) in 24 quantile bins of log y of the training pairs,
  interpolated linearly; the VAE learns the shapes, correlations and tails on top of it.

As a detector it draws z ~ N(0, 1) per event (shared by the population, like every detector's
random numbers) and returns x' = x (1 - R_x), Q2' = Q2 (1 - R_Q2), R = s(y) (W_hat(z, c) + eps),
eps Gaussian with the per-component variance the decoder leaves unexplained (its mean squared
reconstruction error; a Gaussian decoder's sampling, beta/2 would be its nominal variance).
Acceptance losses and background are not what the VAE models: they come from the same
parametrised maps as the reference (a real analysis would take them from the same simulation).

``quantom_gf/detector/vae_weights.npz`` ships the trained decoder (a few kB), so running the
surrogate needs numpy only; torch is imported by ``train`` alone::

    python -m quantom_gf.detector.vae [--steps 4000] [--out FILE]     # retrain (seconds)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..kinematics import PROTON_MASS, Q2_MIN, SQRT_S
from .dis2d import DISDetector

WEIGHTS = Path(__file__).with_name("vae_weights.npz")


class VAEDetector(DISDetector):
    """The VAE surrogate as a detector ("vae" in an env's [detector]); events (P, N, 2) are (x, Q2).

    ``weights``: an .npz from ``train`` (default: the shipped one). ``output_noise``: add the
    decoder's unexplained variance (module doc). The acceptance/background settings are the
    reference's (dis2d.DISDetector).
    """

    def __init__(
        self,
        weights: str = "",
        output_noise: bool = True,
        eff_max: float = 0.95,
        y_min: float = 0.01,
        y_width: float = 0.5,
        background: float = 0.02,
    ) -> None:
        path = Path(weights) if weights else WEIGHTS
        if not path.is_file():
            raise ValueError(f"VAE weights not found: {path} (train with: python -m quantom_gf.detector.vae)")
        with np.load(path, allow_pickle=False) as f:
            w = {k: f[k] for k in f.files}
        self.meta = json.loads(str(w.pop("meta")))
        ref = self.meta.get("reference", {})
        super().__init__(
            sqrt_s=ref.get("sqrt_s", SQRT_S), mass=ref.get("mass", PROTON_MASS), q2_min=ref.get("q2_min", Q2_MIN),
            eff_max=eff_max, y_min=y_min, y_width=y_width, background=background,
        )  # fmt: skip
        self.weights, self.output_noise = str(path), bool(output_noise)
        n_layers = len([k for k in w if k.startswith("W")])
        self.layers = [
            (np.ascontiguousarray(w[f"W{i}"], dtype=np.float32), w[f"b{i}"].astype(np.float32)) for i in range(n_layers)
        ]
        self.c_mean, self.c_std = w["c_mean"], w["c_std"]
        self.r_mean, self.r_std, self.resid_std = w["r_mean"], w["r_std"], w["resid_std"]
        self.s_logy, self.s_table = w["s_logy"], w["s_table"]
        self.latent = int(self.layers[0][0].shape[0] - self.c_mean.size)

    def condition(self, x: np.ndarray, q2: np.ndarray) -> np.ndarray:
        """Standardised (log x, log Q2, log y), (..., 3)."""
        c = np.stack([np.log(x), np.log(q2), np.log(self.y(x, q2))], axis=-1)
        return (c - self.c_mean) / self.c_std

    def scale(self, logy: np.ndarray) -> np.ndarray:
        """The whitening widths s(y) (N, 2) of R_x and R_Q2."""
        return np.stack([np.interp(logy, self.s_logy, self.s_table[:, k]) for k in range(2)], axis=-1)

    def decode(self, z: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Decoder output W_hat (N, 2), W = R / s(y), for latents z (N, latent) and conditions c (N, 3).

        float32 (the network was trained in float32; twice the speed of float64 matmuls).
        """
        (W0, b0), *rest = self.layers
        h = z @ W0[: self.latent] + c @ W0[self.latent :]
        h += b0
        np.maximum(h, 0.0, out=h)
        for k, (W, b) in enumerate(rest):
            h = h @ W
            h += b
            if k < len(rest) - 1:
                np.maximum(h, 0.0, out=h)
        return h * self.r_std + self.r_mean

    def residuals(self, x: np.ndarray, q2: np.ndarray, noise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sampled (R_x, R_Q2) for events at true x, q2 (n,) with their noise rows (N_ROWS, n)."""
        z = np.ascontiguousarray(noise[0 : self.latent].T, dtype=np.float32)
        c = self.condition(x, q2).astype(np.float32)
        w = self.decode(z, c).astype(np.float64)
        if self.output_noise:
            w += noise[8:10].T * self.resid_std
        r = w * self.scale(np.log(self.y(x, q2)))
        return r[:, 0], r[:, 1]


def training_pairs(n: int, seed: int, reference: DISDetector | None = None) -> tuple[np.ndarray, np.ndarray]:
    """True (x, Q2) (n, 2) and the reference's residuals R (n, 2), resolution only.

    Half the events follow Duke & Owens at the truth (proton and neutron, what the fit sees),
    half are log-uniform over the accepted region, so the surrogate also covers the corners the
    truth populates thinly (parameters move events there during a fit).
    """
    from ..sampling import LOITSSampler
    from ..theory import DukeOwensTheory

    ref = reference or DISDetector()
    rng = np.random.default_rng(seed)
    parts, m = [], n // 4
    for target in ("proton", "neutron"):
        th = DukeOwensTheory(target=target)
        dens = th.densities(th.parameter_space().truth[None])
        ev, _ = LOITSSampler().sample(th.grid, dens, rng.random((m, 2)))
        parts.append(ev[0][np.isfinite(ev[0, :, 0])])
    g = th.grid
    while sum(len(p) for p in parts) < n:
        u = rng.uniform(g.u_edges[0], g.u_edges[-1], 4 * m)
        v = rng.uniform(g.v_edges[0], g.v_edges[-1], 4 * m)
        x, q = np.exp(u), np.exp(v)
        ok = th.region(x, q)
        parts.append(np.column_stack([x[ok], q[ok]]))
    true = np.concatenate(parts)[:n]
    true = true[rng.permutation(len(true))]
    noise = ref.draw(rng, len(true))
    rx, rq = ref.residuals(true[:, 0], true[:, 1], noise)
    return true, np.column_stack([rx, rq])


def whitening(logy: np.ndarray, R: np.ndarray, bins: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Robust widths (1.4826 MAD) of R's components in quantile bins of log y: (centres, (bins, 2))."""
    edges = np.quantile(logy, np.linspace(0, 1, bins + 1))
    idx = np.clip(np.searchsorted(edges, logy, side="right") - 1, 0, bins - 1)
    centres, table = np.empty(bins), np.empty((bins, 2))
    for b in range(bins):
        r = R[idx == b]
        centres[b] = np.median(logy[idx == b])
        table[b] = 1.4826 * np.median(np.abs(r - np.median(r, axis=0)), axis=0)
    return centres, np.maximum(table, 1e-6)


def train(
    out: str | os.PathLike = WEIGHTS,
    steps: int = 4000,
    batch: int = 1024,
    hidden: int = 32,
    latent: int = 2,
    beta: float = 0.05,
    lr: float = 2e-3,
    n_train: int = 200_000,
    seed: int = 0,
) -> dict:
    """Train the conditional VAE on reference pairs and save the decoder (numpy .npz); returns its meta."""
    import torch  # only here: the surrogate's inference path is numpy

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    ref = DISDetector()
    true, R = training_pairs(n_train, seed, ref)
    c = np.stack([np.log(true[:, 0]), np.log(true[:, 1]), np.log(ref.y(true[:, 0], true[:, 1]))], axis=-1)
    c_mean, c_std = c.mean(0), c.std(0)
    s_logy, s_table = whitening(c[:, 2], R)
    T = R / np.stack([np.interp(c[:, 2], s_logy, s_table[:, k]) for k in range(2)], axis=-1)
    r_mean, r_std = T.mean(0), T.std(0)
    C = torch.tensor((c - c_mean) / c_std, dtype=torch.float32)
    Rs = torch.tensor((T - r_mean) / r_std, dtype=torch.float32)

    def mlp(n_in: int, n_out: int) -> torch.nn.Sequential:
        return torch.nn.Sequential(
            torch.nn.Linear(n_in, hidden), torch.nn.ReLU(),
            torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
            torch.nn.Linear(hidden, n_out),
        )  # fmt: skip

    enc, dec = mlp(2 + 3, 2 * latent), mlp(latent + 3, 2)
    opt = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator().manual_seed(seed)
    n = len(C)
    for _ in range(steps):
        idx = torch.randint(0, n, (batch,), generator=gen)
        r, cc = Rs[idx], C[idx]
        mu, logvar = enc(torch.cat([r, cc], 1)).chunk(2, dim=1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=gen)
        rec = dec(torch.cat([z, cc], 1))
        kl = 0.5 * (mu**2 + logvar.exp() - 1.0 - logvar).sum(1).mean()
        loss = ((rec - r) ** 2).sum(1).mean() + beta * kl
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        mu, logvar = enc(torch.cat([Rs, C], 1)).chunk(2, dim=1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=gen)
        resid = (dec(torch.cat([z, C], 1)) - Rs).numpy()
        kl = float((0.5 * (mu**2 + logvar.exp() - 1.0 - logvar).sum(1).mean()).item())
    lin = [m for m in dec if isinstance(m, torch.nn.Linear)]
    arrays = {f"W{i}": m.weight.detach().numpy().T.astype(np.float64) for i, m in enumerate(lin)}
    arrays.update({f"b{i}": m.bias.detach().numpy().astype(np.float64) for i, m in enumerate(lin)})
    meta = {
        "steps": steps, "batch": batch, "hidden": hidden, "latent": latent, "beta": beta, "lr": lr,
        "n_train": n_train, "seed": seed, "final_mse": float((resid**2).sum(1).mean()), "final_kl": kl,
        "reference": {"sqrt_s": SQRT_S, "mass": PROTON_MASS, "q2_min": Q2_MIN},
        "torch": torch.__version__,
    }  # fmt: skip
    arrays.update(
        c_mean=c_mean, c_std=c_std, r_mean=r_mean, r_std=r_std,
        resid_std=np.sqrt((resid**2).mean(0)) * r_std, s_logy=s_logy, s_table=s_table, meta=np.array(json.dumps(meta)),
    )  # fmt: skip
    out = os.fspath(out)
    tmp = out + ".tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, out)
    return meta


def _main(argv: list[str] | None = None) -> int:
    import argparse
    import time

    ap = argparse.ArgumentParser(prog="python -m quantom_gf.detector.vae", description="Train the VAE surrogate.")
    ap.add_argument("--out", default=str(WEIGHTS))
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--beta", type=float, default=0.05)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    meta = train(args.out, steps=args.steps, beta=args.beta, hidden=args.hidden, seed=args.seed)
    print(f"trained in {time.perf_counter() - t0:.1f} s: {json.dumps(meta)} -> {args.out}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(_main())
