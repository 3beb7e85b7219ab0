"""MSPLoRA: Multi-Scale Pyramid LoRA.

A pyramid of low-rank adapters shared at three scales: one global adapter per target
role shared by every block, mid adapters shared by contiguous groups of blocks, and
per-block layer adapters, with ranks that decay level by level (8 -> 4 -> 2).
"""

import importlib
from typing import TYPE_CHECKING

# Public names and the submodule that defines each. They load on first use, so commands such
# as `msplora --help` start without importing torch and transformers.
_EXPORTS = {
    "LevelSpectra": "analysis",
    "effective_rank": "analysis",
    "peft_lora_spectra": "analysis",
    "spectrum_of_factors": "analysis",
    "Budget": "budget",
    "budget_from_config": "budget",
    "layout_from_config": "budget",
    "LEVEL_NAMES": "config",
    "LevelConfig": "config",
    "MSPLoRAConfig": "config",
    "LowRankAdapter": "layers",
    "MSPLoRALinear": "layers",
    "AdapterRecord": "layout",
    "build_layout": "layout",
    "find_block_stacks": "layout",
    "split_groups": "layout",
    "MSPLoRAModel": "model",
    "get_msplora_model": "model",
    "StagedTrainingCallback": "staged",
    "stage_for_step": "staged",
    "MSPLoRATrainer": "trainer",
}

if TYPE_CHECKING:
    from .analysis import LevelSpectra, effective_rank, peft_lora_spectra, spectrum_of_factors
    from .budget import Budget, budget_from_config, layout_from_config
    from .config import LEVEL_NAMES, LevelConfig, MSPLoRAConfig
    from .layers import LowRankAdapter, MSPLoRALinear
    from .layout import AdapterRecord, build_layout, find_block_stacks, split_groups
    from .model import MSPLoRAModel, get_msplora_model
    from .staged import StagedTrainingCallback, stage_for_step
    from .trainer import MSPLoRATrainer

__all__ = [
    "LEVEL_NAMES",
    "MSPLoRATrainer",
    "AdapterRecord",
    "Budget",
    "LevelConfig",
    "LevelSpectra",
    "LowRankAdapter",
    "MSPLoRAConfig",
    "MSPLoRALinear",
    "MSPLoRAModel",
    "StagedTrainingCallback",
    "budget_from_config",
    "build_layout",
    "effective_rank",
    "find_block_stacks",
    "get_msplora_model",
    "layout_from_config",
    "peft_lora_spectra",
    "spectrum_of_factors",
    "split_groups",
    "stage_for_step",
]

__version__ = "0.1.0"


def __getattr__(name: str):
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'msplora' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module_name}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
