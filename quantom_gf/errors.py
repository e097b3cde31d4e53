"""User-facing errors: one clear line, no traceback, from every command."""

from __future__ import annotations


class QuantomError(Exception):
    """A problem with the user's input (preset, data file, option) worth one line on stderr."""


class ConfigError(QuantomError):
    """An unknown name, unknown key or bad value in a preset or on the command line."""


class DataError(QuantomError):
    """A measured-data file that is missing, malformed or inconsistent with the environment."""
