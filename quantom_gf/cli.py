"""Shared command-line plumbing: one clear line and a non-zero exit for bad input."""

from __future__ import annotations

import sys
from collections.abc import Callable

from .errors import QuantomError


def guarded(main: Callable[[list[str] | None], int]) -> Callable[[list[str] | None], int]:
    """Wrap a command's main so user errors print one line on stderr and exit 2."""

    def wrapper(argv: list[str] | None = None) -> int:
        try:
            return main(argv)
        except QuantomError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130

    wrapper.__doc__ = main.__doc__
    return wrapper
