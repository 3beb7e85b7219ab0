"""Model descriptions for the Launch screen, read before any weights load.

`describe_model` turns a model field (a bundled asset name, a local folder or a
hub id) into its transformers config, its block stacks, the linear module names
offered as targets and its parameter count. The model is built on the meta
device, so describing a 7B model allocates no weight memory.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig

from msplora.layout import find_block_stacks
from msplora.models import default_target_modules, suggest_target_modules
from msplora.presets import PRESETS

__all__ = ["Architecture", "describe_model", "bundled_models", "DEFAULT_MODEL"]

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "minilm-l6"


@dataclass(frozen=True)
class Architecture:
    """A model's shapes as the Launch screen shows them.

    Attributes:
        model: the model field as the user gave it.
        hf_config: the transformers config.
        stacks: block stack path → number of blocks, e.g. {"encoder.layer": 6}.
        target_choices: linear module names inside the blocks, offered as targets.
        default_targets: the query/value pair (or its equivalent) preselected.
        parameters: parameters of the bare model (no task head).
        matmul_parameters: parameters outside embedding tables, the ones that cost
            FLOPs per token.
        source: where the config came from, for the user.
    """

    model: str
    hf_config: PretrainedConfig
    stacks: dict[str, int]
    target_choices: list[str]
    default_targets: list[str]
    parameters: int
    matmul_parameters: int
    source: str

    @property
    def num_blocks(self) -> int:
        return max(self.stacks.values(), default=0)


def bundled_models() -> list[str]:
    """Names of the models that work offline: the model assets of `msplora.assets`."""
    try:
        from msplora.assets import ASSETS
    except ImportError:  # the assets module is optional for the what-if and preview paths
        return [name for name, preset in PRESETS.items() if preset.bundled]
    return [name for name, asset in ASSETS.items() if asset.kind == "model"]


@functools.lru_cache(maxsize=32)
def describe_model(model: str) -> Architecture:
    """Describe `model` (bundled name, local folder or hub id) without loading weights.

    Raises:
        ValueError: the field is empty, the folder has no config.json, or the hub
            id cannot be read (for example with no hub access).
    """
    model = model.strip()
    if not model:
        raise ValueError("The model field is empty. Choose a bundled model such as 'minilm-l6'.")
    hf_config, source = _load_config(model)

    with torch.device("meta"):
        network = AutoModel.from_config(hf_config)
    stacks = find_block_stacks(network)
    if not stacks:
        raise ValueError(
            f"No block stack found in {type(network).__name__} of {model!r}: MSPLoRA needs a "
            "ModuleList of repeated transformer blocks. Choose a transformer model."
        )

    choices = suggest_target_modules(network)
    defaults = _default_targets(model, network, choices)
    parameters = sum(parameter.numel() for parameter in network.parameters())
    embedding_parameters = sum(
        module.weight.numel() for module in network.modules() if isinstance(module, nn.Embedding)
    )
    return Architecture(
        model=model,
        hf_config=hf_config,
        stacks={path: len(blocks) for path, blocks in stacks.items()},
        target_choices=choices,
        default_targets=defaults,
        parameters=parameters,
        matmul_parameters=parameters - embedding_parameters,
        source=source,
    )


def _load_config(model: str) -> tuple[PretrainedConfig, str]:
    if model in PRESETS and PRESETS[model].bundled:
        return PRESETS[model].config(), PRESETS[model].source
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ValueError(
                f"The folder {str(path)!r} has no config.json. Choose a folder saved with save_pretrained."
            )
        return AutoConfig.from_pretrained(path, local_files_only=True), f"local folder {path}"
    if model.startswith(("/", ".", "~")):  # a path, not a hub id such as "Qwen/Qwen2.5-0.5B"
        raise ValueError(f"Model folder {model!r} not found. Check the path, or choose a bundled model.")

    try:
        return AutoConfig.from_pretrained(model), f"hub id {model}"
    except (OSError, ValueError) as error:
        logger.info("Could not read the config of hub model %r: %s", model, error)
        raise ValueError(
            f"Could not read the config of {model!r} from the Hugging Face hub ({error}). "
            "Without hub access, choose a bundled model or a local folder."
        ) from error


def _default_targets(model: str, network: nn.Module, choices: list[str]) -> list[str]:
    if model in PRESETS:
        defaults = [name for name in PRESETS[model].default_targets if name in choices]
        if defaults:
            return defaults
    return default_target_modules(network)
