"""Tests of msplora.metrics: hand-computed golden values, and a real Trainer evaluation on a tiny model."""

from __future__ import annotations

import math

import datasets
import numpy as np
import pytest
import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    DataCollatorWithPadding,
    EvalPrediction,
    Trainer,
    TrainingArguments,
)

from msplora import assets
from msplora.metrics import (
    add_perplexity,
    build_compute_metrics,
    classification_metrics,
    preprocess_logits_for_metrics,
    regression_metrics,
    trainer_metric_kwargs,
)


def test_classification_golden_values():
    labels = np.array([0, 1, 1, 0])
    predicted = np.array([0, 1, 0, 0])
    result = classification_metrics(labels, predicted, num_labels=2)
    # By hand: TP=1, TN=2, FP=0, FN=1.
    assert result["accuracy"] == pytest.approx(3 / 4)
    # Class 1: precision 1, recall 1/2 -> F1 2/3. Class 0: precision 2/3, recall 1 -> F1 4/5.
    assert result["f1"] == pytest.approx(2 / 3)
    assert result["f1_macro"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    # MCC = (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = 2 / sqrt(1*2*2*3).
    assert result["matthews_correlation"] == pytest.approx(2 / math.sqrt(12))


def test_multiclass_has_no_binary_f1():
    result = classification_metrics(np.array([0, 1, 2]), np.array([0, 1, 2]), num_labels=3)
    assert "f1" not in result
    assert result["f1_macro"] == pytest.approx(1.0)


def test_macro_f1_counts_unpredicted_class():
    # Class 2 never occurs and is never predicted: with num_labels=3 it scores F1 0 (zero_division=0).
    result = classification_metrics(np.array([0, 1]), np.array([0, 1]), num_labels=3)
    assert result["f1_macro"] == pytest.approx(2 / 3)


def test_regression_golden_values():
    labels = np.array([1.0, 2.0, 3.0, 4.0])
    result = regression_metrics(labels, 2 * labels)
    assert result["pearson"] == pytest.approx(1.0)
    assert result["spearmanr"] == pytest.approx(1.0)
    assert result["mse"] == pytest.approx((1 + 4 + 9 + 16) / 4)


def test_regression_reversed_order():
    result = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0]))
    assert result["pearson"] == pytest.approx(-1.0)
    assert result["spearmanr"] == pytest.approx(-1.0)


def test_regression_constant_prediction_is_nan():
    result = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 2.0]))
    assert math.isnan(result["pearson"])
    assert math.isnan(result["spearmanr"])
    assert result["mse"] == pytest.approx(2 / 3)


def test_compute_metrics_from_logits():
    compute = build_compute_metrics("single_label_classification", num_labels=2)
    logits = np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    result = compute(EvalPrediction(predictions=logits, label_ids=np.array([0, 1, 1])))
    assert result["accuracy"] == pytest.approx(2 / 3)


def test_compute_metrics_regression_column():
    compute = build_compute_metrics("regression")
    predictions = np.array([[0.5], [1.5], [2.5]])  # (batch, 1), as a one-output head returns
    result = compute(EvalPrediction(predictions=predictions, label_ids=np.array([0.0, 1.0, 2.0])))
    assert result["mse"] == pytest.approx(0.25)
    assert result["pearson"] == pytest.approx(1.0)


def test_causal_lm_token_accuracy():
    compute = build_compute_metrics("causal_lm")
    # Position t predicts token t + 1. Labels -100 are skipped.
    predicted = np.array([[5, 7, 9, 0]])
    labels = np.array([[-100, 5, 7, 1]])
    result = compute(EvalPrediction(predictions=predicted, label_ids=labels))
    # Targets 5, 7, 1 against predictions 5, 7, 9: two of three right.
    assert result["token_accuracy"] == pytest.approx(2 / 3)


def test_causal_lm_preprocess_keeps_argmax():
    preprocess = preprocess_logits_for_metrics("causal_lm")
    logits = torch.tensor([[[0.1, 0.9], [0.8, 0.2]]])
    assert preprocess(logits, None).tolist() == [[1, 0]]
    assert preprocess_logits_for_metrics("regression") is None


def test_add_perplexity():
    result = add_perplexity({"eval_loss": math.log(20.0), "epoch": 1.0})
    assert result["eval_perplexity"] == pytest.approx(20.0)
    assert result["epoch"] == 1.0
    assert add_perplexity({"epoch": 1.0}) == {"epoch": 1.0}
    assert add_perplexity({"eval_loss": 1e4})["eval_perplexity"] == math.inf


def test_unknown_problem_type_rejected():
    with pytest.raises(ValueError, match="problem_type='ranking'"):
        build_compute_metrics("ranking")


def test_trainer_evaluate_reports_metrics(tmp_path):
    from transformers import AutoTokenizer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(assets.fetch("minilm-l6"), local_files_only=True)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, num_labels=2)
    model = BertForSequenceClassification(config)
    texts = [f"example number {index}" for index in range(12)]
    dataset = datasets.Dataset.from_dict({"text": texts, "labels": [index % 2 for index in range(12)]})
    dataset = dataset.map(lambda batch: tokenizer(batch["text"]), batched=True, remove_columns=["text"])
    args = TrainingArguments(output_dir=str(tmp_path), per_device_eval_batch_size=4, report_to="none", use_cpu=True)
    trainer = Trainer(
        model=model,
        args=args,
        eval_dataset=dataset,
        data_collator=DataCollatorWithPadding(tokenizer),
        **trainer_metric_kwargs("single_label_classification", num_labels=2),
    )
    metrics = trainer.evaluate()
    for name in ("eval_accuracy", "eval_f1_macro", "eval_matthews_correlation", "eval_f1", "eval_loss"):
        assert name in metrics
    assert 0.0 <= metrics["eval_accuracy"] <= 1.0
