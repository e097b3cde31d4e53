"""Solvers side by side on the default closure test: evaluations and wall time to closure.

    python benchmarks/solvers.py [--rl] [--events N] [--seed S]

Rows: this package's ga, sa, cmaes (their presets), pycma with its defaults (popsize 4+3 ln d,
sigma0 0.3, default termination, answer = its best single evaluation, as a user of cma.fmin2
gets it), scipy's differential_evolution (vectorised population calls, default settings, answer
= its best member), Nevergrad's CMA if installed, and with --rl the RL and GAN strategies.

Every row fits the same Problem and the same measured data, scoring each population on fresh
common random numbers. "To closure" is the first evaluation count at which the running answer
lies within 2 sigma of the truth in every parameter, sigma being the curvature uncertainty at
the truth (computed once, the same yardstick for every row); "final" tells whether the last
answer is inside. Ratios are against this package's cmaes, measured in the same run.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from quantom_gf import rng as rngmod
from quantom_gf import uq
from quantom_gf.build import build_problem
from quantom_gf.fit import make_solver, strategy_preset


class Tracker:
    """Wraps a Problem: counts evaluations, times them, records the running answer's closure."""

    def __init__(self, problem, sigma_unit: np.ndarray) -> None:
        self.problem, self.sigma, self.zt = problem, sigma_unit, problem.space.truth_unit
        self.evals, self.t0, self.first = 0, time.perf_counter(), None
        self.dim = problem.dim

    def inside(self, z: np.ndarray) -> bool:
        return bool(np.all(np.abs(np.asarray(z) - self.zt) < 2 * self.sigma))

    def note(self, z: np.ndarray, evaluations: int | None = None) -> None:
        """Record the first time the running answer is inside (evaluations as the solver counts them)."""
        if self.first is None and self.inside(z):
            self.first = (self.evals if evaluations is None else evaluations, time.perf_counter() - self.t0)

    def evaluate(self, Z: np.ndarray, seed: int) -> np.ndarray:
        self.evals += len(Z)
        return self.problem.evaluate(Z, seed)

    def __getattr__(self, name):  # everything else (space, data, experiment, ...) from the Problem
        return getattr(self.problem, name)


def ours(name: str, problem, sigma, seed: int) -> dict:
    solver_name, preset = strategy_preset(name)
    tr = Tracker(problem, sigma)
    solver = make_solver(solver_name, problem.dim, seed, dict(preset.get("settings", {})))
    res = solver.run(tr, int(preset["budget"]), None, lambda sv, info: tr.note(info.recommendation, info.evaluations))
    tr.evals = res.evaluations  # the GAN simulates through its own torch pipeline, not tr.evaluate
    return row(name, tr, res.z)


def pycma_defaults(problem, sigma, seed: int, budget: int = 6000) -> dict:
    import cma

    tr = Tracker(problem, sigma)
    es = cma.CMAEvolutionStrategy(np.full(problem.dim, 0.5), 0.3, {"bounds": [0, 1], "seed": seed + 1,
                                                                   "verbose": -9, "maxfevals": budget})  # fmt: skip
    gen = 0
    while not es.stop():
        X = np.array(es.ask())
        es.tell(list(X), tr.evaluate(X, rngmod.generation_seed(seed, gen)).tolist())
        gen += 1
        tr.note(es.result.xbest)
    stop = ",".join(es.stop())
    return row("pycma defaults", tr, np.asarray(es.result.xbest), f"stopped: {stop}")


def scipy_de(problem, sigma, seed: int, budget: int = 6000) -> dict:
    from scipy.optimize import differential_evolution

    tr = Tracker(problem, sigma)
    state = {"gen": 0}

    def f(X):  # vectorised: X is (d, S)
        s = tr.evaluate(np.asarray(X).T, rngmod.generation_seed(seed, state["gen"]))
        state["gen"] += 1
        return s

    popsize = 15
    maxiter = max(1, budget // (popsize * problem.dim) - 1)
    kw = {"vectorized": True, "updating": "deferred", "polish": False, "maxiter": maxiter, "popsize": popsize}

    def callback(intermediate_result):  # scipy's new-style callback (named argument)
        tr.note(intermediate_result.x)

    res = differential_evolution(f, [(0, 1)] * problem.dim, rng=seed, callback=callback, **kw)
    return row("scipy differential_evolution", tr, res.x, res.message)


def nevergrad_cma(problem, sigma, seed: int) -> dict | None:
    try:
        import nevergrad  # noqa: F401
    except ImportError:
        return None
    return ours("nevergrad:CMA", problem, sigma, seed)


def row(name: str, tr: Tracker, z: np.ndarray, note: str = "") -> dict:
    return {"solver": name, "evaluations": tr.evals, "wall_s": time.perf_counter() - tr.t0,
            "evals_to_closure": None if tr.first is None else tr.first[0],
            "wall_to_closure_s": None if tr.first is None else tr.first[1],
            "final_inside": tr.inside(z), "max_dev_sigma": float(np.max(np.abs(z - tr.zt) / tr.sigma)),
            "note": note}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rl", action="store_true", help="add ppo, sac, td3 and gan rows (minutes each)")
    ap.add_argument("--events", type=int, default=100_000, help="events per evaluation and in the data")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", nargs="+", default=None, help="rows to run (cmaes always runs: the reference)")
    args = ap.parse_args()
    over = {"simulation": {"n_events": args.events}, "data": {"n_events": args.events}}
    problem = build_problem("proxy1d-detector", overrides=over)
    c = uq.curvature(problem, problem.space.truth_unit, 12345)
    sigma = np.sqrt(np.diag(c.cov))
    print("sigma (unit cube) at the truth:", np.round(sigma, 4))
    want = set(
        args.only or ["ga", "sa", "pycma", "de", "nevergrad"] + (["gan", "sac", "ppo", "td3"] if args.rl else [])
    )
    rows = [ours("cmaes", problem, sigma, args.seed)]
    rows += [ours(n, problem, sigma, args.seed) for n in ("ga", "sa") if n in want]
    rows += [pycma_defaults(problem, sigma, args.seed)] if "pycma" in want else []
    rows += [scipy_de(problem, sigma, args.seed)] if "de" in want else []
    ng = nevergrad_cma(problem, sigma, args.seed) if "nevergrad" in want else None
    rows += [ng] if ng else []
    rows += [ours(n, problem, sigma, args.seed) for n in ("gan", "sac", "ppo", "td3") if n in want]
    ref = rows[0]
    print("\n| solver | evals to closure | wall to closure (s) | evaluations | wall (s) | final inside 2 sigma "
          "| max dev (sigma) | evals ratio vs cmaes | wall ratio vs cmaes | note |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        e, w = r["evals_to_closure"], r["wall_to_closure_s"]
        er = "" if e is None or not ref["evals_to_closure"] else f"{e / ref['evals_to_closure']:.2f}"
        wr = "" if w is None or not ref["wall_to_closure_s"] else f"{w / ref['wall_to_closure_s']:.2f}"
        print(f"| {r['solver']} | {'never' if e is None else e} | {'' if w is None else f'{w:.1f}'} | "
              f"{r['evaluations']} | {r['wall_s']:.1f} | {'yes' if r['final_inside'] else 'no'} | "
              f"{r['max_dev_sigma']:.1f} | {er} | {wr} | {r['note']} |")  # fmt: skip


if __name__ == "__main__":
    main()
