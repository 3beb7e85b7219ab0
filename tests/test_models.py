"""Tests of msplora.models with tiny models built from configs, and the bundled models where noted."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    DistilBertConfig,
    DistilBertModel,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    MPNetConfig,
    MPNetModel,
    T5Config,
    T5Model,
)

from msplora import MSPLoRAConfig, assets, build_layout
from msplora.models import ModelError, default_target_modules, load_model, load_tokenizer, suggest_target_modules

_VOCAB = 30_522  # the MiniLM (BERT uncased) tokenizer's vocabulary size


@pytest.fixture(scope="session")
def minilm_folder():
    return assets.fetch("minilm-l6")


@pytest.fixture(scope="module")
def tiny_bert_folder(tmp_path_factory, minilm_folder):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig(
        vocab_size=_VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
    BertForSequenceClassification(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(minilm_folder, local_files_only=True).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_llama_folder(tmp_path_factory, minilm_folder):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-llama")
    config = LlamaConfig(
        vocab_size=_VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(minilm_folder, local_files_only=True).save_pretrained(folder)
    return folder


# -- loading ---------------------------------------------------------------


def test_local_folder_as_classifier(tiny_bert_folder):
    model, tokenizer = load_model(tiny_bert_folder, "classification", num_labels=3)
    assert type(model).__name__ == "BertForSequenceClassification"
    assert model.config.num_labels == 3
    inputs = tokenizer(["a test"], return_tensors="pt")
    assert model(**inputs).logits.shape == (1, 3)


def test_regression_forces_one_output(tiny_bert_folder):
    model, _ = load_model(tiny_bert_folder, "regression", num_labels=5)
    assert model.config.num_labels == 1
    assert model.config.problem_type == "regression"


def test_problem_type_is_passed(tiny_bert_folder):
    model, _ = load_model(tiny_bert_folder, "classification", num_labels=2, problem_type="single_label_classification")
    assert model.config.problem_type == "single_label_classification"


def test_dtype_by_name(tiny_bert_folder):
    model, _ = load_model(tiny_bert_folder, "classification", dtype="bfloat16")
    assert model.dtype == torch.bfloat16


def test_local_folder_as_causal_lm(tiny_llama_folder):
    model, tokenizer = load_model(tiny_llama_folder, "causal-lm")
    assert type(model).__name__ == "LlamaForCausalLM"
    assert tokenizer.pad_token is not None
    inputs = tokenizer(["a test"], return_tensors="pt")
    output = model(**inputs, labels=inputs["input_ids"])
    assert torch.isfinite(output.loss)


def test_bundled_minilm_as_classifier():
    model, tokenizer = load_model("minilm-l6", "classification", num_labels=2)
    assert model.config.num_hidden_layers == 6  # all-MiniLM-L6-v2: 6 blocks, hidden size 384
    assert model.config.hidden_size == 384
    assert tokenizer("hello")["input_ids"] == [101, 7592, 102]  # [CLS] hello [SEP] in the BERT uncased vocabulary


def test_load_tokenizer_alone(tiny_bert_folder):
    tokenizer = load_tokenizer(tiny_bert_folder)
    assert tokenizer.pad_token == "[PAD]"


def test_missing_folder_rejected(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "absent", "classification")


def test_folder_without_config_rejected(tmp_path):
    with pytest.raises(ModelError, match="no config.json"):
        load_model(tmp_path, "classification")


def test_dataset_name_rejected():
    with pytest.raises(ModelError, match="is a dataset"):
        load_model("movie-sentences", "classification")


def test_registry_model_task_mismatch():
    with pytest.raises(ModelError, match="supports the tasks"):
        load_model("minilm-l6", "causal-lm")


def test_invalid_task_rejected(tiny_bert_folder):
    with pytest.raises(ModelError, match="task='seq2seq'"):
        load_model(tiny_bert_folder, "seq2seq")


def test_hub_id_offline_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="hub access is off"):
        load_model("someone/some-model", "classification")


@pytest.mark.slow
def test_bundled_smollm2_as_causal_lm():
    model, tokenizer = load_model("smollm2-135m", "causal-lm")
    assert type(model).__name__ == "LlamaForCausalLM"
    assert model.config.num_hidden_layers == 30  # SmolLM2-135M: 30 blocks
    assert model.dtype == torch.float32
    assert tokenizer.chat_template
    converted = assets.cache_dir() / "converted"
    assert any(converted.glob("smollm2-135m-*/model.safetensors"))


@pytest.mark.slow
def test_bundled_mpnet_as_regressor():
    model, _ = load_model("mpnet-base", "regression")
    assert type(model).__name__ == "MPNetForSequenceClassification"
    assert model.config.num_hidden_layers == 12  # all-mpnet-base-v2: 12 blocks, hidden size 768


# -- target modules --------------------------------------------------------


def _tiny(config_class, model_class, **sizes):
    torch.manual_seed(0)
    return model_class(config_class(**sizes))


_SMALL = {"vocab_size": 100}


@pytest.mark.parametrize(
    ("model_factory", "suggested", "default"),
    [
        (
            lambda: _tiny(BertConfig, BertForSequenceClassification, hidden_size=16, num_hidden_layers=2,
                          num_attention_heads=2, intermediate_size=32, **_SMALL),
            # BERT's pooler is also named dense, so the FFN and output maps get their in-block paths.
            ["query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense"],
            ["query", "value"],
        ),
        (
            lambda: _tiny(MPNetConfig, MPNetModel, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                          intermediate_size=32, **_SMALL),
            ["q", "k", "v", "o", "intermediate.dense", "output.dense"],
            ["q", "v"],
        ),
        (
            lambda: _tiny(LlamaConfig, LlamaForCausalLM, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                          num_key_value_heads=1, intermediate_size=32, **_SMALL),
            ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
            ["q_proj", "v_proj"],
        ),
        (
            lambda: _tiny(GPT2Config, GPT2LMHeadModel, n_embd=16, n_layer=2, n_head=2, **_SMALL),
            ["c_attn", "c_proj", "c_fc"],
            ["c_attn"],
        ),
        (
            lambda: _tiny(DistilBertConfig, DistilBertModel, dim=16, hidden_dim=32, n_layers=2, n_heads=2, **_SMALL),
            ["q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2"],
            ["q_lin", "v_lin"],
        ),
        (
            lambda: _tiny(T5Config, T5Model, d_model=16, d_kv=8, d_ff=32, num_layers=2, num_heads=2, **_SMALL),
            ["q", "k", "v", "o", "wi", "wo"],
            ["q", "v"],
        ),
    ],
    ids=["bert", "mpnet", "llama", "gpt2", "distilbert", "t5"],
)
def test_target_modules_by_architecture(model_factory, suggested, default):
    model = model_factory()
    assert suggest_target_modules(model) == suggested
    assert default_target_modules(model) == default
    # Every suggestion targets modules inside the blocks only, so MSPLoRA accepts all of them.
    build_layout(model, MSPLoRAConfig(target_modules=suggested, mid_groups=1))


def test_target_modules_skip_lora_layers():
    model = _tiny(BertConfig, BertForSequenceClassification, hidden_size=16, num_hidden_layers=2,
                  num_attention_heads=2, intermediate_size=32, **_SMALL)
    wrapped = get_peft_model(model, LoraConfig(r=2, target_modules=["query", "value"]))
    assert suggest_target_modules(wrapped) == [
        "query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense"
    ]


def test_target_modules_exclude_head():
    model = _tiny(BertConfig, BertForSequenceClassification, hidden_size=16, num_hidden_layers=2,
                  num_attention_heads=2, intermediate_size=32, **_SMALL)
    assert "classifier" not in suggest_target_modules(model)


def test_unknown_names_fall_back_to_all():
    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.mix = torch.nn.Linear(4, 4)

    class Stack(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = torch.nn.ModuleList([Block(), Block()])
            self.head = torch.nn.Linear(4, 2)

    assert default_target_modules(Stack()) == ["mix"]
