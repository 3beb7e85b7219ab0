"""Fixtures for engine tests: a tiny BERT classifier saved to disk, a tiny CSV dataset, an engine.

The model (hidden 32, 2 blocks, a word-level vocabulary of the dataset's words) is
built from a config and saved with its tokenizer, so workers load it like any local
model folder. Sentences made of "good" words are label 1 and of "bad" words label 0.
"""

import csv
import random

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

from msplora.engine import Engine, RunSpec

POSITIVE = ["good", "great", "fine", "lovely", "superb", "warm", "bright", "fun"]
NEGATIVE = ["bad", "awful", "poor", "dull", "grim", "cold", "weak", "sad"]
FILLER = ["the", "film", "was", "very", "plot", "and", "acting"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A saved BertForSequenceClassification (hidden 32, 2 blocks) with a word-level tokenizer."""
    folder = tmp_path_factory.mktemp("tiny-bert")
    vocab = {token: i for i, token in enumerate(SPECIAL + POSITIVE + NEGATIVE + FILLER)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.BertProcessing(("[SEP]", vocab["[SEP]"]), ("[CLS]", vocab["[CLS]"]))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=2,
    )
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_csv(tmp_path_factory):
    """A CSV (text,label) of 120 short sentences: label 1 for good words, 0 for bad words."""
    path = tmp_path_factory.mktemp("data") / "sentences.csv"
    rng = random.Random(0)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for i in range(120):
            label = i % 2
            words = rng.sample(POSITIVE if label else NEGATIVE, 2) + rng.sample(FILLER, 3)
            rng.shuffle(words)
            writer.writerow([" ".join(words), label])
    return path


@pytest.fixture
def make_spec(tiny_model_dir, tiny_csv):
    """Build a short CPU RunSpec on the tiny model and CSV; keyword arguments override fields."""

    def make(**overrides):
        fields = dict(
            model=str(tiny_model_dir),
            dataset=str(tiny_csv),
            method="msplora",
            target_modules=["query", "value"],
            rank=4,
            rank_decay=2.0,
            mid_groups=2,
            max_steps=6,
            batch_size=8,
            learning_rate=1e-2,
            logging_steps=2,
            eval_steps=3,
            spectra_steps=3,
            save_steps=3,
            max_length=16,
            eval_fraction=0.2,
            device="cpu",
        )
        fields.update(overrides)
        return RunSpec(**fields)

    return make


@pytest.fixture
def engine(tmp_path):
    """An Engine over a fresh store; its workers are stopped after the test."""
    engine = Engine(tmp_path / "runs")
    yield engine
    engine.stop_workers(timeout=30)
