"""The GAN gradient path (SPEC 1, the collaboration's set-up) on the differentiable torch pipeline.

A discriminator D (MLP 2 -> 4x128 LeakyReLU(0.2) -> 1 sigmoid) tells measured events from
synthetic ones; the generator's parameters are pushed, through the differentiable pipeline
(quantom_gf.torch_pipeline), to make D say "real", under least-squares GAN losses plus a term on
the two total cross sections. Two generators:

- ``generator = "reference"``: upstream's network, 6-dim noise N(0.5, 0.2) -> 4x128 -> 6
  sigmoid outputs (unit-cube parameters); ``param_sets`` noise draws per step share the batch.
- ``generator = "direct"``: the parameter vector itself (a torch Parameter in logit space).

Cross-section term (our choice; upstream used a plain MSE of the totals): the mean over the
two totals of ((total - measured)/measured)^2, times ``xsec_weight``: upstream's MSE made
relative, so that it does not depend on the units of the cross sections. Not divided by the
errors: with 100k events the pulls are 300x the relative deviations, their gradients then fill
Adam's second-moment estimate and the steps along the shape directions (which only the
discriminator sees) shrink to nothing; measured on proxy1d-detector with the direct generator,
N_u stayed 0.31 from the truth over 18k steps. D cannot see the normalisation, so the totals
alone fix it whatever the weight; the weight sets only how fast.

An ``ensemble`` of members (different seeds; upstream used 15) trains at once: every network
carries a leading member axis, the losses are summed over members (each member's gradients are
its own; Adam is elementwise, and gradients are clipped per member), so an ensemble costs one
batched pass instead of a loop. The answer is the members' mean; their spread is spread_unit.

Budget, in evaluations comparable to every other solver (one evaluation = one parameter set
simulated with the experiment's ``n_events`` events): evaluations = ceil(synthetic events
generated / n_events); a training step generates ensemble x batch_size events. torch is
imported with this module; the solver registry loads it only when "gan" is asked for.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch

from .. import rng as rngmod
from ..errors import ConfigError
from ..torch_pipeline import TorchPipeline, make_torch_pipeline
from .base import Callback, Progress, Solver, SolverResult

GAN_STREAM = 24  # stream purpose of the per-step random numbers (21-23 are taken)
GENERATORS = ("reference", "direct")


class BatchedMLP(torch.nn.Module):
    """``members`` independent MLPs evaluated together: x (M, B, in) -> (M, B, out).

    Initialised as torch.nn.Linear is (uniform in +-1/sqrt(fan_in)), member m from its own
    torch.Generator, so a member does not depend on how many others train beside it.
    """

    def __init__(self, sizes: list[int], gens: list[torch.Generator], slope: float, out: str, dtype) -> None:
        super().__init__()
        self.slope, self.out = slope, out
        self.W, self.b = torch.nn.ParameterList(), torch.nn.ParameterList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            k = 1.0 / math.sqrt(fan_in)
            w = torch.stack([(torch.rand(fan_in, fan_out, generator=g, dtype=dtype) * 2 - 1) * k for g in gens])
            b = torch.stack([(torch.rand(1, fan_out, generator=g, dtype=dtype) * 2 - 1) * k for g in gens])
            self.W.append(torch.nn.Parameter(w))
            self.b.append(torch.nn.Parameter(b))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Hidden layers LeakyReLU(slope), output sigmoid."""
        n = len(self.W)
        for i, (w, b) in enumerate(zip(self.W, self.b)):
            x = torch.baddbmm(b, x, w)
            if i < n - 1:
                x = torch.nn.functional.leaky_relu(x, self.slope)
        return torch.sigmoid(x)


class DirectGenerator(torch.nn.Module):
    """The parameters themselves: z = sigmoid(theta), theta (M, 1, d) in logit space."""

    def __init__(self, z0: torch.Tensor) -> None:
        super().__init__()
        self.theta = torch.nn.Parameter(torch.logit(z0)[:, None, :])

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        """Ignores the noise's values; (M, K, d) copies of the current parameters."""
        return torch.sigmoid(self.theta).expand(-1, noise.shape[1], -1)


