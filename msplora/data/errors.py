"""The error raised for unusable training data, before any training starts."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

__all__ = ["DataError", "missing_column_error"]


class DataError(ValueError):
    """Data that cannot be turned into training examples: the message names the value and the fix."""


def missing_column_error(role: str, column: str, present: Sequence[str], argument: str) -> DataError:
    """Build the error for a column that is not in the data, suggesting the closest present name."""
    message = f"The {role} column {column!r} is not in the data; its columns are {list(present)}."
    close = difflib.get_close_matches(column, list(present), n=1, cutoff=0.5)
    if close:
        message += f" Did you mean {argument}={close[0]!r}?"
    else:
        message += f" Pass {argument}= with one of them."
    return DataError(message)
