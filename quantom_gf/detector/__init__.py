"""Detectors by name ("none" is the identity)."""

from __future__ import annotations

from .base import Detector, IdentityDetector
from .dis2d import DISDetector
from .simplified import SimplifiedDetector
from .vae import VAEDetector

DETECTORS: dict[str, type[Detector]] = {
    "none": IdentityDetector,
    "simplified": SimplifiedDetector,
    "dis2d": DISDetector,
    "vae": VAEDetector,
}

__all__ = ["DETECTORS", "Detector", "DISDetector", "IdentityDetector", "SimplifiedDetector", "VAEDetector"]
