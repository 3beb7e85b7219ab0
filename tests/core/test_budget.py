"""budget_from_config: exact budgets from a config alone, checked against live models and formulas."""

import time

import pytest
from transformers import AutoConfig, LlamaConfig

from msplora import MSPLoRAConfig, budget_from_config, get_msplora_model

from .tiny_models import ARCHITECTURES, build


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_config_budget_equals_model_budget(name):
    arch = ARCHITECTURES[name]
    config = MSPLoRAConfig(target_modules=arch.targets, mid_groups=2)
    base = build(name)
    from_config = budget_from_config(base.config, config)
    live = get_msplora_model(base, config).budget()
    assert from_config.by_level == live.by_level
    assert from_config.total == live.total
    assert from_config.lora_equivalent == live.lora_equivalent


def test_llama2_70b_budget_by_formula():
    # Llama-2-70B's published config: hidden 8192, 80 layers, 64 heads, 8 KV heads of 128 -> v_proj 8192 -> 1024.
    hf_config = LlamaConfig(hidden_size=8192, intermediate_size=28672, num_hidden_layers=80,
                            num_attention_heads=64, num_key_value_heads=8, vocab_size=32000)
    started = time.perf_counter()
    budget = budget_from_config(hf_config, MSPLoRAConfig(target_modules=["q_proj", "v_proj"]))
    elapsed = time.perf_counter() - started
    q, v = 8192 + 8192, 8192 + 1024  # in + out per role
    # 80 blocks -> mid groups of 27, 27, 26; one layer adapter per block.
    assert budget.by_level == {"global": 8 * (q + v), "mid": 3 * 4 * (q + v), "layer": 80 * 2 * (q + v)}
    assert budget.total == 4_608_000
    assert budget.lora_equivalent == 80 * 8 * (q + v) == 16_384_000
    assert elapsed < 10  # a loose bound for a loaded CI machine; bench/ measures the real time


def test_t5_config_budget_counts_both_stacks():
    hf_config = AutoConfig.for_model("t5", vocab_size=128, d_model=32, d_kv=8, d_ff=64, num_layers=3,
                                     num_decoder_layers=2, num_heads=4)
    budget = budget_from_config(hf_config, MSPLoRAConfig(target_modules=["q"], mid_groups=2))
    # Roles: encoder self-attn q (3 blocks), decoder self-attn q and cross-attn q (2 blocks each); q is 32 -> 32.
    per_rank = 64
    expected_global = 3 * 8 * per_rank
    expected_mid = 3 * 2 * 4 * per_rank
    expected_layer = (3 + 2 + 2) * 2 * per_rank
    assert budget.by_level == {"global": expected_global, "mid": expected_mid, "layer": expected_layer}


def test_budget_ratio_and_dict():
    hf_config = ARCHITECTURES["bert"].build().config
    budget = budget_from_config(hf_config, MSPLoRAConfig(target_modules=["query", "value"]))
    assert budget.ratio_to_lora == pytest.approx(3840 / 5120)
    data = budget.to_dict()
    assert data["by_level"] == {"global": 1024, "mid": 1536, "layer": 1280}
    assert data["ratio_to_lora"] == pytest.approx(0.75)
