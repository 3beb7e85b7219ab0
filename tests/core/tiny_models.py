"""Tiny random transformers models, one per architecture family, built from small configs.

Each entry gives a model factory, the default query/value targets and a dict of
dummy inputs. Sizes are small enough that every test here runs in well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    MPNetConfig,
    MPNetForSequenceClassification,
    Qwen2Config,
    Qwen2ForCausalLM,
    RobertaConfig,
    RobertaForSequenceClassification,
    T5Config,
    T5ForConditionalGeneration,
)

VOCAB = 128
HIDDEN = 32


@dataclass(frozen=True)
class TinyArch:
    name: str
    build: Callable[[], nn.Module]
    targets: list[str]
    blocks: dict[str, int]  # stack path -> block count

    def inputs(self, seed: int = 0) -> dict[str, torch.Tensor]:
        generator = torch.Generator().manual_seed(seed)
        ids = torch.randint(3, VOCAB, (2, 7), generator=generator)
        if self.name == "t5":
            return {"input_ids": ids, "decoder_input_ids": ids[:, :5]}
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def _llama_like(config_class, model_class):
    def build():
        config = config_class(
            vocab_size=VOCAB,
            hidden_size=HIDDEN,
            intermediate_size=64,
            num_hidden_layers=4,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=64,
        )
        return model_class(config)

    return build


ARCHITECTURES = {
    "bert": TinyArch(
        "bert",
        lambda: BertForSequenceClassification(
            BertConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=5, num_attention_heads=2,
                       intermediate_size=64, max_position_embeddings=64)
        ),
        ["query", "value"],
        {"bert.encoder.layer": 5},
    ),
    "roberta": TinyArch(
        "roberta",
        lambda: RobertaForSequenceClassification(
            RobertaConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=4, num_attention_heads=2,
                          intermediate_size=64, max_position_embeddings=64, pad_token_id=1)
        ),
        ["query", "value"],
        {"roberta.encoder.layer": 4},
    ),
    "mpnet": TinyArch(
        "mpnet",
        lambda: MPNetForSequenceClassification(
            MPNetConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=3, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
        ),
        ["q", "v"],
        {"mpnet.encoder.layer": 3},
    ),
    "distilbert": TinyArch(
        "distilbert",
        lambda: DistilBertForSequenceClassification(
            DistilBertConfig(vocab_size=VOCAB, dim=HIDDEN, n_layers=3, n_heads=2, hidden_dim=64,
                             max_position_embeddings=64)
        ),
        ["q_lin", "v_lin"],
        {"distilbert.transformer.layer": 3},
    ),
    "gpt2": TinyArch(
        "gpt2",
        lambda: GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_embd=HIDDEN, n_layer=3, n_head=2, n_positions=64)),
        ["c_attn"],
        {"transformer.h": 3},
    ),
    "llama": TinyArch("llama", _llama_like(LlamaConfig, LlamaForCausalLM), ["q_proj", "v_proj"], {"model.layers": 4}),
    "qwen2": TinyArch("qwen2", _llama_like(Qwen2Config, Qwen2ForCausalLM), ["q_proj", "v_proj"], {"model.layers": 4}),
    "mistral": TinyArch(
        "mistral", _llama_like(MistralConfig, MistralForCausalLM), ["q_proj", "v_proj"], {"model.layers": 4}
    ),
    "t5": TinyArch(
        "t5",
        lambda: T5ForConditionalGeneration(
            T5Config(vocab_size=VOCAB, d_model=HIDDEN, d_kv=8, d_ff=64, num_layers=3, num_decoder_layers=2,
                     num_heads=4, decoder_start_token_id=0)
        ),
        ["q", "v"],
        {"encoder.block": 3, "decoder.block": 2},
    ),
}


def build(name: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return ARCHITECTURES[name].build().eval()


def output_of(model: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return model(**inputs).logits


def randomize_adapters(model, seed: int = 1, scale: float = 0.1) -> None:
    """Give every lora_B random values, so the update is no longer zero."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for adapter in model.adapters.values():
            adapter.lora_B.copy_(torch.randn(adapter.lora_B.shape, generator=generator) * scale)
