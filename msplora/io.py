"""Saving, loading and exporting MSPLoRA adapters.

`save_pretrained` writes two files:

- ``adapter_model.safetensors``: every adapter once (``adapters.<key>.lora_A``/``lora_B``)
  and the weights of modules_to_save (``base_model.<path>.<name>``);
- ``msplora_config.json``: the MSPLoRAConfig, the adapter dtype and the shape of the
  model it was made for (stacks, block counts, target shapes), checked on load.

`export_peft` writes a plain PEFT LoRA adapter. Per block, the levels are concatenated
along the rank axis with their scalings folded into lora_B:

    lora_A = [A_g; A_m(l); A_l]                  (R x in)
    lora_B = [s_g B_g, s_m B_m(l), s_l B_l]      (out x R),   lora_alpha = R

so PEFT's own scaling lora_alpha / r is 1 and B @ A equals the pyramid's update.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .config import MSPLoRAConfig

if TYPE_CHECKING:
    from .model import MSPLoRAModel

__all__ = ["WEIGHTS_NAME", "CONFIG_NAME", "save_pretrained", "load_pretrained", "load_adapter_weights", "export_peft"]

WEIGHTS_NAME = "adapter_model.safetensors"
CONFIG_NAME = "msplora_config.json"
FORMAT_VERSION = 1


def save_pretrained(model: MSPLoRAModel, save_directory: str | os.PathLike) -> None:
    """Write the adapters, modules_to_save and config of `model` to `save_directory`."""
    directory = Path(save_directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().contiguous().cpu() for name, tensor in model.trainable_state_dict().items()}
    save_file(state, directory / WEIGHTS_NAME, metadata={"format": "pt", "library": "msplora"})
    metadata = {
        "format_version": FORMAT_VERSION,
        "config": model.msplora_config.to_dict(),
        "adapter_dtype": str(model.adapter_dtype).removeprefix("torch."),
        "base_model_name_or_path": getattr(getattr(model.base_model, "config", None), "_name_or_path", None),
        "base_model_class": type(model.base_model).__name__,
        "shape": _shape_signature(model),
    }
    (directory / CONFIG_NAME).write_text(json.dumps(metadata, indent=2) + "\n")


def load_pretrained(
    base_model: nn.Module, path: str | os.PathLike, adapter_dtype: torch.dtype | None = None
) -> MSPLoRAModel:
    """Wrap `base_model` with the pyramid saved at `path` and load its weights.

    Raises:
        FileNotFoundError: when `path` lacks the config or weights file.
        ValueError: when the base model's stacks, block counts, hidden sizes or targets
            differ from those the adapter was saved for.
    """
    from .model import MSPLoRAModel

    metadata = _read_metadata(path)
    config = MSPLoRAConfig.from_dict(metadata["config"])
    dtype = adapter_dtype or getattr(torch, metadata.get("adapter_dtype", "float32"))
    try:
        model = MSPLoRAModel(base_model, config, adapter_dtype=dtype)
    except ValueError as err:
        raise ValueError(f"The adapter at {path} does not fit this base model: {err}") from err
    _check_shape(metadata["shape"], _shape_signature(model), path)
    load_adapter_weights(model, path)
    return model


def load_adapter_weights(model: MSPLoRAModel, path: str | os.PathLike) -> None:
    """Load the weights saved at `path` into the adapters and modules_to_save of `model`.

    Raises:
        ValueError: when a tensor is missing, unexpected, or of another shape.
    """
    weights_file = Path(path) / WEIGHTS_NAME
    if not weights_file.is_file():
        raise FileNotFoundError(f"No {WEIGHTS_NAME} in {path}: save the model with model.save_pretrained(path) first.")
    saved = load_file(weights_file)
    expected = model.trainable_state_dict()
    missing = sorted(set(expected) - set(saved))
    unexpected = sorted(set(saved) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"The weights in {weights_file} do not match this model: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}. Load them into a model wrapped with the saved config "
            "(MSPLoRAModel.from_pretrained)."
        )
    with torch.no_grad():
        for name, tensor in expected.items():
            if saved[name].shape != tensor.shape:
                raise ValueError(
                    f"Tensor {name} in {weights_file} has shape {tuple(saved[name].shape)}, "
                    f"but the model expects {tuple(tensor.shape)}."
                )
            tensor.copy_(saved[name].to(dtype=tensor.dtype, device=tensor.device))


def export_peft(model: MSPLoRAModel, path: str | os.PathLike) -> None:
    """Write a PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors) with the same outputs.

    Raises:
        ValueError: when the model is merged (export the unmerged adapters).
    """
    from peft import LoraConfig

    if model.merged:
        raise ValueError("Cannot export a merged model: call model.unmerge() first.")
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    layout = model.layout_map
    total_rank = model.msplora_config.total_rank

    state: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for target in layout.targets:
            adapters = [model.adapters[key] for key in layout.assignments[target.path]]
            lora_A = torch.cat([a.lora_A for a in adapters], dim=0)  # (R, in)
            lora_B = torch.cat([a.scaling * a.lora_B for a in adapters], dim=1)  # (out, R)
            prefix = f"base_model.model.{target.path}"
            state[f"{prefix}.lora_A.weight"] = lora_A.detach().contiguous().cpu()
            state[f"{prefix}.lora_B.weight"] = lora_B.detach().contiguous().cpu()
        for name, tensor in model.trainable_state_dict().items():
            if name.startswith("base_model."):
                state["base_model.model." + name.removeprefix("base_model.")] = tensor.detach().contiguous().cpu()

    peft_config = LoraConfig(
        r=total_rank,
        lora_alpha=total_rank,
        target_modules=[t.path for t in layout.targets],
        lora_dropout=model.msplora_config.dropout,
        fan_in_fan_out=any(t.fan_in_fan_out for t in layout.targets),
        modules_to_save=model.msplora_config.modules_to_save,
        bias="none",
        base_model_name_or_path=getattr(getattr(model.base_model, "config", None), "_name_or_path", None),
    )
    peft_config.save_pretrained(str(directory))
    save_file(state, directory / "adapter_model.safetensors", metadata={"format": "pt"})


# Private helpers


def _shape_signature(model: MSPLoRAModel) -> dict[str, Any]:
    layout = model.layout_map
    roles = sorted({(t.stack, t.role, t.in_features, t.out_features) for t in layout.targets})
    return {
        "stacks": dict(layout.stacks),
        "roles": [{"stack": s, "role": r, "in_features": i, "out_features": o} for s, r, i, o in roles],
        "targets": len(layout.targets),
    }


def _check_shape(saved: dict[str, Any], current: dict[str, Any], path: str | os.PathLike) -> None:
    if saved["stacks"] != current["stacks"]:
        raise ValueError(
            f"The adapter at {path} was saved for block stacks {saved['stacks']}, but this base model has "
            f"{current['stacks']}. Load it into the same architecture (same number of blocks)."
        )
    if saved["roles"] != current["roles"] or saved["targets"] != current["targets"]:
        saved_roles = {(r["role"], r["in_features"], r["out_features"]) for r in saved["roles"]}
        current_roles = {(r["role"], r["in_features"], r["out_features"]) for r in current["roles"]}
        raise ValueError(
            f"The adapter at {path} was saved for target shapes {sorted(saved_roles - current_roles)[:4]}, "
            f"but this base model has {sorted(current_roles - saved_roles)[:4]}. Load it into the same "
            "architecture (same hidden sizes and target modules)."
        )


def _read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    config_file = Path(path) / CONFIG_NAME
    if not config_file.is_file():
        raise FileNotFoundError(
            f"No {CONFIG_NAME} in {path}: this is not an MSPLoRA adapter folder (save one with model.save_pretrained)."
        )
    metadata = json.loads(config_file.read_text())
    if metadata.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"The adapter at {path} uses format version {metadata['format_version']}; this msplora reads "
            f"up to {FORMAT_VERSION}. Upgrade msplora."
        )
    return metadata
