"""Counter-based random streams (Philox keyed by seed and purpose).

Every random number in the pipeline comes from a stream named by (seed, purpose, block), so
results never depend on call order, on how a population is split, or on the process that ran it.
"""

from __future__ import annotations

import numpy as np

# Purposes: synthetic (simulation) and measured (data) streams never share numbers.
SIM_SAMPLER = 1
SIM_DETECTOR = 2
DATA_SAMPLER = 11
DATA_DETECTOR = 12
DATA_XSEC = 13
SOLVER = 21  # evaluation seeds of generations
SOLVER_STATE = 22  # a solver's own draws (mutations, proposals, ...)
UQ = 31


def stream(seed: int, purpose: int, block: int = 0) -> np.random.Generator:
    """A Philox generator for (seed, purpose, block); the same key always gives the same numbers."""
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed}")
    ss = np.random.SeedSequence(entropy=int(seed), spawn_key=(int(purpose), int(block)))
    return np.random.Generator(np.random.Philox(ss))


def generation_seed(seed: int, generation: int) -> int:
    """The evaluation seed of one generation: fresh each generation, common within it."""
    ss = np.random.SeedSequence(entropy=int(seed), spawn_key=(SOLVER, int(generation)))
    return int(ss.generate_state(1, dtype=np.uint32)[0])
