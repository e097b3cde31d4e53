"""ParameterSpace: names, bounds and truth; the map between the unit cube and physical units."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import ConfigError


@dataclass(frozen=True)
class ParameterSpace:
    """Box-bounded parameters. Solvers only ever see the unit cube [0, 1]^d."""

    names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    truth: np.ndarray | None = field(default=None)

    def __init__(
        self,
        names: Sequence[str],
        lower: Sequence[float],
        upper: Sequence[float],
        truth: Sequence[float] | None = None,
    ) -> None:
        lo = np.asarray(lower, dtype=np.float64)
        hi = np.asarray(upper, dtype=np.float64)
        if not (len(names) == lo.size == hi.size) or lo.ndim != 1:
            raise ConfigError(
                f"parameters: names, lower and upper must have the same length (got {len(names)}, {lo.size}, {hi.size})"
            )
        if not np.all(np.isfinite(lo)) or not np.all(np.isfinite(hi)) or np.any(hi <= lo):
            raise ConfigError("parameters: every bound must be finite with lower < upper")
        tr = None
        if truth is not None:
            tr = np.asarray(truth, dtype=np.float64)
            if tr.shape != lo.shape or not np.all(np.isfinite(tr)):
                raise ConfigError(f"parameters: truth must be {lo.size} finite numbers")
        object.__setattr__(self, "names", tuple(str(n) for n in names))
        object.__setattr__(self, "lower", lo)
        object.__setattr__(self, "upper", hi)
        object.__setattr__(self, "truth", tr)

    @property
    def dim(self) -> int:
        """Number of parameters d."""
        return len(self.names)

    @property
    def width(self) -> np.ndarray:
        """upper - lower, the scale between unit and physical coordinates."""
        return self.upper - self.lower

    def to_physical(self, z: np.ndarray) -> np.ndarray:
        """Unit-cube coordinates (..., d) -> physical parameters (..., d)."""
        return self.lower + np.asarray(z, dtype=np.float64) * self.width

    def to_unit(self, p: np.ndarray) -> np.ndarray:
        """Physical parameters (..., d) -> unit-cube coordinates (..., d)."""
        return (np.asarray(p, dtype=np.float64) - self.lower) / self.width

    @property
    def truth_unit(self) -> np.ndarray | None:
        """Truth in unit-cube coordinates, or None when unknown."""
        return None if self.truth is None else self.to_unit(self.truth)

    def with_truth(self, truth: Sequence[float] | None) -> ParameterSpace:
        """A copy with another truth (None when unknown)."""
        return ParameterSpace(self.names, self.lower, self.upper, truth)

    def check_population(self, Z: np.ndarray) -> np.ndarray:
        """Validate a population (P, d) in the unit cube; return it as float64, clipped to [0, 1]."""
        Z = np.asarray(Z, dtype=np.float64)
        if Z.ndim == 1 and Z.size == self.dim:
            Z = Z[None, :]
        if Z.ndim != 2 or Z.shape[1] != self.dim:
            raise ValueError(f"population must have shape (P, {self.dim}); got {Z.shape}")
        if not np.all(np.isfinite(Z)):
            raise ValueError("population contains NaN or infinite values")
        # Solvers and RL policies may overshoot by rounding; the cube is the contract.
        return np.clip(Z, 0.0, 1.0)

    def to_dict(self) -> dict:
        """Plain-data form for config files and result.json."""
        out = {"names": list(self.names), "lower": self.lower.tolist(), "upper": self.upper.tolist()}
        if self.truth is not None:
            out["truth"] = self.truth.tolist()
        return out
