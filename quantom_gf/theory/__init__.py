"""Theories by name. Adding one: a module with a Theory subclass, plus one line here."""

from __future__ import annotations

from .base import Theory
from .proxy1d import Proxy1DTheory

THEORIES: dict[str, type[Theory]] = {
    "proxy1d": Proxy1DTheory,
}

__all__ = ["THEORIES", "Theory", "Proxy1DTheory"]
