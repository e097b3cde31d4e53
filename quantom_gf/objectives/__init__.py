"""Objectives by name. Adding one: a module with an Objective subclass, plus one line here."""

from __future__ import annotations

from .base import WORST_SCORE, Objective, SimBatch, xsec_chi2
from .binned import BinnedLikelihood, two_sample_deviance
from .energy import EnergyDistance
from .logsad import LogSAD

OBJECTIVES: dict[str, type[Objective]] = {
    "binned_likelihood": BinnedLikelihood,
    "energy_distance": EnergyDistance,
    "log_sad": LogSAD,
}

__all__ = [
    "OBJECTIVES",
    "WORST_SCORE",
    "BinnedLikelihood",
    "EnergyDistance",
    "LogSAD",
    "Objective",
    "SimBatch",
    "two_sample_deviance",
    "xsec_chi2",
]
