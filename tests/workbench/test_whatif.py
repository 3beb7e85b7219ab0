"""Tests for workbench.whatif: exact budgets of presets and pasted configs, as table and CSV."""

import pandas as pd

from msplora.presets import preset_config
from workbench import whatif


def test_llama_70b_lora_budget(tmp_path):
    result = whatif.whatif("llama-2-70b", "", "q_proj, v_proj", [8], [2.0], [3], export_dir=tmp_path)
    lora = result.table[result.table["method"] == "LoRA"].iloc[0]
    # Formula r * (in + out) per layer: q 8 * (8192 + 8192) + v 8 * (8192 + 1024), times 80 layers.
    assert lora["total"] == 80 * (8 * 16384 + 8 * 9216)
    msplora = result.table[result.table["method"] == "MSPLoRA"].iloc[0]
    assert msplora["level_ranks"] == "8/4/2"
    assert msplora["total"] == msplora["global"] + msplora["mid"] + msplora["layer"]
    assert msplora["lora_same_rank"] == lora["total"]


def test_csv_export_round_trip(tmp_path):
    result = whatif.whatif("bert-base", "", "query, value", [4, 8], [2.0], [2, 3], export_dir=tmp_path)
    assert result.csv_path.endswith("budgets-bert-base.csv")
    saved = pd.read_csv(result.csv_path)
    assert list(saved.columns) == whatif.TABLE_COLUMNS
    assert len(saved) == len(result.table) == 2 * (1 + 2)


def test_invalid_combinations_skipped():
    result = whatif.whatif("minilm-l6", "", "query, value", [8], [4.0], [3, 9])
    assert list(result.table["method"]) == ["LoRA"]
    assert "Skipped invalid combinations" in result.notes
    assert "8/4.0^2 < 1" in result.notes


def test_custom_config_json():
    text = preset_config("mistral-7b").to_json_string()
    result = whatif.whatif(whatif.CUSTOM, text, "q_proj, v_proj", [16], [2.0], [4])
    assert len(result.table) == 2
    assert result.notes.startswith("2 budgets")


def test_custom_config_errors_shown():
    result = whatif.whatif(whatif.CUSTOM, "{broken", "q_proj", [8], [2.0], [3])
    assert result.table.empty
    assert "Invalid JSON" in result.notes
    unknown = whatif.whatif(whatif.CUSTOM, '{"model_type": "nope"}', "q_proj", [8], [2.0], [3])
    assert "Unknown model_type 'nope'" in unknown.notes


def test_unknown_targets_explained():
    result = whatif.whatif("llama-2-7b", "", "query", [8], [2.0], [3])
    assert "matched no module" in result.notes


def test_default_targets_per_preset():
    assert whatif.default_targets("mpnet-base") == "q, v"
    assert whatif.default_targets("roberta-base") == "query, value"


def test_display_table_thousands_separators():
    result = whatif.whatif("llama-2-7b", "", "q_proj, v_proj", [8], [2.0], [3])
    shown = whatif.display_table(result.table)
    lora = shown[shown["method"] == "LoRA"].iloc[0]
    # Formula r * (in + out) per layer: q and v, 8 * (4096 + 4096) each, times 32 layers = 4,194,304.
    assert lora["total"] == "4,194,304"
    assert lora["rank_decay"] == ""
    assert shown[shown["method"] == "MSPLoRA"].iloc[0]["rank_decay"] == "2"
    # The returned table stays numeric for the CSV export.
    assert result.table[result.table["method"] == "LoRA"].iloc[0]["total"] == 4194304
