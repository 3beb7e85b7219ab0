"""Turn a dataset into tokenized, seeded train and eval splits for one task.

    data = load_task_data("movie-sentences", "classification", tokenizer, max_length=64)
    data.train, data.eval          # tokenized datasets.Dataset objects
    data.num_labels, data.problem_type, data.metric_names, data.majority_baseline
"""

from __future__ import annotations

import logging
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import datasets
from transformers import PreTrainedTokenizerBase

from .columns import Columns, check_text, prepare_labels, resolve_columns
from .errors import DataError
from .quiet import progress_bars_disabled
from .readers import RawData, read_dataset
from .tokenize import data_collator, tokenize_causal_lm, tokenize_sequence_classification

__all__ = ["PROBLEM_TYPES", "TASKS", "TaskData", "load_task_data", "default_metric_names"]

logger = logging.getLogger(__name__)

# Task name -> transformers problem type ("causal_lm" is this project's name for the decoder case).
PROBLEM_TYPES = {
    "classification": "single_label_classification",
    "regression": "regression",
    "causal-lm": "causal_lm",
}
TASKS = tuple(PROBLEM_TYPES)


@dataclass
class TaskData:
    """Tokenized train and eval splits of one dataset for one task, with what a run needs to know."""

    train: datasets.Dataset
    eval: datasets.Dataset
    task: str  # "classification", "regression" or "causal-lm"
    problem_type: str  # "single_label_classification", "regression" or "causal_lm"
    num_labels: int  # classes; 1 for regression; 0 for causal-lm
    label_names: list[str] | None
    metric_names: list[str]  # keys of msplora.metrics' output, primary first
    majority_baseline: float | None  # eval accuracy of always predicting the most common train label
    source: str  # provenance, shown with the run
    columns: Columns
    data_collator: Any = field(repr=False, default=None)  # pads batches; pass to transformers.Trainer

    def __post_init__(self) -> None:
        if self.task not in PROBLEM_TYPES:
            raise ValueError(f"task={self.task!r} is invalid: use one of {TASKS}.")
        if self.problem_type != PROBLEM_TYPES[self.task]:
            raise ValueError(f"problem_type={self.problem_type!r} does not match task={self.task!r}.")
        if len(self.train) == 0 or len(self.eval) == 0:
            raise ValueError(f"Empty split: {len(self.train)} train and {len(self.eval)} eval examples.")


@progress_bars_disabled()
def load_task_data(
    dataset: str | os.PathLike,
    task: str,
    tokenizer: PreTrainedTokenizerBase,
    *,
    max_length: int = 128,
    eval_fraction: float = 0.1,
    seed: int = 0,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str | None = None,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
) -> TaskData:
    """Read, check, split and tokenize `dataset` for `task`.

    `dataset` is a named asset (see `msplora.assets`), a local CSV, TSV,
    JSONL, JSON or Parquet file, a folder written by `save_to_disk`, a GLUE
    task ("glue/sst2", "mrpc", ...) or a hub dataset id. The split is a seeded
    shuffle, stratified by class for classification when every class has at
    least two rows. Sources that ship a validation split keep it. For
    causal-lm, `text_column` is the prompt and `text_pair_column` the
    response; without a response column, plain text is modelled.

    Raises:
        DataError: the data is missing, malformed, unusable for `task`, or
            too small for the split.
        ValueError: an argument is out of range.
    """
    if task not in PROBLEM_TYPES:
        raise ValueError(f"task={task!r} is invalid: use one of {TASKS}.")
    if not 0.0 < eval_fraction < 1.0:
        raise ValueError(f"eval_fraction={eval_fraction!r} is invalid: use a fraction between 0 and 1, e.g. 0.1.")
    if max_length < 2:
        raise ValueError(f"max_length={max_length!r} is invalid: use at least 2 tokens, e.g. 128.")
    for name, value in (("max_train_samples", max_train_samples), ("max_eval_samples", max_eval_samples)):
        if value is not None and value < 1:
            raise ValueError(f"{name}={value!r} is invalid: use a positive count or None for all rows.")

    raw = read_dataset(dataset, task)
    if raw.glue is not None and raw.glue.task != task:
        raise DataError(f"GLUE task {raw.glue.name!r} is a {raw.glue.task} task, not {task}.")
    defaults = Columns(raw.text_column, raw.text_pair_column, raw.label_column) if raw.text_column else None
    sample = raw.dataset if raw.dataset is not None else raw.splits["train"]
    columns = resolve_columns(
        sample,
        task,
        text_column=text_column,
        text_pair_column=text_pair_column,
        label_column=label_column,
        defaults=defaults,
    )

    if task == "causal-lm" and label_column is not None:
        logger.warning("Ignoring label_column=%r: causal-lm learns from the text itself.", label_column)

    label_names = None
    if raw.dataset is not None:
        table, label_names = _check(raw.dataset, columns, task)
        train, evaluation = _split(table, task, eval_fraction, seed)
    else:
        train, label_names = _check(raw.splits["train"], columns, task)
        evaluation, eval_names = _check(raw.splits["eval"], columns, task, require_classes=False)
        if task == "classification" and eval_names != label_names:
            raise DataError(f"The eval split's classes {eval_names} differ from the train split's {label_names}.")
        train = train.shuffle(seed=seed, keep_in_memory=True)

    if max_train_samples is not None:
        train = train.select(range(min(max_train_samples, len(train))), keep_in_memory=True)
    if max_eval_samples is not None:
        evaluation = evaluation.select(range(min(max_eval_samples, len(evaluation))), keep_in_memory=True)

    majority = _majority_baseline(train, evaluation) if task == "classification" else None
    train_tokens = _tokenize(train, tokenizer, columns, task, max_length)
    eval_tokens = _tokenize(evaluation, tokenizer, columns, task, max_length)
    problem_type = PROBLEM_TYPES[task]
    if label_names:
        num_labels = len(label_names)
    elif task == "regression":
        num_labels = 1
    else:
        num_labels = 0
    metric_names = list(raw.glue.metric_names) if raw.glue else default_metric_names(problem_type, num_labels)
    logger.info(
        "Loaded %s for %s: %d train and %d eval examples.", raw.source, task, len(train_tokens), len(eval_tokens)
    )
    return TaskData(
        train=train_tokens,
        eval=eval_tokens,
        task=task,
        problem_type=problem_type,
        num_labels=num_labels,
        label_names=label_names,
        metric_names=metric_names,
        majority_baseline=majority,
        source=raw.source,
        columns=columns,
        data_collator=data_collator(tokenizer, problem_type),
    )


