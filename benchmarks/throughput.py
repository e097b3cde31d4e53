"""Pipeline throughput against numpy's raw uniform fill rate, measured in the same run.

    python benchmarks/throughput.py [--env proxy1d-detector] [--members 64] [--events 100000] [--repeats 7]

Evaluates one population (default 64 members x 100,000 events, env proxy1d-detector, default
objective, float64) in a single process on one core, and prints:

- pipeline events per second per core (members x events / best wall time of ``Problem.evaluate``,
  a fresh seed each repeat so the random draws are included, as in a real generation);
- numpy's raw uniform fill rate on one core: ``Generator.random(out=buf)`` into a preallocated
  float64 buffer of members x events entries (6.4M), warm, best of 5;
- their ratio, on a line that starts with ``ratio`` (events/s over uniforms/s; its inverse is
  how many uniform fills one event costs), and the same ratio by CPU time (robust to load);
- the per-stage time breakdown of one evaluation (same chunking as ``Problem.evaluate``);
- the peak memory of one evaluation (tracemalloc peak of its numpy allocations), and the
  maximum resident set of the whole process as an upper bound; both must stay under 2 GiB.

Thread pools are pinned to one thread before numpy is imported, so "per core" is honest; the
CPU time over wall time of the timed evaluations is printed as a check.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402

from quantom_gf.build import build_problem  # noqa: E402
from quantom_gf.objectives import BinnedLikelihood, two_sample_deviance, xsec_chi2  # noqa: E402
from quantom_gf.objectives.histogram import hist2d  # noqa: E402

MEMORY_LIMIT = 2 * 2**30


class Best:
    """Best (smallest) wall and CPU time of repeated calls, and CPU/wall over all of them."""

    def __init__(self) -> None:
        self.wall = self.cpu = np.inf
        self.sum_wall = self.sum_cpu = 0.0

    def time(self, fn) -> None:
        """Time one call of ``fn()``."""
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        self.wall, self.cpu = min(self.wall, dt), min(self.cpu, dc)
        self.sum_wall, self.sum_cpu = self.sum_wall + dt, self.sum_cpu + dc

    @property
    def cpu_share(self) -> float:
        """CPU time over wall time of all calls (below 1: waiting for a core)."""
        return self.sum_cpu / self.sum_wall


def stage_times(problem, Z: np.ndarray, seed: int) -> dict[str, float]:
    """Seconds per stage of one evaluation, following Problem.evaluate's chunk loop."""
    exp, obj = problem.experiment, problem.objective
    assert isinstance(obj, BinnedLikelihood), "the breakdown follows the default objective"
    params = problem.space.to_physical(problem.space.check_population(Z))
    t = dict.fromkeys(("random draws", "theory", "sampler", "detector", "selection", "objective histogram"), 0.0)
    t["objective rest"] = 0.0
    clock = time.perf_counter
    t0 = clock()
    u, d = exp.noise(seed)
    t["random draws"] += clock() - t0
    for a in range(0, len(params), problem.chunk):
        p = params[a : a + problem.chunk]
        t0 = clock()
        dens = exp.theory.densities(p)
        totals = exp.theory.totals(dens)
        t1 = clock()
        events, valid = exp.sampler.sample(exp.theory.edges, dens, u)
        t2 = clock()
        events = exp.detector.apply(events, d)
        t3 = clock()
        mask = exp.selection.mask(events)
        t4 = clock()
        m = hist2d(events, mask, *obj.inner)
        t5 = clock()
        totals = np.where(valid[:, None], totals, 0.0)
        r = obj.data.n_generated / exp.n_events
        two_sample_deviance(obj.n, m, r) + obj.xsec_weight * xsec_chi2(totals, obj.data)
        t6 = clock()
        for k, dt in zip(list(t)[1:], (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5)):
            t[k] += dt
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="proxy1d-detector")
    ap.add_argument("--members", type=int, default=64)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--no-2d", action="store_true", help="skip the 2D (LOITS) section")
    args = ap.parse_args()
    P, N = args.members, args.events

    problem = build_problem(args.env, overrides={"simulation": {"n_events": N}})
    Z = np.random.default_rng(0).random((P, 6))
    Z[0] = problem.space.truth_unit
    problem.evaluate(Z, seed=1)  # warm up: numba compile (or cache load), page in
    problem.evaluate(Z, seed=2)

    # Pipeline (a fresh seed each repeat: random draws included, as in a generation) and the
    # uniform fill, interleaved so that load from other processes hits both alike.
    buf = np.empty(P * N, dtype=np.float64)
    gens = {"PCG64": np.random.Generator(np.random.PCG64(1)), "Philox": np.random.Generator(np.random.Philox(1))}
    for g in gens.values():
        g.random(out=buf)  # warm: page in the buffer
    ev, fills = Best(), {k: Best() for k in gens}
    for i in range(args.repeats):
        ev.time(lambda i=i: problem.evaluate(Z, seed=1000 + i))
        if i < 5:  # the fill: best of 5
            for k, g in gens.items():
                fills[k].time(lambda g=g: g.random(out=buf))
    rate, rate_cpu = P * N / ev.wall, P * N / ev.cpu
    fill = {k: P * N / b.wall for k, b in fills.items()}
    fill_cpu = P * N / fills["PCG64"].cpu

    stages = None
    for i in range(args.repeats):  # best of the repeats, stage by stage
        s = stage_times(problem, Z, seed=2000 + i)
        stages = s if stages is None else {k: min(stages[k], s[k]) for k in s}

    # Peak memory of one evaluation (tracemalloc slows allocation, so untimed and separate);
    # the process's maximum resident set bounds everything (interpreter, numba, libraries).
    tracemalloc.start()
    problem.evaluate(Z, seed=3000)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB

    print(f"env {problem.name}, objective {problem.config['objective']['name']}, float64")
    print(f"population {P} members x {N:,} events = {P * N:,} events; chunk {problem.chunk} members")
    print(f"evaluate: best {ev.wall * 1e3:.1f} ms of {args.repeats}; CPU/wall {ev.cpu_share:.2f} (1.00: one busy core)")
    print(f"pipeline          {rate / 1e6:8.2f} M events/s per core")
    print(f"numpy fill PCG64  {fill['PCG64'] / 1e6:8.2f} M uniforms/s per core (Generator.random(out=buf), {P * N:,})")
    print(f"numpy fill Philox {fill['Philox'] / 1e6:8.2f} M uniforms/s per core (the pipeline's bit generator)")
    print(f"ratio pipeline/numpy_fill = {rate / fill['PCG64']:.3f} (events/s over PCG64 uniforms/s, best wall times)")
    cpu_line = f"{rate_cpu / 1e6:.2f} M events/s / {fill_cpu / 1e6:.2f} M uniforms/s = {rate_cpu / fill_cpu:.3f}"
    print(f"  by CPU time: {cpu_line}")
    total = sum(stages.values())
    print(f"stages (best of {args.repeats} each, sum {total * 1e3:.1f} ms):")
    for k, v in stages.items():
        print(f"  {k:20s} {v * 1e3:8.2f} ms  {100 * v / total:5.1f}%  {P * N / max(v, 1e-12) / 1e6:9.1f} M events/s")
    print(f"peak memory of one evaluation (tracemalloc): {peak / 2**20:.1f} MiB")
    print(f"max RSS of the whole benchmark process:     {max_rss / 2**20:.1f} MiB")
    if max(peak, max_rss) > MEMORY_LIMIT:
        raise SystemExit(f"peak memory above {MEMORY_LIMIT / 2**30:.0f} GiB")
    if not args.no_2d:
        section_2d(P, N, max(3, args.repeats // 2))


# =============================================================================================
# 2D section (LOITS, SPEC 2c): added beside the 1D benchmark above, which it does not change.
# =============================================================================================

COLLAB_RATE = 1e7 / 3.0  # the collaboration's CPU figure: ~1e7 events in 3 s


def section_2d(P: int, N: int, repeats: int) -> None:
    """LOITS events per second per core against numpy's raw uniform fill, and the 2D pipelines.

    - LOITS alone: the sampler on the lite 2D theory's densities (50 x 50 cells, 10 line points),
      P members x N events, common uniforms drawn outside the timing (as the 1D line compares
      the sampler's work with the fill); each 2D event costs two uniforms, so the fill is
      timed for 2 P N numbers and the ratio is events/s over (uniform pairs)/s;
    - the full proxy2d pipeline (theory, LOITS, 2x2 smearing, selection, binned likelihood) and
      Duke & Owens (two experiments, VAE surrogate) through Problem.evaluate, draws included;
    - the collaboration's CPU figure (~1e7 events in 3 s) for scale.
    """
    from quantom_gf.sampling import LOITSSampler
    from quantom_gf.theory import Proxy2DTheory

    th, sampler = Proxy2DTheory(), LOITSSampler()
    space = th.parameter_space()
    Z = np.random.default_rng(0).uniform(0.2, 0.8, (P, space.dim))
    dens = th.densities(space.to_physical(Z))
    u = sampler.draw(np.random.default_rng(1), N, 2)
    sampler.sample(th.grid, dens[:2], u[:1000])  # compile / load the numba cache
    buf = np.empty(2 * P * N)
    g = np.random.Generator(np.random.PCG64(1))
    g.random(out=buf)
    samp, dens_t, fill = Best(), Best(), Best()
    for _ in range(repeats):
        samp.time(lambda: sampler.sample(th.grid, dens, u))
        dens_t.time(lambda: th.densities(space.to_physical(Z)))
        fill.time(lambda: g.random(out=buf))
    rate = P * N / samp.wall
    pair_rate = P * N / fill.wall  # uniform pairs per second
    print()
    print(f"--- 2D: LOITS (lite 2D theory, {th.grid.shape[0]} x {th.grid.shape[1]} cells, "
          f"{th.grid.n_line} line points), {P} members x {N:,} events, best of {repeats} ---")  # fmt: skip
    print(f"LOITS sampler        {rate / 1e6:8.2f} M events/s per core (CPU/wall {samp.cpu_share:.2f})")
    print(f"theory densities     {P / dens_t.wall:8.1f} members/s ({dens_t.wall / P * 1e3:.2f} ms per member)")
    print(f"numpy fill PCG64     {pair_rate / 1e6:8.2f} M uniform pairs/s per core ({2 * P * N:,} uniforms)")
    print(f"ratio LOITS/numpy_fill = {rate / pair_rate:.3f} (2D events/s over uniform pairs/s, best wall times)")
    cpu_rate, cpu_pairs = P * N / samp.cpu, P * N / fill.cpu
    by_cpu = f"{cpu_rate / 1e6:.2f} M events/s / {cpu_pairs / 1e6:.2f} M pairs/s = {cpu_rate / cpu_pairs:.3f}"
    print(f"  by CPU time: {by_cpu}")
    for env, over in (("proxy2d", {"simulation": {"n_events": N}}),
                      ("dis-duke-owens", {"simulation": {"n_events": N // 2}})):  # fmt: skip
        pb = build_problem(env, overrides=over)
        Zp = np.random.default_rng(0).uniform(0.3, 0.7, (min(P, 32), pb.dim))
        pb.evaluate(Zp, seed=1)
        ev = Best()
        for i in range(repeats):
            ev.time(lambda i=i, pb=pb, Zp=Zp: pb.evaluate(Zp, seed=100 + i))
        n_ev = len(Zp) * sum(e.n_events for e in pb.experiments)
        label = f"pipeline {env}"
        print(
            f"{label:<24} {n_ev / ev.wall / 1e6:8.2f} M events/s per core, {n_ev / ev.cpu / 1e6:.2f} by CPU time "
            f"({len(Zp)} members x {n_ev // len(Zp):,} events, detector {pb.experiment.detector.__class__.__name__})"
        )
    print(f"collaboration CPU    {COLLAB_RATE / 1e6:8.2f} M events/s (~1e7 events in 3 s)")


if __name__ == "__main__":
    main()
