"""Choose the text and label columns of raw data, and check that their values are usable."""

from __future__ import annotations

import math
from dataclasses import dataclass

import datasets

from .errors import DataError, missing_column_error

__all__ = ["Columns", "check_text", "prepare_labels", "resolve_columns"]

# Names tried in order when the caller names no column.
_TEXT_NAMES = ("text", "sentence", "sentence1", "review", "content", "document", "question", "prompt", "instruction")
_LABEL_NAMES = ("label", "labels", "score", "target", "class", "category")
_PAIR_NAMES = (("prompt", "response"), ("instruction", "response"), ("instruction", "output"), ("question", "answer"))


@dataclass(frozen=True)
class Columns:
    """The columns one task reads: text, optional second text, and label (None for causal-lm)."""

    text: str
    text_pair: str | None
    label: str | None


def resolve_columns(
    dataset: datasets.Dataset,
    task: str,
    *,
    text_column: str | None,
    text_pair_column: str | None,
    label_column: str | None,
    defaults: Columns | None = None,
) -> Columns:
    """Pick the columns for `task`: the caller's names, else the source's defaults, else common names.

    Raises:
        DataError: a named column is missing (the message suggests the closest
            name), or no column could be guessed.
    """
    present = list(dataset.column_names)
    for role, column, argument in (
        ("text", text_column, "text_column"),
        ("text pair", text_pair_column, "text_pair_column"),
        ("label", label_column, "label_column"),
    ):
        if column is not None and column not in present:
            raise missing_column_error(role, column, present, argument)

    if task == "causal-lm":
        if text_column is None and defaults is None:
            for prompt, response in _PAIR_NAMES:
                if prompt in present and response in present:
                    return Columns(prompt, response, None)
        # A caller-named prompt column pairs only with a caller-named response column.
        text = text_column or (defaults and defaults.text) or _guess(present, _TEXT_NAMES, "text")
        pair = text_pair_column
        if pair is None and text_column is None and defaults is not None:
            pair = defaults.text_pair
        return Columns(text, pair, None)

    text = text_column or (defaults and defaults.text) or _guess(present, _TEXT_NAMES, "text")
    pair = text_pair_column
    if pair is None and defaults is not None:
        pair = defaults.text_pair
    label = label_column or (defaults and defaults.label) or _guess(present, _LABEL_NAMES, "label")
    if label == text or label == pair:
        raise DataError(f"The label column {label!r} is also used as text; pass a different label_column.")
    return Columns(text, pair, label)


def check_text(dataset: datasets.Dataset, column: str) -> datasets.Dataset:
    """Raise on missing text values; turn non-string values into strings."""
    values = dataset[column]
    for row, value in enumerate(values):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            raise DataError(
                f"Row {row} (counting data rows from 0) has no value in the text column {column!r}. "
                f"Fill or drop that row."
            )
    if all(isinstance(value, str) for value in values):
        return dataset
    return dataset.map(lambda batch: {column: [str(value) for value in batch[column]]}, batched=True)


def prepare_labels(
    dataset: datasets.Dataset, column: str, task: str
) -> tuple[datasets.Dataset, list[str] | None]:
    """Validate the label column and encode it as `label`: class ids for classification, float for regression.

    Returns the dataset with a `label` column and the class names (None for
    regression).

    Raises:
        DataError: a label is missing or NaN, a regression label is not a
            number, or a classification label has only one class.
    """
    feature = dataset.features[column]
    values = dataset[column]
    for row, value in enumerate(values):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            raise DataError(
                f"Row {row} (counting data rows from 0) has no value (empty or NaN) in the label column "
                f"{column!r}. Fill or drop that row."
            )

    if task == "regression":
        numbers = []
        for row, value in enumerate(values):
            number = _as_number(value)
            if number is None:
                raise DataError(
                    f"Regression needs numeric labels, but row {row} (counting from 0) of column {column!r} is {value!r}. "
                    f"Use task='classification' for category labels."
                )
            numbers.append(number)
        dataset = _replace_column(dataset, column, "label", numbers, datasets.Value("float32"))
        return dataset, None

    if isinstance(feature, datasets.ClassLabel):
        names = list(feature.names)
        ids = list(values)
        for row, class_id in enumerate(ids):
            if not 0 <= class_id < len(names):
                raise DataError(
                    f"Row {row} (counting from 0) has label {class_id}, which is not a class id of {names}; "
                    f"unlabelled rows (such as -1 in GLUE test splits) cannot be used for training."
                )
        if column != "label":
            dataset = _replace_column(dataset, column, "label", ids, datasets.ClassLabel(names=names))
    else:
        if any(isinstance(value, float) and not value.is_integer() for value in values):
            raise DataError(
                f"Column {column!r} has fractional values such as "
                f"{next(v for v in values if isinstance(v, float) and not v.is_integer())!r}; classification "
                f"needs class names or integer ids. Use task='regression' for scores."
            )
        keys = sorted({_class_key(value) for value in values}, key=lambda key: (isinstance(key, str), key))
        names = [str(key) for key in keys]
        index = {key: position for position, key in enumerate(keys)}
        ids = [index[_class_key(value)] for value in values]
        dataset = _replace_column(dataset, column, "label", ids, datasets.ClassLabel(names=names))

    used = sorted(set(ids))
    if len(used) < 2:
        only = names[used[0]] if used else None
        raise DataError(
            f"The label column {column!r} has a single class ({only!r}) in {len(ids)} rows; "
            f"classification needs at least two."
        )
    return dataset, names


# -- private helpers -------------------------------------------------------


def _guess(present: list[str], candidates: tuple[str, ...], role: str) -> str:
    for name in candidates:
        if name in present:
            return name
    raise DataError(
        f"Could not find a {role} column among {present}; pass {role}_column= with one of them "
        f"(names tried: {list(candidates)})."
    )


def _as_number(value: object) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return None if math.isnan(number) else number
    return None


def _class_key(value: object) -> object:
    """Key for a class value: integral floats count as ints, so 1.0 and 1 are one class."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool):
        return int(value)
    return value


def _replace_column(
    dataset: datasets.Dataset, old: str, new: str, values: list, feature: datasets.features.FeatureType
) -> datasets.Dataset:
    if new in dataset.column_names:
        dataset = dataset.remove_columns(new)
    if old in dataset.column_names and old != new:
        dataset = dataset.remove_columns(old)
    return dataset.add_column(new, values, feature=feature)
