"""Handlers of the Launch screen: the form, its live preview, the spec and the submit.

Every control of the form maps to one field of `LaunchForm`; the layout passes
the controls in `LaunchForm` field order. The handlers are plain functions of a
form (and an engine), so tests call them directly.
"""

from __future__ import annotations

import logging
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
    "UPLOAD_SUFFIXES",
]

logger = logging.getLogger(__name__)

UPLOAD_SUFFIXES = (".csv", ".jsonl", ".json", ".parquet")


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
        spec = build_spec(form)
        architecture = describe_model(spec.model)
        config = _adapter_config(spec)
        layout = layout_from_config(architecture.hf_config, config)
    except (ValueError, KeyError) as error:
        logger.debug("Preview of model %r rejected: %s", form.model, error)
        message = _error_text(error)
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
        return f"# Invalid settings: {_error_text(error)}", ""
    return spec.to_yaml(), "msplora train spec.yaml --wait"


def submit(engine: Engine, form: LaunchForm) -> tuple[str, str | None]:
    """Validate the form and queue the run. Return a message and the run id (None when rejected)."""
    try:
        spec = build_spec(form)
        describe_model(spec.model)
        layout_from_config(describe_model(spec.model).hf_config, _adapter_config(spec))
        run_id = engine.submit(spec)
    except (ValueError, KeyError) as error:
        logger.info("Rejected a launch of model %r: %s", form.model, error)
        return f"**Not launched.** {_error_text(error)}", None
    logger.info("Queued run %s (%s)", run_id, spec.display_name)
    return f"Queued run **{run_id}** ({spec.display_name}). Follow it on the Runs tab.", run_id


def target_choices(model: str) -> tuple[list[str], list[str], str]:
    """Return the target module names of `model`, the default selection, and an error ("" when fine)."""
    try:
        architecture = describe_model(model or "")
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

    # Gradio stores each upload in its own temporary folder, so prefix the name with that folder's
    # name to keep two uploads called data.csv apart.
    target = uploads_dir / f"{source.parent.name}-{source.name}"
    shutil.copyfile(source, target)
    logger.info("Copied upload %s to %s", source.name, target)
    return target


def file_columns(path: str | Path) -> list[str]:
    """Read the column names of a CSV, JSONL or Parquet file (the first rows only where possible)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return list(pd.read_csv(path, nrows=5).columns)
    if suffix in (".jsonl", ".json"):
        return list(pd.read_json(path, lines=suffix == ".jsonl", nrows=5 if suffix == ".jsonl" else None).columns)
    if suffix == ".parquet":
        import pyarrow.parquet as parquet

        return list(parquet.read_schema(path).names)
    raise ValueError(f"Unsupported file type {suffix!r}: use a CSV, JSONL or Parquet file.")


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


def _error_text(error: Exception) -> str:
    text = str(error)
    if isinstance(error, KeyError) and len(error.args) == 1:
        text = str(error.args[0])
    return text


# Field names in order, for wiring controls to LaunchForm.
FORM_FIELDS = tuple(field.name for field in fields(LaunchForm))
