"""Detectors by name ("none" is the identity)."""

from __future__ import annotations

from .base import Detector, IdentityDetector
from .simplified import SimplifiedDetector

DETECTORS: dict[str, type[Detector]] = {
    "none": IdentityDetector,
    "simplified": SimplifiedDetector,
}

__all__ = ["DETECTORS", "Detector", "IdentityDetector", "SimplifiedDetector"]
