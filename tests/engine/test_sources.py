"""The model and dataset checks that run before a spec is queued: nothing bad reaches the worker."""

import pandas as pd
import pytest

from msplora.data.errors import DataError
from msplora.engine.sources import check_sources


def _table_specs(tmp_path, make_spec):
    """One spec per local table type whose rows have no label column under a guessable name."""
    frame = pd.DataFrame({"text": ["good film", "bad film"], "stars": [1, 0]})
    csv_path, jsonl_path, parquet_path = tmp_path / "t.csv", tmp_path / "t.jsonl", tmp_path / "t.parquet"
    frame.to_csv(csv_path, index=False)
    frame.to_json(jsonl_path, orient="records", lines=True)
    frame.to_parquet(parquet_path)
    return [make_spec(dataset=str(path)) for path in (csv_path, jsonl_path, parquet_path)]


def test_submit_rejects_missing_model(engine, make_spec, tmp_path):
    with pytest.raises(ValueError) as error:
        engine.submit(make_spec(model=str(tmp_path / "no-model")), start_worker=False)
    assert str(tmp_path / "no-model") in str(error.value)
    assert "minilm-l6" in str(error.value)  # lists the bundled models
    assert engine.runs() == []


def test_submit_rejects_unknown_model_name(engine, make_spec):
    with pytest.raises(ValueError, match="model='not-a-model' is neither bundled nor a local path"):
        engine.submit(make_spec(model="not-a-model"), start_worker=False)
    assert engine.runs() == []


def test_submit_rejects_missing_dataset(engine, make_spec, tmp_path):
    with pytest.raises(DataError, match="movie-sentences"):
        engine.submit(make_spec(dataset=str(tmp_path / "missing.csv")), start_worker=False)
    assert engine.runs() == []


def test_submit_rejects_absent_label_column(engine, make_spec):
    with pytest.raises(DataError, match="'no_such_column' is not in the data"):
        engine.submit(make_spec(label_column="no_such_column"), start_worker=False)
    assert engine.runs() == []


@pytest.mark.parametrize("index, suffix", [(0, "csv"), (1, "jsonl"), (2, "parquet")])
def test_unguessable_label_column_raises(tmp_path, make_spec, index, suffix):
    spec = _table_specs(tmp_path, make_spec)[index]
    assert spec.dataset.endswith(suffix)
    with pytest.raises(DataError, match="Could not find a label column among \\['text', 'stars'\\]"):
        check_sources(spec)
    check_sources(make_spec(dataset=spec.dataset, label_column="stars"))  # naming the column fixes it


def test_offline_hub_id_rejected(make_spec):
    # The test session sets HF_HUB_OFFLINE=1, so a hub id can never load and is rejected at submit.
    with pytest.raises(ValueError, match="HF_HUB_OFFLINE is set; did you mean 'minilm-l6'"):
        check_sources(make_spec(model="minilm-l7"))
    with pytest.raises(ValueError, match="HF_HUB_OFFLINE is set"):
        check_sources(make_spec(model="minilm-l6", dataset="stanfordnlp/imdb"))


def test_accepted_sources_pass(make_spec, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    check_sources(make_spec())  # the local model folder and CSV of the fixtures
    check_sources(make_spec(model="minilm-l6", dataset="movie-sentences"))  # bundled assets, not fetched
    check_sources(make_spec(model="google-bert/bert-base-uncased", dataset="stanfordnlp/imdb"))  # hub ids
    check_sources(make_spec(model="bert-base-uncased"))  # a canonical hub id without an owner
    check_sources(make_spec(dataset="sst2"))  # a GLUE task


def test_asset_of_wrong_kind_raises(make_spec):
    with pytest.raises(ValueError, match="'movie-sentences' is a dataset, not a model"):
        check_sources(make_spec(model="movie-sentences"))
    with pytest.raises(DataError, match="'minilm-l6' is a model, not a dataset"):
        check_sources(make_spec(dataset="minilm-l6"))
