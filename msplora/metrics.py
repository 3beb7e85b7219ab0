"""Evaluation metrics for transformers' Trainer, by problem type.

    trainer = Trainer(..., **trainer_metric_kwargs(data.problem_type, data.num_labels))
    metrics = add_perplexity(trainer.evaluate())     # causal LM: eval_perplexity from eval_loss

Classification reports accuracy, macro-F1 and Matthews correlation (plus the
binary F1 of class 1, the GLUE convention for MRPC, when there are two
classes). Regression reports Pearson and Spearman correlation and the mean
squared error. Causal LM reports next-token accuracy over the unmasked label
tokens; its perplexity is exp(eval_loss), added by `add_perplexity`.
All formulas come from scikit-learn and SciPy.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from scipy import stats
from sklearn import metrics as sk_metrics
from transformers import EvalPrediction

__all__ = [
    "add_perplexity",
    "build_compute_metrics",
    "classification_metrics",
    "preprocess_logits_for_metrics",
    "regression_metrics",
    "trainer_metric_kwargs",
]

_IGNORE_INDEX = -100
_MAX_PERPLEXITY_LOSS = 700.0  # exp(709) overflows a float64; report inf above this loss


def build_compute_metrics(problem_type: str, num_labels: int | None = None) -> Callable[[EvalPrediction], dict]:
    """Return a `compute_metrics` function for Trainer.

    `problem_type` is "single_label_classification", "regression" or
    "causal_lm" (the values of `TaskData.problem_type`). For causal LM, pass
    `preprocess_logits_for_metrics(problem_type)` to Trainer as well, so that
    only the argmax token ids are kept in memory.
    """
    if problem_type == "single_label_classification":

        def compute(prediction: EvalPrediction) -> dict[str, float]:
            predicted = np.argmax(_logits(prediction.predictions), axis=-1)
            return classification_metrics(np.asarray(prediction.label_ids), predicted, num_labels=num_labels)

        return compute
    if problem_type == "regression":

        def compute(prediction: EvalPrediction) -> dict[str, float]:
            predicted = np.asarray(_logits(prediction.predictions), dtype=np.float64).reshape(-1)
            return regression_metrics(np.asarray(prediction.label_ids, dtype=np.float64).reshape(-1), predicted)

        return compute
    if problem_type == "causal_lm":

        def compute(prediction: EvalPrediction) -> dict[str, float]:
            return {"token_accuracy": _next_token_accuracy(prediction.predictions, prediction.label_ids)}

        return compute
    raise ValueError(
        f"problem_type={problem_type!r} is invalid: use 'single_label_classification', 'regression' or 'causal_lm'."
    )


def preprocess_logits_for_metrics(problem_type: str) -> Callable | None:
    """Return Trainer's `preprocess_logits_for_metrics` for causal LM (argmax ids), else None."""
    if problem_type != "causal_lm":
        return None

    def argmax_ids(logits: torch.Tensor | tuple, labels: torch.Tensor) -> torch.Tensor:
        if isinstance(logits, tuple):
            logits = logits[0]
        return logits.argmax(dim=-1)

    return argmax_ids


def trainer_metric_kwargs(problem_type: str, num_labels: int | None = None) -> dict:
    """Return the `compute_metrics` and `preprocess_logits_for_metrics` keyword arguments for Trainer."""
    return {
        "compute_metrics": build_compute_metrics(problem_type, num_labels),
        "preprocess_logits_for_metrics": preprocess_logits_for_metrics(problem_type),
    }


def classification_metrics(labels: np.ndarray, predicted: np.ndarray, num_labels: int | None = None) -> dict[str, float]:
    """Compute accuracy, macro-F1 and Matthews correlation (and binary F1 for two classes)."""
    class_ids = list(range(num_labels)) if num_labels else None
    result = {
        "accuracy": float(sk_metrics.accuracy_score(labels, predicted)),
        "f1_macro": float(sk_metrics.f1_score(labels, predicted, average="macro", labels=class_ids, zero_division=0)),
        "matthews_correlation": float(sk_metrics.matthews_corrcoef(labels, predicted)),
    }
    if num_labels == 2 or (num_labels is None and set(np.unique(labels)) <= {0, 1}):
        result["f1"] = float(sk_metrics.f1_score(labels, predicted, pos_label=1, average="binary", zero_division=0))
    return result


def regression_metrics(labels: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Compute Pearson and Spearman correlation and mean squared error.

    A correlation is NaN when the labels or the predictions are constant.
    """
    result = {"mse": float(sk_metrics.mean_squared_error(labels, predicted))}
    if np.ptp(labels) == 0 or np.ptp(predicted) == 0:
        result["pearson"] = math.nan
        result["spearmanr"] = math.nan
    else:
        result["pearson"] = float(stats.pearsonr(labels, predicted).statistic)
        result["spearmanr"] = float(stats.spearmanr(labels, predicted).statistic)
    return result


def add_perplexity(metrics: dict[str, float], prefix: str = "eval_") -> dict[str, float]:
    """Return a copy of `metrics` with `{prefix}perplexity` = exp(`{prefix}loss`), if the loss is present."""
    result = dict(metrics)
    loss = metrics.get(f"{prefix}loss")
    if loss is not None:
        result[f"{prefix}perplexity"] = math.exp(loss) if loss < _MAX_PERPLEXITY_LOSS else math.inf
    return result


# -- private helpers -------------------------------------------------------


def _logits(predictions: np.ndarray | tuple) -> np.ndarray:
    # Some models return extra outputs (hidden states); the logits come first.
    if isinstance(predictions, tuple):
        predictions = predictions[0]
    return np.asarray(predictions)


def _next_token_accuracy(predicted_ids: np.ndarray | tuple, labels: np.ndarray) -> float:
    """Share of label tokens (not -100) that the model predicted from the previous position."""
    predicted_ids = _logits(predicted_ids)
    if predicted_ids.ndim == 3:
        # Full logits (batch, sequence, vocabulary): Trainer ran without preprocess_logits_for_metrics.
        predicted_ids = predicted_ids.argmax(axis=-1)
    labels = np.asarray(labels)
    # The prediction at position t is for the token at t + 1.
    predicted = predicted_ids[:, :-1].reshape(-1)
    targets = labels[:, 1:].reshape(-1)
    mask = targets != _IGNORE_INDEX
    if not mask.any():
        return math.nan
    return float(sk_metrics.accuracy_score(targets[mask], predicted[mask]))
