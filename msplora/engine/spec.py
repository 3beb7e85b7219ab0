"""RunSpec: one fine-tune, described completely enough to queue, rerun and compare.

A spec names the model, the dataset and task, the adapter method with its
settings, and the training settings. It validates on creation, so a bad
configuration raises at submit time and never starts a run, and it round-trips
through YAML (`spec.yaml` in every run folder is the snapshot).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

METHODS = ("msplora", "lora")
TASKS = ("classification", "regression", "causal-lm")
LEVELS = ("global", "mid", "layer")
LR_SCHEDULERS = (
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
)
DEVICES = ("cpu", "cuda", "mps")


@dataclass
class RunSpec:
    """A fine-tune to run: model, data, adapter method and training settings.

    `max_steps` and `num_epochs` are exclusive: set exactly one of them.
    Cadences (`logging_steps`, `eval_steps`, `spectra_steps`, `save_steps`)
    count optimizer steps. `device=None` picks CUDA, then MPS, then CPU.
    """

    # what to train on
    model: str = "minilm-l6"
    dataset: str = "movie-sentences"
    task: str = "classification"
    method: str = "msplora"  # "msplora", or "lora" for the PEFT baseline

    # adapter settings (MSPLoRA; "lora" uses target_modules, rank, alpha, dropout)
    target_modules: list[str] = field(default_factory=lambda: ["query", "value"])
    rank: int = 8  # global-level rank; for "lora", the rank of every adapter
    rank_decay: float = 2.0  # mid rank = rank / decay, layer rank = rank / decay**2
    mid_groups: int = 3
    group_boundaries: list[int] | None = None
    levels: tuple[str, ...] = LEVELS
    alpha: float = 16.0
    dropout: float = 0.0
    staged: bool = False  # unfreeze global -> mid -> layer over equal shares of steps

    # training settings
    max_steps: int | None = 200
    num_epochs: float | None = None
    batch_size: int = 16
    learning_rate: float = 5e-4
    lr_scheduler: str = "linear"
    warmup_ratio: float = 0.06
    weight_decay: float = 0.0
    gradient_accumulation_steps: int = 1
    logging_steps: int = 10
    eval_steps: int = 50
    spectra_steps: int = 50
    save_steps: int = 100  # Trainer checkpoint cadence; resume continues from the last one
    save_total_limit: int = 2
    seed: int = 0
    max_length: int = 128
    eval_fraction: float = 0.1
    max_train_samples: int | None = None
    max_eval_samples: int | None = None

    # data columns for local files (None: the loader's defaults)
    text_column: str | None = None
    text_pair_column: str | None = None
    label_column: str | None = None

    name: str | None = None
    trust_remote_code: bool = False
    device: str | None = None

    def __post_init__(self) -> None:
        self.target_modules = _as_str_list("target_modules", self.target_modules)
        self.levels = tuple(_as_str_list("levels", self.levels))
        if self.group_boundaries is not None:
            self.group_boundaries = [int(b) for b in self.group_boundaries]
        if self.num_epochs is not None and self.max_steps is not None:
            raise ValueError(
                f"max_steps={self.max_steps} and num_epochs={self.num_epochs} are both set; "
                "set one of them and the other to None"
            )
        if self.num_epochs is None and self.max_steps is None:
            raise ValueError("max_steps and num_epochs are both None; set one of them, e.g. max_steps=200")
        _validate_fields(self)

    def to_dict(self) -> dict[str, Any]:
        """Return the spec as plain JSON/YAML types (lists, no tuples)."""
        data = dataclasses.asdict(self)
        data["levels"] = list(self.levels)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        """Build a spec from a mapping; unknown keys raise with the list of valid ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown RunSpec field(s) {unknown}; valid fields are {sorted(known)}")
        return cls(**data)

    def to_yaml(self, path: str | Path | None = None) -> str:
        """Return the spec as YAML text, and also write it to `path` when given."""
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    @classmethod
    def from_yaml(cls, path_or_text: str | Path) -> RunSpec:
        """Load a spec from a YAML file path or from YAML text."""
        text = str(path_or_text)
        if isinstance(path_or_text, Path) or ("\n" not in text and Path(text).is_file()):
            text = Path(path_or_text).read_text(encoding="utf-8")
        data = yaml.safe_load(text)
        if not isinstance(data, dict):
            raise ValueError(
                f"a RunSpec YAML must be a mapping of field: value, got {type(data).__name__}; "
                f"check the file or text {str(path_or_text)[:80]!r}"
            )
        return cls.from_dict(data)

    @property
    def display_name(self) -> str:
        """The run's name, or a name made from method, model and dataset."""
        return self.name or f"{self.method}-{Path(self.model).name}-{Path(self.dataset).name}"

    def msplora_config(self, modules_to_save: list[str] | None = None):
        """Build the MSPLoRAConfig for this spec (raises its ValueError on bad settings)."""
        from msplora.config import MSPLoRAConfig

        return MSPLoRAConfig(
            target_modules=list(self.target_modules),
            rank=self.rank,
            rank_decay=self.rank_decay,
            mid_groups=self.mid_groups,
            alpha=self.alpha,
            dropout=self.dropout,
            group_boundaries=self.group_boundaries,
            staged=self.staged,
            enabled_levels=tuple(self.levels),
            modules_to_save=modules_to_save,
        )


