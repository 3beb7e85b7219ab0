"""Handlers of the Launch screen: the form, its live preview, the spec and the submit.

Every control of the form maps to one field of `LaunchForm`; the layout passes
the controls in `LaunchForm` field order. The handlers are plain functions of a
form (and an engine), so tests call them directly.
"""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from msplora import plots
from msplora.budget import budget_from_layout, layout_from_config
from msplora.config import MSPLoRAConfig
from msplora.engine import Engine, RunSpec

from .architecture import Architecture, describe_model
from .estimate import estimate_step

__all__ = [
    "LaunchForm",
    "Preview",
    "build_spec",
    "preview",
    "spec_text",
    "submit",
    "target_choices",
    "store_upload",
    "file_columns",
    "bundled_datasets",
    "check_columns",
    "receive_upload",
    "Upload",
    "field_error",
    "msplora_only",
    "FIELD_LABELS",
    "MSPLORA_ONLY_FIELDS",
    "UPLOAD_SUFFIXES",
]

logger = logging.getLogger(__name__)

UPLOAD_SUFFIXES = (".csv", ".jsonl", ".json", ".parquet")

# The Launch controls' labels, by form field (RunSpec uses the same names), so errors name the control.
FIELD_LABELS = {
    "model": "Model",
    "dataset": "Dataset",
    "task": "Task",
    "method": "Method",
    "target_modules": "Target modules",
    "rank": "Rank (global level)",
    "rank_decay": "Rank decay",
    "mid_groups": "Mid groups",
    "group_boundaries": "Explicit group boundaries",
    "levels": "Levels on",
    "alpha": "Alpha",
    "dropout": "Dropout",
    "staged": "Staged training",
    "max_steps": "Steps",
    "batch_size": "Batch size",
    "learning_rate": "Learning rate",
    "eval_steps": "Evaluate every (steps)",
    "spectra_steps": "Spectra every (steps)",
    "seed": "Seed",
    "max_length": "Max length (tokens)",
    "text_column": "Text column",
    "text_pair_column": "Text pair column",
    "label_column": "Label column",
    "name": "Run name",
}

# Controls that only MSPLoRA runs read; plain LoRA runs ignore them.
MSPLORA_ONLY_FIELDS = ("rank_decay", "mid_groups", "group_boundaries", "levels", "staged")

# The smallest value of each numeric control. The Number components carry no minimum, so Gradio does
# not reject a value with a toast that omits the field; build_spec names the field instead.
_MINIMUMS = {
    "rank": 1, "rank_decay": 1.0, "mid_groups": 1, "max_steps": 1, "batch_size": 1, "eval_steps": 1,
    "spectra_steps": 1, "seed": 0, "max_length": 8, "alpha": 0.0, "dropout": 0.0,
}
_INTEGER_FIELDS = ("rank", "mid_groups", "max_steps", "batch_size", "eval_steps", "spectra_steps", "seed",
                   "max_length")


@dataclass
class LaunchForm:
    """The values of the Launch controls, as Gradio passes them (numbers may arrive as floats)."""

    model: str = "minilm-l6"
    dataset: str = "movie-sentences"
    task: str = "classification"
    method: str = "msplora"
    target_modules: list[str] | None = None
    rank: float = 8
    rank_decay: float = 2.0
    mid_groups: float = 3
    group_boundaries: str = ""
    levels: list[str] | None = None
    alpha: float = 16.0
    dropout: float = 0.0
    staged: bool = False
    max_steps: float = 200
    batch_size: float = 16
    learning_rate: float = 5e-4
    eval_steps: float = 50
    spectra_steps: float = 50
    seed: float = 0
    max_length: float = 128
    text_column: str | None = None
    text_pair_column: str | None = None
    label_column: str | None = None
    name: str = ""

    @classmethod
    def from_values(cls, *values: Any) -> LaunchForm:
        """Build a form from control values given in field order (how Gradio calls handlers)."""
        return cls(*values)


@dataclass
class Preview:
    """The live preview's content: figures, the estimate, and the error that blocks launch."""

    pyramid: go.Figure
    budget: go.Figure
    estimate: str
    error: str

    @property
    def can_launch(self) -> bool:
        return not self.error


