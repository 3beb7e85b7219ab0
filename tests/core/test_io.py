"""Save/load round trips, mismatch errors, and export to a PEFT LoRA adapter."""

import json

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import BertConfig, BertForSequenceClassification

from msplora import MSPLoRAConfig, MSPLoRAModel, get_msplora_model

from .tiny_models import ARCHITECTURES, build, output_of, randomize_adapters


def _trained(name, **config_kwargs):
    arch = ARCHITECTURES[name]
    model = get_msplora_model(build(name), MSPLoRAConfig(target_modules=arch.targets, mid_groups=2, **config_kwargs))
    randomize_adapters(model)
    return arch, model


@pytest.mark.parametrize("name", ["bert", "gpt2", "t5"])
def test_save_load_round_trip(name, tmp_path):
    arch, model = _trained(name)
    expected = output_of(model, arch.inputs())
    model.save_pretrained(tmp_path)
    loaded = MSPLoRAModel.from_pretrained(build(name), tmp_path)
    assert torch.equal(output_of(loaded, arch.inputs()), expected)


def test_saved_file_stores_shared_adapters_once(tmp_path):
    _, model = _trained("bert", modules_to_save=["classifier"])
    model.save_pretrained(tmp_path)
    tensors = load_file(tmp_path / "adapter_model.safetensors")
    # 2 roles x (1 + 2 + 5) adapters x 2 matrices, plus classifier weight and bias.
    assert len(tensors) == 2 * 8 * 2 + 2
    metadata = json.loads((tmp_path / "msplora_config.json").read_text())
    assert metadata["config"]["target_modules"] == ["query", "value"]
    assert metadata["shape"]["stacks"] == {"bert.encoder.layer": 5}


def test_modules_to_save_round_trip(tmp_path):
    arch, model = _trained("bert", modules_to_save=["classifier"])
    with torch.no_grad():
        model.base_model.classifier.weight.add_(1.0)
    expected = output_of(model, arch.inputs())
    model.save_pretrained(tmp_path)
    loaded = MSPLoRAModel.from_pretrained(build("bert"), tmp_path)
    assert torch.equal(output_of(loaded, arch.inputs()), expected)


def test_load_into_fewer_blocks_raises(tmp_path):
    _, model = _trained("bert")
    model.save_pretrained(tmp_path)
    smaller = BertForSequenceClassification(
        BertConfig(vocab_size=128, hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64)
    )
    with pytest.raises(ValueError, match="block stacks"):
        MSPLoRAModel.from_pretrained(smaller, tmp_path)


def test_load_into_other_hidden_size_raises(tmp_path):
    _, model = _trained("bert")
    model.save_pretrained(tmp_path)
    wider = BertForSequenceClassification(
        BertConfig(vocab_size=128, hidden_size=48, num_hidden_layers=5, num_attention_heads=2, intermediate_size=64)
    )
    with pytest.raises(ValueError, match="target shapes"):
        MSPLoRAModel.from_pretrained(wider, tmp_path)


def test_load_into_other_architecture_raises(tmp_path):
    _, model = _trained("bert")
    model.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="does not fit this base model"):
        MSPLoRAModel.from_pretrained(build("llama"), tmp_path)


def test_load_from_missing_folder_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="not an MSPLoRA adapter folder"):
        MSPLoRAModel.from_pretrained(build("bert"), tmp_path)


@pytest.mark.parametrize("name", ["bert", "gpt2", "llama", "t5"])
def test_export_peft_same_outputs(name, tmp_path):
    arch, model = _trained(name)
    expected = output_of(model, arch.inputs())
    model.export_peft(tmp_path)
    peft_model = PeftModel.from_pretrained(build(name), tmp_path)
    torch.testing.assert_close(output_of(peft_model, arch.inputs()), expected, rtol=1e-5, atol=1e-5)
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    assert config["r"] == 14  # 8 + 4 + 2, the levels concatenated
    assert config["lora_alpha"] == 14  # PEFT's scaling lora_alpha / r = 1; the levels' scalings are in lora_B


def test_export_peft_with_head(tmp_path):
    arch, model = _trained("bert", modules_to_save=["classifier"])
    with torch.no_grad():
        model.base_model.classifier.bias.add_(0.5)
    expected = output_of(model, arch.inputs())
    model.export_peft(tmp_path)
    peft_model = PeftModel.from_pretrained(build("bert"), tmp_path)
    torch.testing.assert_close(output_of(peft_model, arch.inputs()), expected, rtol=1e-5, atol=1e-5)


def test_export_merged_model_raises(tmp_path):
    _, model = _trained("bert")
    model.merge()
    with pytest.raises(ValueError, match="unmerge"):
        model.export_peft(tmp_path)