def _validate_fields(spec: RunSpec) -> None:
    """Raise ValueError naming the first invalid field, its value and the fix."""
    _check_choice("method", spec.method, METHODS)
    _check_choice("task", spec.task, TASKS)
    _check_choice("lr_scheduler", spec.lr_scheduler, LR_SCHEDULERS)
    if spec.device is not None:
        _check_choice("device", spec.device, DEVICES + (None,))
    for name in ("model", "dataset"):
        value = getattr(spec, name)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{name}={value!r} is invalid; give an asset name, a local path or a hub id")
    if not spec.target_modules:
        raise ValueError("target_modules=[] is empty; name at least one module, e.g. ['query', 'value']")
    for level in spec.levels:
        _check_choice("levels", level, LEVELS)
    if not spec.levels:
        raise ValueError(f"levels=() is empty; use a subset of {LEVELS}")

    positive_ints = (
        "rank", "mid_groups", "batch_size", "gradient_accumulation_steps", "logging_steps",
        "eval_steps", "spectra_steps", "save_steps", "save_total_limit", "max_length",
    )
    for name in positive_ints:
        _check_positive_int(name, getattr(spec, name))
    if spec.max_steps is not None:
        _check_positive_int("max_steps", spec.max_steps)
    for name in ("max_train_samples", "max_eval_samples"):
        if getattr(spec, name) is not None:
            _check_positive_int(name, getattr(spec, name))
    if isinstance(spec.seed, bool) or not isinstance(spec.seed, int) or spec.seed < 0:
        raise ValueError(f"seed={spec.seed!r} is invalid; use an integer >= 0")

    _check_range("learning_rate", spec.learning_rate, low=0.0, low_open=True)
    _check_range("rank_decay", spec.rank_decay, low=1.0)
    _check_range("alpha", spec.alpha, low=0.0, low_open=True)
    _check_range("dropout", spec.dropout, low=0.0, high=1.0, high_open=True)
    _check_range("warmup_ratio", spec.warmup_ratio, low=0.0, high=1.0, high_open=True)
    _check_range("weight_decay", spec.weight_decay, low=0.0)
    _check_range("eval_fraction", spec.eval_fraction, low=0.0, high=1.0, low_open=True, high_open=True)
    if spec.num_epochs is not None:
        _check_range("num_epochs", spec.num_epochs, low=0.0, low_open=True)

    if spec.method == "lora" and spec.staged:
        raise ValueError("staged=True needs method='msplora'; set staged=False for the LoRA baseline")
    if spec.method == "lora" and tuple(spec.levels) != LEVELS:
        raise ValueError(f"levels={list(spec.levels)} only applies to method='msplora'; leave the default")
    if spec.method == "msplora":
        spec.msplora_config()  # MSPLoRAConfig validates its own settings on creation


def _check_choice(name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        valid = [c for c in choices if c is not None]
        raise ValueError(f"{name}={value!r} is invalid; use one of {valid}")


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} is invalid; use an integer >= 1")


def _check_range(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Raise unless `value` is a finite number inside the (half-)open interval."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name}={value!r} is invalid; use a finite number")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        left = "(" if low_open else "["
        right = ")" if high_open or high is None else "]"
        bounds = f"{left}{low if low is not None else '-inf'}, {high if high is not None else 'inf'}{right}"
        raise ValueError(f"{name}={value!r} is out of range; use a value in {bounds}")


def _as_str_list(name: str, value: Any) -> list[str]:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{name}={value!r} is invalid; use a list of strings, e.g. ['query', 'value']")
    return list(value)

