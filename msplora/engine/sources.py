"""Cheap checks of a spec's model and dataset, run before a run is queued.

Without them, a model or dataset that cannot exist (a missing local path, a
name that is neither a bundled asset nor a hub id) would be queued and fail
minutes later in the worker. The same holds for a local table whose text or
label column cannot be found. These checks read no weights and tokenize
nothing: a local table contributes its header and first rows only.

Accepted model names: a bundled model asset, an existing model folder (with
`config.json`) or `.gguf` file, or a hub id of the form `owner/name`.
Accepted datasets: a bundled dataset asset, an existing CSV, TSV, JSONL, JSON
or Parquet file, a folder written by `datasets.save_to_disk`, a GLUE task name
("sst2", "glue/mrpc"), or a hub id `owner/name`.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

from msplora import assets
from msplora.data.columns import resolve_columns
from msplora.data.errors import DataError
from msplora.data.glue import glue_task
from msplora.data.readers import FILE_SUFFIXES

from .spec import RunSpec

__all__ = ["check_sources", "check_model", "check_dataset"]

# A hub repository id: owner/name, or a bare name for the hub's older canonical models
# (bert-base-uncased); letters, digits, "-", "_" and ".".
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_HEAD_ROWS = 20
# Files written by `save_to_disk` for a Dataset (state.json) or a DatasetDict (dataset_dict.json).
_SAVED_DATASET_FILES = ("state.json", "dataset_dict.json")


def check_sources(spec: RunSpec) -> None:
    """Raise ValueError (DataError for data) when the spec's model or dataset cannot be used."""
    check_model(spec.model)
    check_dataset(spec)


def check_model(name: str) -> None:
    """Raise ValueError unless `name` is a bundled model, a local model folder or .gguf file, or a hub id."""
    if name in assets.ASSETS:
        if assets.ASSETS[name].kind != "model":
            raise ValueError(f"model={name!r} is a dataset, not a model; use one of {_names('model')}")
        return
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ValueError(
                f"model={name!r} is a folder without config.json, so not a transformers model folder; "
                f"save the model with save_pretrained, or use one of {_names('model')}"
            )
        return
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ValueError(f"model={name!r} is a file but not a .gguf file; give a model folder or a .gguf file")
        return
    if _looks_like_hub_id(name):
        _check_hub_access("model", name, _names("model"))
        return
    raise ValueError(
        f"model={name!r} is not a bundled model, an existing folder or .gguf file, or a hub id (owner/name); "
        f"use one of {_names('model')}, a local model folder, or a hub id such as 'google-bert/bert-base-uncased'"
    )


def check_dataset(spec: RunSpec) -> None:
    """Raise DataError unless the spec's dataset exists; for a local table, check its columns too."""
    name = spec.dataset
    if name in assets.ASSETS:
        asset = assets.ASSETS[name]
        if asset.kind != "dataset":
            raise DataError(f"dataset={name!r} is a model, not a dataset; use one of {_names('dataset')}.")
        if spec.task not in asset.tasks:
            raise DataError(f"Dataset {name!r} supports the tasks {list(asset.tasks)}, not task={spec.task!r}.")
        return
    path = Path(name).expanduser()
    if path.is_dir():
        if not any((path / file).is_file() for file in _SAVED_DATASET_FILES):
            raise DataError(
                f"Folder {name!r} is not a dataset saved with `datasets.save_to_disk` "
                f"(it has none of {list(_SAVED_DATASET_FILES)})."
            )
        return
    if path.is_file():
        _check_table_columns(path, spec)
        return
    if glue_task(name) is not None or _looks_like_hub_id(name):
        _check_hub_access("dataset", name, _names("dataset"))
        return
    raise DataError(
        f"dataset={name!r} is not a bundled dataset, an existing file or folder, a GLUE task or a hub id "
        f"(owner/name); use one of {_names('dataset')}, a local CSV, TSV, JSONL or Parquet file, "
        f"or a hub id such as 'stanfordnlp/imdb'."
    )


# -- private helpers -------------------------------------------------------


def _check_table_columns(path: Path, spec: RunSpec) -> None:
    """Resolve the text and label columns on the file's first rows, as the worker will on all of them."""
    suffix = path.suffix.lower()
    if suffix not in FILE_SUFFIXES:
        raise DataError(f"Data file {str(path)!r} has an unsupported type {suffix!r}: use one of {FILE_SUFFIXES}.")
    if path.stat().st_size == 0:
        raise DataError(f"Data file {str(path)!r} is empty.")
    head = _read_head(path, suffix)
    if head is None:
        return
    import datasets

    head.columns = [str(column) for column in head.columns]
    sample = datasets.Dataset.from_pandas(head, preserve_index=False)
    resolve_columns(
        sample,
        spec.task,
        text_column=spec.text_column,
        text_pair_column=spec.text_pair_column,
        label_column=spec.label_column,
    )


def _read_head(path: Path, suffix: str):
    """Return the first rows of a table as a DataFrame, or None for a plain .json file.

    NOTE: a .json file (one JSON document) can only be parsed whole, so its
    columns are left for the worker to check.
    """
    import pandas as pd

    try:
        if suffix in (".csv", ".tsv"):
            return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", nrows=_HEAD_ROWS, encoding="utf-8")
        if suffix == ".jsonl":
            return pd.read_json(path, lines=True, nrows=_HEAD_ROWS, encoding="utf-8")
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            batch = next(pq.ParquetFile(path).iter_batches(batch_size=_HEAD_ROWS), None)
            if batch is None:
                raise DataError(f"Data file {str(path)!r} has a header but no rows.")
            return batch.to_pandas()
    except (ValueError, UnicodeDecodeError, OSError, pd.errors.ParserError) as error:
        if isinstance(error, DataError):
            raise
        raise DataError(f"Could not read {str(path)!r} as {suffix[1:].upper()}: {error}") from error
    return None


def _check_hub_access(field: str, name: str, bundled: list[str]) -> None:
    """Raise ValueError when hub access is switched off, since a hub id could then never load."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        close = difflib.get_close_matches(name, bundled, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"{field}={name!r} is neither bundled nor a local path, and it cannot come from the model hub because "
            f"HF_HUB_OFFLINE is set{hint} Use one of {bundled}, or a local path."
        )


def _looks_like_hub_id(name: str) -> bool:
    return bool(_HUB_ID.match(name)) and not name.startswith((".", "~")) and not name.endswith(FILE_SUFFIXES)


def _names(kind: str) -> list[str]:
    return [name for name, asset in assets.ASSETS.items() if asset.kind == kind]