def default_metric_names(problem_type: str, num_labels: int = 2) -> list[str]:
    """Return the metrics `msplora.metrics` reports for a problem type, primary first."""
    if problem_type == "single_label_classification":
        names = ["accuracy", "f1_macro", "matthews_correlation"]
        return [*names, "f1"] if num_labels == 2 else names
    if problem_type == "regression":
        return ["pearson", "spearmanr", "mse"]
    if problem_type == "causal_lm":
        return ["loss", "perplexity", "token_accuracy"]
    raise ValueError(f"problem_type={problem_type!r} is invalid: use one of {list(PROBLEM_TYPES.values())}.")


# -- private helpers -------------------------------------------------------
def _check(
    dataset: datasets.Dataset, columns: Columns, task: str, *, require_classes: bool = True
) -> tuple[datasets.Dataset, list[str] | None]:
    """Check text and label values; return the dataset with a `label` column (not for causal-lm)."""
    if len(dataset) == 0:
        raise DataError("The dataset has no rows.")
    for column in (columns.text, columns.text_pair):
        if column is not None:
            dataset = check_text(dataset, column)
    if task == "causal-lm":
        return dataset, None
    try:
        return prepare_labels(dataset, columns.label, task)
    except DataError:
        if require_classes:
            raise
        # A shipped eval split may hold one class only, which is still usable for evaluation.
        return _labels_without_class_check(dataset, columns.label)


def _labels_without_class_check(dataset: datasets.Dataset, column: str) -> tuple[datasets.Dataset, list[str] | None]:
    feature = dataset.features[column]
    names = list(feature.names) if isinstance(feature, datasets.ClassLabel) else None
    if column != "label":
        dataset = dataset.rename_column(column, "label")
    return dataset, names


def _split(
    dataset: datasets.Dataset, task: str, eval_fraction: float, seed: int
) -> tuple[datasets.Dataset, datasets.Dataset]:
    rows = len(dataset)
    eval_rows = math.ceil(rows * eval_fraction)
    train_rows = rows - eval_rows
    if eval_rows < 1 or train_rows < 2:
        raise DataError(
            f"The dataset has {rows} rows, too few for eval_fraction={eval_fraction}: that leaves {train_rows} "
            f"train and {eval_rows} eval rows, and at least 2 train rows and 1 eval row are needed. "
            f"Add rows or change eval_fraction."
        )
    stratify = None
    if task == "classification":
        counts = Counter(dataset["label"])
        if min(counts.values()) >= 2 and eval_rows >= len(counts) and train_rows >= len(counts):
            stratify = "label"
    parts = dataset.train_test_split(
        test_size=eval_rows, seed=seed, stratify_by_column=stratify, keep_in_memory=True
    )
    train, evaluation = parts["train"], parts["test"]
    if task == "classification" and len(set(train["label"])) < 2:
        raise DataError(
            f"The train split of {train_rows} rows contains a single class; add rows of the other classes "
            f"or lower eval_fraction={eval_fraction}."
        )
    return train, evaluation


def _majority_baseline(train: datasets.Dataset, evaluation: datasets.Dataset) -> float:
    most_common, _ = Counter(train["label"]).most_common(1)[0]
    labels = evaluation["label"]
    return sum(label == most_common for label in labels) / len(labels)


def _tokenize(
    dataset: datasets.Dataset, tokenizer: PreTrainedTokenizerBase, columns: Columns, task: str, max_length: int
) -> datasets.Dataset:
    if task == "causal-lm":
        return tokenize_causal_lm(
            dataset, tokenizer, text_column=columns.text, response_column=columns.text_pair, max_length=max_length
        )
    return tokenize_sequence_classification(
        dataset, tokenizer, text_column=columns.text, text_pair_column=columns.text_pair, max_length=max_length
    )
