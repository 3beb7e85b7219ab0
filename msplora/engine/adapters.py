"""Wrap a base model with the run's adapter method: MSPLoRA, or PEFT's LoRA as the baseline.

Either way the engine gets the trainable model, its parameter budget at start,
a function that returns a spectra snapshot, and a function that saves the
final adapter. Budgets and spectra of both methods share one shape (that of
`Budget.to_dict()` and `LevelSpectra.to_dict()`), so runs compare directly;
PEFT's LoRA is one adapter per target, reported as the single level "lora".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from .spec import RunSpec

logger = logging.getLogger(__name__)

# Names of the task heads of transformers' AutoModelForSequenceClassification models.
HEAD_NAMES = ("classifier", "score")


@dataclass
class AdaptedModel:
    """A base model with adapters attached, ready for the Trainer."""

    model: nn.Module
    budget: dict[str, Any]
    spectra: Callable[[], dict[str, Any]]
    save: Callable[[Path], dict[str, Path]]  # writes the final adapter(s); returns artifact paths


def adapt_model(spec: RunSpec, base_model: nn.Module) -> AdaptedModel:
    """Attach the adapters `spec.method` names to `base_model` (its weights get frozen)."""
    head = head_module_names(base_model) if spec.task != "causal-lm" else []
    if spec.method == "msplora":
        return _adapt_msplora(spec, base_model, head)
    return _adapt_lora(spec, base_model, head)


def head_module_names(model: nn.Module) -> list[str]:
    """Return the task head's attribute name (e.g. ["classifier"]), to train and save in full."""
    return [name for name in HEAD_NAMES if isinstance(getattr(model, name, None), nn.Module)]


def _adapt_msplora(spec: RunSpec, base_model: nn.Module, head: list[str]) -> AdaptedModel:
    from msplora.model import get_msplora_model

    model = get_msplora_model(base_model, spec.msplora_config(modules_to_save=head or None))

    def save(folder: Path) -> dict[str, Path]:
        model.save_pretrained(folder / "adapter")
        paths = {"adapter": folder / "adapter"}
        try:
            model.export_peft(folder / "peft")
            paths["peft"] = folder / "peft"
        except (NotImplementedError, ValueError) as exc:  # e.g. a layer type PEFT cannot express
            logger.warning("PEFT export skipped: %s", exc)
        return paths

    return AdaptedModel(
        model=model,
        budget=model.budget().to_dict(),
        spectra=lambda: model.level_spectra().to_dict(),
        save=save,
    )


def _adapt_lora(spec: RunSpec, base_model: nn.Module, head: list[str]) -> AdaptedModel:
    from peft import LoraConfig, TaskType, get_peft_model

    from msplora.analysis import peft_lora_spectra

    task_type = TaskType.CAUSAL_LM if spec.task == "causal-lm" else TaskType.SEQ_CLS
    config = LoraConfig(
        task_type=task_type,
        r=spec.rank,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=list(spec.target_modules),
        modules_to_save=head or None,
    )
    model = get_peft_model(base_model, config)

    def save(folder: Path) -> dict[str, Path]:
        model.save_pretrained(folder / "adapter")
        return {"adapter": folder / "adapter"}

    return AdaptedModel(
        model=model,
        budget=_lora_budget(model, spec.rank),
        spectra=lambda: peft_lora_spectra(model).to_dict(),
        save=save,
    )


def _lora_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """PEFT LoRA layers of the active adapter, as (module path, module)."""
    from peft.tuners.lora import LoraLayer

    return [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, LoraLayer) and "default" in module.lora_A
    ]


def _lora_budget(model: nn.Module, rank: int) -> dict[str, Any]:
    """Count PEFT LoRA's parameters in the Budget.to_dict() shape, as one level "lora" like its spectra."""
    adapters = 0
    lora_params = 0
    for _, module in _lora_modules(model):
        adapters += 1
        lora_params += module.lora_A["default"].weight.numel() + module.lora_B["default"].weight.numel()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    head = trainable - lora_params
    return {
        "total": lora_params,
        "by_level": {"lora": lora_params},
        "lora_equivalent": lora_params,
        "lora_rank": rank,
        "head": head,
        "adapters": adapters,
        "targets": adapters,
        "bytes": trainable * 4,
        "ratio_to_lora": 1.0,
    }
