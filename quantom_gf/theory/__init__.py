"""Theories by name. Adding one: a module with a Theory subclass, plus one line here."""

from __future__ import annotations

from .base import Grid2D, Theory, Theory2D
from .duke_owens import DukeOwensTheory
from .proxy1d import Proxy1DTheory
from .proxy2d import Proxy2DTheory

THEORIES: dict[str, type[Theory]] = {
    "proxy1d": Proxy1DTheory,
    "proxy2d": Proxy2DTheory,
    "duke_owens": DukeOwensTheory,
}

__all__ = ["THEORIES", "Grid2D", "Theory", "Theory2D", "Proxy1DTheory", "Proxy2DTheory", "DukeOwensTheory"]
