"""Samplers by name."""

from __future__ import annotations

from .base import Sampler
from .inverse_cdf import InverseCDFSampler
from .loits import LOITSSampler

SAMPLERS: dict[str, type[Sampler]] = {
    "inverse_cdf": InverseCDFSampler,
    "loits": LOITSSampler,
}

__all__ = ["SAMPLERS", "Sampler", "InverseCDFSampler", "LOITSSampler"]
