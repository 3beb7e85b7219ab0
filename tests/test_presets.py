"""Tests for msplora.presets: offline architecture configs and pasted config.json."""

import json

import pytest
import torch
from transformers import AutoModel, AutoModelForCausalLM

from msplora.presets import PRESETS, config_from_json, list_presets, preset_config

# Parameter counts of the released checkpoints, which a preset must reproduce
# when its model is built on the meta device. The Llama-2 and Mistral counts
# are those of LlamaForCausalLM / MistralForCausalLM with the real weights.
# The BERT-base and RoBERTa-base counts are those of BertModel and RobertaModel.
# The MiniLM-L6 (22.7 M) and MPNet-base (109.5 M) sizes are those of the
# bundled weights that msplora.assets fetches.
PUBLISHED_PARAMETER_COUNTS = {
    "bert-base": 109_482_240,
    "roberta-base": 124_645_632,
    "llama-2-7b": 6_738_415_616,
    "llama-2-13b": 13_015_864_320,
    "llama-2-70b": 68_976_648_192,
    "mistral-7b": 7_241_732_096,
}
ROUNDED_PARAMETER_COUNTS = {"minilm-l6": 22.7e6, "mpnet-base": 109.5e6}


def count_parameters(config):
    model_class = AutoModelForCausalLM if config.model_type in ("llama", "mistral") else AutoModel
    with torch.device("meta"):
        model = model_class.from_config(config)
    return sum(parameter.numel() for parameter in model.parameters())


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMETER_COUNTS))
def test_preset_matches_published_count(name):
    assert count_parameters(preset_config(name)) == PUBLISHED_PARAMETER_COUNTS[name]


@pytest.mark.parametrize("name", sorted(ROUNDED_PARAMETER_COUNTS))
def test_bundled_preset_matches_asset_size(name):
    count = count_parameters(preset_config(name))
    assert round(count / 1e5) * 1e5 == ROUNDED_PARAMETER_COUNTS[name]


def test_llama_70b_grouped_query_attention():
    config = preset_config("llama-2-70b")
    assert config.hidden_size == 8192
    assert config.intermediate_size == 28672
    assert config.num_hidden_layers == 80
    assert config.num_attention_heads == 64
    assert config.num_key_value_heads == 8
    assert config.vocab_size == 32000


def test_unknown_preset_lists_choices():
    with pytest.raises(KeyError, match="llama-2-7b"):
        preset_config("llama-9")


def test_list_presets_names_sources():
    rows = list_presets()
    assert [row["name"] for row in rows] == list(PRESETS)
    for row in rows:
        assert "config.json" in row["source"]
        assert row["default_targets"]
    assert {row["name"] for row in rows if row["bundled"]} == {"minilm-l6", "mpnet-base", "smollm2-135m"}


def test_config_from_json_round_trip():
    text = preset_config("mistral-7b").to_json_string()
    config = config_from_json(text)
    assert type(config).__name__ == "MistralConfig"
    assert config.num_key_value_heads == 8
    assert config.sliding_window == 4096


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "Invalid JSON at line 1"),
        ("[1, 2]", "must be a JSON object, got a list"),
        (json.dumps({"hidden_size": 8}), "no 'model_type'"),
        (json.dumps({"model_type": "no-such-model"}), "Unknown model_type 'no-such-model'"),
    ],
)
def test_config_from_json_rejects_bad_text(text, message):
    with pytest.raises(ValueError, match=message):
        config_from_json(text)