def build_spec(form: LaunchForm) -> RunSpec:
    """Turn the form into a validated RunSpec.

    Raises:
        ValueError: from RunSpec or MSPLoRAConfig validation, naming the field and the fix.
    """
    _check_numbers(form)
    if not (form.dataset or "").strip():
        raise ValueError("Dataset is empty: choose a bundled dataset or upload a CSV, JSONL or Parquet file.")
    boundaries = _parse_boundaries(form.group_boundaries)
    levels = tuple(form.levels) if form.levels is not None else ("global", "mid", "layer")
    if form.method == "lora":
        levels = ("global", "mid", "layer")  # the levels control does not apply to plain LoRA

    return RunSpec(
        model=(form.model or "").strip(),
        dataset=(form.dataset or "").strip(),
        task=form.task,
        method=form.method,
        target_modules=list(form.target_modules or []),
        rank=_as_int("rank", form.rank),
        rank_decay=float(form.rank_decay),
        mid_groups=_as_int("mid_groups", form.mid_groups),
        group_boundaries=boundaries,
        levels=levels,
        alpha=float(form.alpha),
        dropout=float(form.dropout),
        staged=bool(form.staged) and form.method == "msplora",
        max_steps=_as_int("max_steps", form.max_steps),
        batch_size=_as_int("batch_size", form.batch_size),
        learning_rate=float(form.learning_rate),
        eval_steps=_as_int("eval_steps", form.eval_steps),
        spectra_steps=_as_int("spectra_steps", form.spectra_steps),
        # About 50 loss points per run, at most one per 10 steps, so short runs still draw a curve.
        logging_steps=max(1, min(10, _as_int("max_steps", form.max_steps) // 50)),
        save_steps=max(1, min(100, _as_int("max_steps", form.max_steps))),
        seed=_as_int("seed", form.seed),
        max_length=_as_int("max_length", form.max_length),
        text_column=form.text_column or None,
        text_pair_column=form.text_pair_column or None,
        label_column=form.label_column or None,
        name=(form.name or "").strip() or None,
    )


def preview(form: LaunchForm) -> Preview:
    """Build the live preview: the pyramid over the blocks, the budget and a step estimate.

    Any invalid choice is returned as `error` (and blocks launch) instead of raising.
    """
    try:
        # The model comes first: an unreadable model also empties the target list, and its error is the cause.
        architecture = _describe(form.model)
        spec = build_spec(form)
        config = _adapter_config(spec)
        layout = layout_from_config(architecture.hf_config, config)
        check_columns(form)
    except (ValueError, KeyError) as error:
        logger.debug("Preview of model %r rejected: %s", form.model, error)
        message = field_error(error)
        empty = plots.empty_figure("Fix the settings to see the preview.")
        return Preview(pyramid=empty, budget=empty, estimate="", error=message)

    budget = budget_from_layout(layout, config).to_dict()
    if spec.method == "lora":
        budget["by_level"] = {"lora": budget["total"]}  # the level name the engine records for LoRA runs
    estimate = estimate_step(
        architecture.hf_config,
        base_parameters=architecture.parameters,
        matmul_parameters=architecture.matmul_parameters,
        trainable_parameters=budget["total"],
        batch_size=spec.batch_size,
        max_length=spec.max_length,
    )
    return Preview(
        pyramid=plots.pyramid_figure(layout.adapters, num_blocks=architecture.num_blocks),
        budget=plots.budget_figure(budget, lora_rank=spec.rank),
        estimate=_describe_architecture(architecture) + "\n\n" + estimate.to_markdown(),
        error="",
    )


def spec_text(form: LaunchForm) -> tuple[str, str]:
    """Return the spec as YAML and the command line that runs it, or the error and ""."""
    try:
        spec = build_spec(form)
    except ValueError as error:
        return f"# Invalid settings: {field_error(error)}", ""
    return spec.to_yaml(), "msplora train spec.yaml --wait"


def submit(engine: Engine, form: LaunchForm) -> tuple[str, str | None]:
    """Validate the form and queue the run. Return a message and the run id (None when rejected)."""
    try:
        architecture = _describe(form.model)
        spec = build_spec(form)
        layout_from_config(architecture.hf_config, _adapter_config(spec))
        check_columns(form)
        run_id = engine.submit(spec)
    except (ValueError, KeyError) as error:
        logger.info("Rejected a launch of model %r: %s", form.model, error)
        return f"**Not launched.** {field_error(error)}", None
    logger.info("Queued run %s (%s)", run_id, spec.display_name)
    return f"Queued run **{run_id}** ({spec.display_name}). Follow it on the Runs tab.", run_id


def target_choices(model: str) -> tuple[list[str], list[str], str]:
    """Return the target module names of `model`, the default selection, and an error ("" when fine)."""
    try:
        architecture = _describe(model)
    except ValueError as error:
        return [], [], _error_text(error)
    return architecture.target_choices, architecture.default_targets, ""


def store_upload(path: str | Path, uploads_dir: Path | None = None) -> Path:
    """Copy an uploaded dataset file into the msplora cache (`cache_dir()/uploads`) and return the copy.

    Raises:
        ValueError: the file type is not CSV, JSONL/JSON or Parquet.
    """
    source = Path(path)
    if source.suffix.lower() not in UPLOAD_SUFFIXES:
        raise ValueError(
            f"Unsupported file type {source.suffix!r} for {source.name!r}: upload a CSV, JSONL or Parquet file."
        )
    if uploads_dir is None:
        from msplora.assets import cache_dir

        uploads_dir = cache_dir() / "uploads"
    uploads_dir.mkdir(parents=True, exist_ok=True)

    # Gradio stores each upload in a temporary folder named by the file's SHA-256, so the first 8 hex
    # digits of that name keep two different uploads called data.csv apart and the run name short.
    target = uploads_dir / f"{source.parent.name[:8]}-{source.name}"
    shutil.copyfile(source, target)
    logger.info("Copied upload %s to %s", source.name, target)
    return target


def file_columns(path: str | Path) -> list[str]:
    """Read the column names of a CSV, JSONL or Parquet file (the first rows only where possible)."""
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as parquet

        return list(parquet.read_schema(path).names)
    return list(_read_rows(path, rows=5).columns)


@dataclass
class Upload:
    """The outcome of an upload: the stored file and its columns, or the message that rejects it."""

    path: Path | None
    columns: list[str]
    message: str

    @property
    def accepted(self) -> bool:
        return self.path is not None


def receive_upload(path: str | Path, uploads_dir: Path | None = None) -> Upload:
    """Store an uploaded dataset file and read its columns; a rejected file is deleted from the cache.

    A rejection comes back as `message` (in plain words, with what to do) instead of raising.
    """
    stored = None
    try:
        stored = store_upload(path, uploads_dir)
        _check_utf8(stored, name=Path(path).name)
        columns = file_columns(stored)
    except (ValueError, OSError) as error:
        logger.info("Rejected the upload %s: %s", Path(path).name, error)
        if stored is not None:
            stored.unlink(missing_ok=True)
        return Upload(path=None, columns=[], message=str(error))
    return Upload(path=stored, columns=columns, message="")


def check_columns(form: LaunchForm) -> None:
    """Check that a local dataset file has the text and label columns the task needs.

    Only files are checked here (from their first rows); bundled and hub datasets
    are checked by the engine when the run starts.

    Raises:
        ValueError: a named column is missing, or no text or label column can be
            guessed (msplora.data's column rules).
    """
    path = Path((form.dataset or "").strip())
    if path.suffix.lower() not in UPLOAD_SUFFIXES or not path.is_file():
        return
    import datasets

    from msplora.data.columns import resolve_columns

    sample = datasets.Dataset.from_pandas(_read_rows(path, rows=20), preserve_index=False)
    resolve_columns(
        sample,
        form.task,
        text_column=form.text_column or None,
        text_pair_column=form.text_pair_column or None,
        label_column=form.label_column or None,
    )


def field_error(error: Exception) -> str:
    """Return the error's message after the label of the control it is about, when it names one.

    The library's messages name RunSpec fields (`target_modules=[] is empty`), so the label
    names the control to change. The library's message follows it unchanged.
    """
    text = _error_text(error)
    match = re.match(r"(\w+)\b", text)
    if match and match.group(1) in FIELD_LABELS:
        return f"{FIELD_LABELS[match.group(1)]}: {text}"
    # msplora.data's column errors name the role ("the label column 'x' ...", "a label column among").
    for role in ("text pair", "label", "text"):
        if f"{role} column" in text:
            return f"{FIELD_LABELS[role.replace(' ', '_') + '_column']}: {text}"
    return text


def msplora_only(method: str) -> bool:
    """Return whether the MSPLoRA-only controls (MSPLORA_ONLY_FIELDS) apply to `method`."""
    return method != "lora"


def bundled_datasets() -> list[str]:
    """Names of the datasets that work offline (the dataset assets of `msplora.assets`)."""
    try:
        from msplora.assets import ASSETS
    except ImportError:
        return ["movie-sentences"]
    return [name for name, asset in ASSETS.items() if asset.kind == "dataset"]


def _adapter_config(spec: RunSpec) -> MSPLoRAConfig:
    """Build the pyramid of a spec. Plain LoRA is one per-block level at the spec's rank."""
    if spec.method == "lora":
        return MSPLoRAConfig.lora(list(spec.target_modules), rank=spec.rank, alpha=spec.alpha)
    return spec.msplora_config()


def _describe_architecture(architecture: Architecture) -> str:
    stacks = ", ".join(f"{path} ({count} blocks)" for path, count in architecture.stacks.items())
    config = architecture.hf_config
    return (
        f"**{architecture.model}**: {config.model_type}, {architecture.parameters / 1e6:,.1f} M parameters, "
        f"hidden size {config.hidden_size}. Stacks: {stacks}. Source: {architecture.source}."
    )


def _parse_boundaries(text: str | None) -> list[int] | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return [int(part) for part in text.replace(",", " ").split()]
    except ValueError:
        raise ValueError(
            f"Invalid group boundaries {text!r}: give whole numbers separated by commas, e.g. '2, 4'."
        ) from None


def _as_int(name: str, value: Any) -> int:
    if value is None:
        raise ValueError(f"{name} is empty: enter a whole number.")
    number = float(value)
    if not number.is_integer():
        raise ValueError(f"{name}={value!r} is invalid: enter a whole number.")
    return int(number)


def _check_numbers(form: LaunchForm) -> None:
    """Raise a ValueError naming the control of the first empty or too small number."""
    for name in (*_MINIMUMS, "learning_rate"):
        value = getattr(form, name)
        label = FIELD_LABELS[name]
        if value is None:
            raise ValueError(f"{label} is empty: enter a number.")
        if name in _MINIMUMS and float(value) < _MINIMUMS[name]:
            minimum = _MINIMUMS[name]
            raise ValueError(f"{label} must be at least {minimum:g} (got {float(value):g}).")
        if name in _INTEGER_FIELDS and not float(value).is_integer():
            raise ValueError(f"{label} must be a whole number (got {value!r}).")


def _describe(model: str | None) -> Architecture:
    """Describe the model, adding the bundled model names to the error for an unreadable one."""
    try:
        return describe_model(model or "")
    except ValueError as error:
        from .architecture import bundled_models

        raise ValueError(f"{_error_text(error)} Bundled models: {', '.join(bundled_models())}.") from error


def _check_utf8(path: Path, name: str) -> None:
    """Raise a plain-words ValueError when a CSV or JSON file is not valid UTF-8."""
    if path.suffix.lower() == ".parquet":
        return
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        byte = error.object[error.start:error.start + 1].hex()
        raise ValueError(
            f"The file {name!r} is not valid UTF-8 (byte 0x{byte} at position {error.start}); "
            "save it as UTF-8 and upload again."
        ) from None


def _read_rows(path: Path, rows: int) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(path, nrows=rows)
    if suffix == ".jsonl":
        return pd.read_json(path, lines=True, nrows=rows)
    if suffix == ".json":
        return pd.read_json(path).head(rows)
    if suffix == ".parquet":
        return pd.read_parquet(path).head(rows)
    raise ValueError(f"Unsupported file type {suffix!r}: use a CSV, JSONL or Parquet file.")


def _error_text(error: Exception) -> str:
    text = str(error)
    if isinstance(error, KeyError) and len(error.args) == 1:
        text = str(error.args[0])
    return text


# Field names in order, for wiring controls to LaunchForm.
FORM_FIELDS = tuple(field.name for field in fields(LaunchForm))
