"""Samplers by name."""

from __future__ import annotations

from .base import Sampler
from .inverse_cdf import InverseCDFSampler

SAMPLERS: dict[str, type[Sampler]] = {
    "inverse_cdf": InverseCDFSampler,
}

__all__ = ["SAMPLERS", "Sampler", "InverseCDFSampler"]
