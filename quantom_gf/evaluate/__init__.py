"""Evaluators: how a population's scores are computed (serial, MPI, asynchronous)."""

from __future__ import annotations

from .serial import SerialEvaluator

__all__ = ["SerialEvaluator"]