def clip_per_member(params: list[torch.nn.Parameter], max_norm: float) -> None:
    """torch.nn.utils.clip_grad_norm_ applied to each member (leading axis) separately."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    sq = sum(g.pow(2).reshape(g.shape[0], -1).sum(dim=1) for g in grads)
    coef = (max_norm / (sq.sqrt() + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(coef.view(-1, *([1] * (g.dim() - 1))))


class GANSolver(Solver):
    """Least-squares GAN with the collaboration's reference configuration (see module docstring)."""

    name = "gan"

    def __init__(
        self,
        dim: int,
        seed: int = 0,
        *,
        generator: str = "reference",
        ensemble: int = 1,
        batch_size: int = 512,
        param_sets: int | None = None,
        d_lr: float = 1e-4,
        g_lr: float | None = None,
        betas: tuple[float, float] | list[float] = (0.5, 0.999),
        grad_clip: float = 1.0,
        hidden: int = 128,
        layers: int = 4,
        leaky_slope: float = 0.2,
        noise_mean: float = 0.5,
        noise_std: float = 0.2,
        xsec_weight: float = 1.0,
        average_last: float = 0.2,
        log_every: int = 100,
        device: str = "cpu",
        torch_threads: int | None = 1,
    ) -> None:
        if generator not in GENERATORS:
            raise ValueError(f"gan: generator must be one of {GENERATORS}; got '{generator}'")
        if device not in ("cpu", "cuda", "auto"):
            raise ValueError(f"gan: device must be 'cpu', 'cuda' or 'auto'; got '{device}'")
        if device == "cuda" and not torch.cuda.is_available():
            # Said before any run directory exists, in one line (not a traceback mid-run).
            raise ConfigError("gan: device 'cuda' asked for but torch sees no GPU (use --device cpu or auto)")
        if param_sets is None:
            param_sets = 1 if generator == "direct" else 16
        if g_lr is None:
            # Upstream's 1e-5 is for network weights; a logit moves ~lr per Adam step.
            g_lr = 1e-5 if generator == "reference" else 2e-2
        if ensemble < 1 or batch_size < 2 or param_sets < 1 or batch_size % param_sets:
            raise ValueError("gan: need ensemble >= 1, batch_size >= 2 and param_sets dividing batch_size")
        if not 0.0 <= average_last < 1.0 or log_every < 1 or min(d_lr, g_lr, grad_clip, noise_std) <= 0:
            raise ValueError("gan: need 0 <= average_last < 1, log_every >= 1 and positive rates/clip/noise_std")
        super().__init__(
            dim, seed, generator=generator, ensemble=ensemble, batch_size=batch_size, param_sets=param_sets,
            d_lr=d_lr, g_lr=g_lr, betas=list(betas), grad_clip=grad_clip, hidden=hidden, layers=layers,
            leaky_slope=leaky_slope, noise_mean=noise_mean, noise_std=noise_std, xsec_weight=xsec_weight,
            average_last=average_last, log_every=log_every, device=device, torch_threads=torch_threads,
        )  # fmt: skip
        self.M, self.B, self.K = int(ensemble), int(batch_size), int(param_sets)
        self.step = 0
        self.events_generated = 0
        self._state: dict | None = None
        self._avg_sum = np.zeros((self.M, dim))
        self._avg_n = 0
        self._last_z = np.full((self.M, dim), np.nan)
        self._traj: list[np.ndarray] = []

    # -- construction ------------------------------------------------------------------------
    def _device(self) -> torch.device:
        dev = self.settings["device"]
        if dev == "auto":
            dev = "cuda" if torch.cuda.is_available() else "cpu"
        if dev == "cuda" and not torch.cuda.is_available():
            raise ValueError("gan: device 'cuda' asked for but torch sees no GPU")
        return torch.device(dev)

    def _build(self, device: torch.device) -> None:
        s = self.settings
        gens = []
        for m in range(self.M):
            g = torch.Generator().manual_seed(rngmod.generation_seed(self.seed, 1_000_000 + m))
            gens.append(g)
        f32 = torch.float32
        h = [s["hidden"]] * s["layers"]
        self.D = BatchedMLP([2, *h, 1], gens, s["leaky_slope"], "sigmoid", f32).to(device)
        if s["generator"] == "reference":
            self.G = BatchedMLP([self.dim, *h, self.dim], gens, s["leaky_slope"], "sigmoid", f32).to(device)
        else:
            z0 = torch.stack([0.2 + 0.6 * torch.rand(self.dim, generator=g, dtype=f32) for g in gens])
            self.G = DirectGenerator(z0).to(device)
        betas = tuple(s["betas"])
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=s["d_lr"], betas=betas)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=s["g_lr"], betas=betas)

    # -- one training step -------------------------------------------------------------------
    def _draws(self, problem: Any, device: torch.device) -> tuple:
        """This step's random numbers, keyed by (seed, step): data rows, uniforms, detector, noise."""
        exp, M, B, K = problem.experiment, self.M, self.B, self.K
        rng = rngmod.stream(rngmod.generation_seed(self.seed, self.step), GAN_STREAM)
        rows = rng.integers(0, problem.data.n_events, (M, B))
        u = exp.sampler.draw(rng, M * B, exp.theory.n_obs).reshape(M * K, B // K, -1)
        det = exp.detector.draw(rng, M * B)
        if det is not None:  # (3, M*B) -> one (3, B/K) block per parameter set
            det = det.reshape(3, M * K, B // K).transpose(1, 0, 2)
        noise = rng.normal(self.settings["noise_mean"], self.settings["noise_std"], (M, K, self.dim))

        def t(a, dt=torch.float64):
            return None if a is None else torch.as_tensor(np.ascontiguousarray(a), dtype=dt, device=device)

        return torch.as_tensor(rows, device=device), t(u), t(det), t(noise, torch.float32)

    def _train_step(self, problem: Any, pipe: TorchPipeline, real: torch.Tensor, meas: torch.Tensor) -> dict:
        s, M, B, K = self.settings, self.M, self.B, self.K
        rows, u, det, noise = self._draws(problem, pipe.device)
        z = self.G(noise)  # (M, K, d), float32
        events, totals, _ = pipe.simulate(z.reshape(M * K, -1).double(), u, det)
        events = events.reshape(M, B, -1)
        ok = torch.isfinite(events).all(dim=-1)
        events = torch.where(ok[..., None], events, torch.zeros_like(events))
        w = pipe.soft_mask(events) * ok  # (M, B): upstream's differentiable selection
        wsum = w.sum(dim=1).clamp_min(1e-12)
        fake = events.float()
        x_real = real[rows]  # (M, B, 2)

        # Discriminator: MSE to 1 on measured events, to 0 on (selection-weighted) synthetic ones.
        self.opt_d.zero_grad(set_to_none=True)
        d_real = self.D(x_real)[..., 0]
        d_fake = self.D(fake.detach())[..., 0]
        wd = w.detach().float()
        loss_real = ((d_real - 1) ** 2).mean(dim=1)
        loss_fake = (wd * d_fake**2).sum(dim=1) / wsum.detach().float()
        (loss_real + loss_fake).sum().backward()
        clip_per_member(list(self.D.parameters()), s["grad_clip"])
        self.opt_d.step()

        # Generator: make D say "real", and match the two measured totals (relative MSE).
        self.opt_g.zero_grad(set_to_none=True)
        g_fake = self.D(fake)[..., 0]
        g_adv = (w.float() * (g_fake - 1) ** 2).sum(dim=1) / wsum.float()
        rel = (totals.reshape(M, K, -1) - meas) / meas
        g_x = s["xsec_weight"] * (rel**2).mean(dim=(1, 2))
        (g_adv + g_x.float()).sum().backward()
        clip_per_member(list(self.G.parameters()), s["grad_clip"])
        self.opt_g.step()
        self.D.zero_grad(set_to_none=True)  # D's gradients from the generator step are not used

        with torch.no_grad():
            acc = 0.5 * ((d_real > 0.5).float().mean(dim=1) + (wd * (d_fake < 0.5)).sum(dim=1) / wd.sum(dim=1))
        self.step += 1
        self.events_generated += M * B
        return {
            "z": z.detach().mean(dim=1).cpu().double().numpy(),
            "d_loss_norm": ((loss_real + loss_fake) / 2 / 0.25).detach().cpu().numpy(),
            "g_adv_norm": (g_adv / 0.25).detach().cpu().numpy(),
            "g_xsec": g_x.detach().cpu().numpy(),
            "d_acc": acc.cpu().numpy(),
        }

    # -- the run -----------------------------------------------------------------------------
    def _evaluations(self, n_events: int) -> int:
        return math.ceil(self.events_generated / n_events)

    def run(self, problem: Any, budget: int, evaluator: Any = None, callback: Callback | None = None) -> SolverResult:
        """Train until the generated events reach ``budget`` evaluations' worth (or the callback stops).

        ``evaluator`` is not used: the GAN simulates its own small batches in torch. Every
        ``log_every`` steps the callback gets the members' current parameters as ``Z`` and
        their generator losses (normalised adversarial + cross-section term) as ``scores``.
        """
        if budget <= 0:
            raise ValueError("budget must be positive")
        s = self.settings
        if s["torch_threads"]:
            torch.set_num_threads(int(s["torch_threads"]))
        t0 = time.perf_counter()
        device = self._device()
        pipe = make_torch_pipeline(problem.space, problem.experiment, device=str(device))
        n_ev = problem.experiment.n_events
        total_steps = (budget * n_ev) // (self.M * self.B)
        if total_steps <= self.step:
            raise ValueError(f"gan: budget {budget} is less than one training step ({self.M * self.B} events)")
        self._build(device)
        if self._state is not None:
            self._load_modules(self._state)
        real = torch.as_tensor(problem.data.events, dtype=torch.float32, device=device)
        meas = pipe.tensor(problem.data.xsec_total)
        avg_from = int(total_steps * (1.0 - s["average_last"]))
        if self.step <= avg_from:  # a resumed run with a new budget restarts the averaging window
            self._avg_sum[:], self._avg_n = 0.0, 0
        rec = self._answer()
        while self.step < total_steps and not self.stopped:
            info = self._train_step(problem, pipe, real, meas)
            self._last_z = info["z"]
            if self.step > avg_from:  # Polyak average of the last part damps the adversarial jitter
                self._avg_sum += info["z"]
                self._avg_n += 1
            if self.step % s["log_every"] == 0 or self.step == total_steps:
                self.evaluations, self.generation = self._evaluations(n_ev), self.step
                rec = self._answer()
                self._traj.append(rec)
                self._traj = self._traj[-20:]
                extra = {k: float(np.mean(info[k])) for k in ("d_loss_norm", "g_adv_norm", "g_xsec", "d_acc")}
                scores = (info["g_adv_norm"] + info["g_xsec"]).astype(np.float64)
                seed = rngmod.generation_seed(self.seed, self.step - 1)
                prog = Progress(self.step, self.evaluations, info["z"].copy(), scores, seed, rec, extra)
                if callback is not None and callback(self, prog):
                    self.stopped = True
        self.evaluations, self.generation = self._evaluations(n_ev), self.step
        z, members = self._answer(), self._members()
        extra: dict[str, Any] = {"steps": self.step, "members": members.tolist(), "generator": s["generator"]}
        if self.M > 1:
            extra["spread_unit"], extra["spread_kind"] = members.std(axis=0, ddof=1).tolist(), "ensemble"
        elif s["generator"] == "reference":
            extra["spread_unit"], extra["spread_kind"] = self._generator_spread(device).tolist(), "generator"
        else:
            jitter = np.std(self._traj, axis=0) if len(self._traj) > 1 else np.full(self.dim, np.nan)
            extra["spread_unit"], extra["spread_kind"] = jitter.tolist(), "trajectory"
        return SolverResult(
            z=z,
            evaluations=self.evaluations,
            generations=self.step,
            converged=False,
            message="stopped by callback" if self.stopped else "budget exhausted",
            wall_time_s=time.perf_counter() - t0,
            extra=extra,
        )

    def _members(self) -> np.ndarray:
        """Each member's answer: its averaged parameters, or the latest before averaging starts."""
        return self._avg_sum / self._avg_n if self._avg_n else self._last_z

    def _answer(self) -> np.ndarray:
        m = self._members()
        return np.full(self.dim, 0.5) if np.isnan(m).any() else m.mean(axis=0)

    def _generator_spread(self, device: torch.device) -> np.ndarray:
        """Std of the reference generator's outputs over 4096 noise draws (a single member)."""
        g = torch.Generator(device="cpu").manual_seed(self.seed)
        noise = torch.normal(self.settings["noise_mean"], self.settings["noise_std"], (1, 4096, self.dim), generator=g)
        with torch.no_grad():
            return self.G(noise.to(device))[0].std(dim=0).cpu().double().numpy()

    # -- checkpoints -------------------------------------------------------------------------
    def _load_modules(self, state: dict) -> None:
        self.D.load_state_dict(state["D"])
        self.G.load_state_dict(state["G"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.opt_g.load_state_dict(state["opt_g"])

    def state_dict(self) -> dict:
        """Networks, optimisers and counters; resuming continues bit-identically on CPU
        (every step's random numbers are keyed by (seed, step))."""
        out = {
            "generation": self.generation, "evaluations": self.evaluations, "seed": self.seed, "step": self.step,
            "events_generated": self.events_generated, "avg_sum": self._avg_sum.copy(), "avg_n": self._avg_n,
            "last_z": self._last_z.copy(), "traj": [t.copy() for t in self._traj],
        }  # fmt: skip
        if hasattr(self, "D"):
            cpu = {k: v.detach().cpu() for k, v in self.D.state_dict().items()}
            out.update(D=cpu, G={k: v.detach().cpu() for k, v in self.G.state_dict().items()})
            out.update(opt_d=self.opt_d.state_dict(), opt_g=self.opt_g.state_dict())
        elif self._state is not None:
            out.update({k: self._state[k] for k in ("D", "G", "opt_d", "opt_g")})
        return out

    def load_state_dict(self, state: dict) -> None:
        """Restore from ``state_dict()``; networks are rebuilt and loaded at the next ``run``."""
        self.generation, self.evaluations = int(state["generation"]), int(state["evaluations"])
        self.step, self.events_generated = int(state["step"]), int(state["events_generated"])
        self._avg_sum, self._avg_n = np.array(state["avg_sum"]), int(state["avg_n"])
        self._last_z, self._traj = np.array(state["last_z"]), [np.array(t) for t in state["traj"]]
        self._state = state if "D" in state else None
