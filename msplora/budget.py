"""Exact parameter budgets of a pyramid, from a live model or from a config alone.

An adapter of rank r on a map in -> out trains r * (in + out) parameters. A pyramid
counts each adapter once, however many blocks share it. Plain LoRA at rank r has
one adapter per target, so its count is r * (in + out) summed over every target.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

import torch
from transformers import AutoModel, PretrainedConfig

from .config import MSPLoRAConfig
from .layout import Layout, build_layout

__all__ = ["Budget", "budget_from_layout", "budget_from_config", "layout_from_config"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Budget:
    """Trainable parameters of a pyramid, per level and in total.

    Attributes:
        total: adapter parameters, each shared adapter counted once.
        by_level: adapter parameters per level, e.g. {"global": ..., "mid": ..., "layer": ...}.
        lora_equivalent: what plain LoRA at `lora_rank` on the same targets would train.
        lora_rank: the rank used for `lora_equivalent`, the pyramid's top rank.
        head: parameters of modules_to_save (a classification head), trained in full.
        adapters: number of distinct adapters.
        targets: number of adapted linear maps.
        bytes: tensor bytes of the trainable weights (adapters + head) as saved; the
            safetensors header adds a few kilobytes.
    """

    total: int
    by_level: dict[str, int]
    lora_equivalent: int
    lora_rank: int
    head: int
    adapters: int
    targets: int
    bytes: int

    @property
    def ratio_to_lora(self) -> float:
        """Adapter parameters as a share of plain LoRA's at the top rank."""
        return self.total / self.lora_equivalent if self.lora_equivalent else float("nan")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["ratio_to_lora"] = self.ratio_to_lora
        return data


def budget_from_layout(layout: Layout, config: MSPLoRAConfig, head: int = 0, bytes_per_param: int = 4) -> Budget:
    """Count the parameters of `layout`, with plain LoRA at the config's top rank as reference."""
    by_level = {name: 0 for name in config.level_names}
    for record in layout.adapters:
        by_level[record.level] += record.params
    total = sum(by_level.values())
    lora_rank = max(config.level_ranks)
    lora_equivalent = sum(lora_rank * (t.in_features + t.out_features) for t in layout.targets)
    return Budget(
        total=total,
        by_level=by_level,
        lora_equivalent=lora_equivalent,
        lora_rank=lora_rank,
        head=head,
        adapters=len(layout.adapters),
        targets=len(layout.targets),
        bytes=(total + head) * bytes_per_param,
    )


def budget_from_config(
    hf_config: PretrainedConfig, config: MSPLoRAConfig, bytes_per_param: int = 4
) -> Budget:
    """Compute the exact budget of `config` on the architecture `hf_config`, without weights.

    The model is built on the meta device, so no memory is allocated for weights and a
    70B-parameter config takes about as long as a small one. Heads are not built
    (AutoModel gives the bare model), so `head` is 0.
    """
    return budget_from_layout(layout_from_config(hf_config, config), config, bytes_per_param=bytes_per_param)


def layout_from_config(hf_config: PretrainedConfig, config: MSPLoRAConfig) -> Layout:
    """Build the adapter map of `config` on the architecture `hf_config`, on the meta device."""
    started = time.perf_counter()
    with torch.device("meta"):
        model = AutoModel.from_config(hf_config)
    layout = build_layout(model, config)
    logger.debug("Built the %s layout on the meta device in %.3f s", hf_config.model_type, time.perf_counter() - started)
    return layout
