"""Keep datasets' progress bars off while the library works, because library code shows no output."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import datasets

__all__ = ["progress_bars_disabled"]


@contextlib.contextmanager
def progress_bars_disabled() -> Iterator[None]:
    """Disable datasets' progress bars inside the block (or decorated function), then restore the caller's setting."""
    were_disabled = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not were_disabled:
            datasets.enable_progress_bars()
