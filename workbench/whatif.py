"""Handlers of the What-if budgets screen: exact LoRA and MSPLoRA budgets of any architecture.

No weights are loaded: the architecture is built once on the meta device and
every (rank, decay, grouping) is counted on it with `msplora.budget`, the same
code `msplora.budget_from_config` runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import torch
from transformers import AutoModel, PretrainedConfig

from msplora import plots
from msplora.budget import budget_from_layout
from msplora.config import MSPLoRAConfig
from msplora.layout import build_layout
from msplora.presets import PRESETS, config_from_json

__all__ = ["CUSTOM", "WhatIf", "budget_table", "display_table", "whatif", "default_targets", "TABLE_COLUMNS"]

logger = logging.getLogger(__name__)

CUSTOM = "custom config.json"
TABLE_COLUMNS = ["method", "rank", "rank_decay", "mid_groups", "level_ranks", "global", "mid", "layer", "total",
                 "lora_same_rank", "share_of_lora"]
COUNT_COLUMNS = ["global", "mid", "layer", "total", "lora_same_rank"]


@dataclass
class WhatIf:
    """The screen's outputs: chart, table, CSV file, and notes on skipped or invalid choices."""

    figure: go.Figure
    table: pd.DataFrame
    csv_path: str | None
    notes: str


def default_targets(architecture: str) -> str:
    """Return the preset's query/value target names as the comma-separated text of the targets box."""
    preset = PRESETS.get(architecture)
    return ", ".join(preset.default_targets) if preset else "q_proj, v_proj"


def budget_table(
    hf_config: PretrainedConfig,
    target_modules: list[str],
    ranks: list[int],
    decays: list[float],
    groups: list[int],
) -> tuple[pd.DataFrame, list[str]]:
    """Count LoRA and MSPLoRA budgets for every combination; return the table and skipped combinations.

    A combination is skipped (and named in the second value) when MSPLoRAConfig or
    the layout rejects it, e.g. a layer rank below 1 or more groups than blocks.
    """
    with torch.device("meta"):
        model = AutoModel.from_config(hf_config)

    rows, skipped = [], []
    for rank in sorted(set(int(r) for r in ranks)):
        lora = MSPLoRAConfig.lora(target_modules, rank=rank)
        lora_total = budget_from_layout(build_layout(model, lora), lora).total
        rows.append({"method": "LoRA", "rank": rank, "rank_decay": None, "mid_groups": None,
                     "level_ranks": str(rank), "global": 0, "mid": 0, "layer": lora_total, "total": lora_total,
                     "lora_same_rank": lora_total, "share_of_lora": 1.0})
        for decay in sorted(set(float(d) for d in decays)):
            for group_count in sorted(set(int(g) for g in groups)):
                try:
                    config = MSPLoRAConfig(target_modules=target_modules, rank=rank, rank_decay=decay,
                                           mid_groups=group_count)
                    budget = budget_from_layout(build_layout(model, config), config)
                except ValueError as error:
                    skipped.append(f"rank {rank}, decay {decay:g}, {group_count} groups: {error}")
                    continue
                rows.append({"method": "MSPLoRA", "rank": rank, "rank_decay": decay, "mid_groups": group_count,
                             "level_ranks": "/".join(str(r) for r in config.level_ranks),
                             **{level: budget.by_level.get(level, 0) for level in ("global", "mid", "layer")},
                             "total": budget.total, "lora_same_rank": budget.lora_equivalent,
                             "share_of_lora": round(budget.ratio_to_lora, 4)})
    return pd.DataFrame(rows, columns=TABLE_COLUMNS), skipped


def whatif(
    architecture: str,
    config_json: str,
    targets: str,
    ranks: list[int] | None,
    decays: list[float] | None,
    groups: list[int] | None,
    export_dir: Path | None = None,
) -> WhatIf:
    """Build the chart, the table and its CSV for a preset or a pasted config.json.

    Errors (invalid JSON, unknown targets, nothing selected) come back in `notes`
    with an empty chart, so the screen explains them next to the controls.
    """
    target_modules = [name.strip() for name in (targets or "").split(",") if name.strip()]
    try:
        if not target_modules:
            raise ValueError("No target modules: enter names such as 'q_proj, v_proj'.")
        if not ranks or not decays or not groups:
            raise ValueError("Pick at least one rank, one rank decay and one number of mid groups.")
        hf_config = _architecture_config(architecture, config_json)
        table, skipped = budget_table(hf_config, target_modules, ranks, decays, groups)
    except ValueError as error:
        logger.info("Rejected what-if budgets for %r: %s", architecture, error)
        return WhatIf(plots.empty_figure("Fix the settings to see budgets."), pd.DataFrame(columns=TABLE_COLUMNS),
                      None, f"**Invalid settings:** {error}")

    csv_path = None
    if export_dir is not None:
        export_dir.mkdir(parents=True, exist_ok=True)
        name = architecture if architecture != CUSTOM else hf_config.model_type
        csv_path = str(export_dir / f"budgets-{name}.csv")
        table.to_csv(csv_path, index=False)

    notes = f"{len(table)} budgets of {architecture}, targets {', '.join(target_modules)}."
    if skipped:
        notes += "\n\nSkipped invalid combinations:\n" + "\n".join(f"- {line}" for line in skipped)
    return WhatIf(plots.whatif_figure(table), table, csv_path, notes)


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """Format a budget table for the screen: parameter counts with thousands separators (16,384,000).

    The numeric table stays in `WhatIf.table` and the CSV export.
    """
    shown = table.astype(object)
    for column in COUNT_COLUMNS:
        shown[column] = [f"{int(value):,}" for value in table[column]]
    for column in ("rank_decay", "mid_groups"):
        shown[column] = ["" if pd.isna(value) else f"{value:g}" for value in table[column]]
    return shown


def _architecture_config(architecture: str, config_json: str) -> PretrainedConfig:
    if architecture == CUSTOM:
        if not (config_json or "").strip():
            raise ValueError("Paste a config.json, or choose a preset architecture.")
        return config_from_json(config_json)
    if architecture not in PRESETS:
        raise ValueError(f"Unknown architecture {architecture!r}: choose one of {list(PRESETS)} or {CUSTOM!r}.")
    return PRESETS[architecture].config()
