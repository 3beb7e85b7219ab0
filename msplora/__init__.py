"""MSPLoRA: Multi-Scale Pyramid LoRA.

A pyramid of low-rank adapters shared at three scales: one global adapter per target
role shared by every block, mid adapters shared by contiguous groups of blocks, and
per-block layer adapters, with ranks that decay level by level (8 -> 4 -> 2).
"""

from .analysis import LevelSpectra, effective_rank, peft_lora_spectra, spectrum_of_factors
from .budget import Budget, budget_from_config, layout_from_config
from .config import LEVEL_NAMES, LevelConfig, MSPLoRAConfig
from .layers import LowRankAdapter, MSPLoRALinear
from .layout import AdapterRecord, build_layout, find_block_stacks, split_groups
from .model import MSPLoRAModel, get_msplora_model
from .staged import StagedTrainingCallback, stage_for_step

__all__ = [
    "LEVEL_NAMES",
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
    # The trainer imports transformers' Trainer (and accelerate), so it loads on first use.
    if name == "MSPLoRATrainer":
        from .trainer import MSPLoRATrainer

        return MSPLoRATrainer
    raise AttributeError(f"module 'msplora' has no attribute {name!r}")
