"""Architecture presets: transformers configs of common models, built offline.

Budgets depend only on an architecture's shapes, so `msplora.budget_from_config`
needs a config and no weights. This module rebuilds the configs of well-known
models from their published hyperparameters, so the what-if screen and the
command line can size MSPLoRA for Llama-2-70B on a laptop with no hub access.
Each preset names its source: the `config.json` on the model's Hugging Face
model card, copied field by field for the fields that shape the network.

    config = preset_config("llama-2-70b")       # a transformers LlamaConfig
    config = config_from_json(pasted_text)      # any config.json a user pastes
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from transformers import AutoConfig, PretrainedConfig
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

__all__ = ["Preset", "PRESETS", "preset_config", "list_presets", "config_from_json"]


@dataclass(frozen=True)
class Preset:
    """A named architecture: the transformers `model_type` and the fields that shape it."""

    name: str
    model_type: str
    source: str
    fields: dict[str, Any] = field(default_factory=dict)
    default_targets: tuple[str, ...] = ()
    bundled: bool = False

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("Preset name is empty. Give it a short id such as 'bert-base'.")
        if not self.default_targets:
            raise ValueError(
                f"Preset {self.name!r} has no default_targets. List the query/value "
                "module names of its attention, e.g. ('query', 'value')."
            )

    def config(self) -> PretrainedConfig:
        """Build the transformers config of this architecture (no weights, no network)."""
        return AutoConfig.for_model(self.model_type, **self.fields)


_BERT_TARGETS = ("query", "value")
_LLAMA_TARGETS = ("q_proj", "v_proj")

PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in [
        # Bundled assets: the shapes of the models `msplora.assets` fetches offline.
        Preset(
            "minilm-l6",
            "bert",
            "sentence-transformers/all-MiniLM-L6-v2, config.json on its model card",
            dict(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                 intermediate_size=1536, max_position_embeddings=512, type_vocab_size=2),
            _BERT_TARGETS,
            bundled=True,
        ),
        Preset(
            "mpnet-base",
            "mpnet",
            "sentence-transformers/all-mpnet-base-v2, config.json on its model card",
            dict(vocab_size=30527, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072, max_position_embeddings=514),
            ("q", "v"),
            bundled=True,
        ),
        Preset(
            "smollm2-135m",
            "llama",
            "HuggingFaceTB/SmolLM2-135M-Instruct, config.json on its model card",
            dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                 num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                 tie_word_embeddings=True),
            _LLAMA_TARGETS,
            bundled=True,
        ),
        # Common models of the LoRA literature.
        Preset(
            "bert-base",
            "bert",
            "google-bert/bert-base-uncased, config.json on its model card",
            dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072, max_position_embeddings=512, type_vocab_size=2),
            _BERT_TARGETS,
        ),
        Preset(
            "bert-large",
            "bert",
            "google-bert/bert-large-uncased, config.json on its model card",
            dict(vocab_size=30522, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                 intermediate_size=4096, max_position_embeddings=512, type_vocab_size=2),
            _BERT_TARGETS,
        ),
        Preset(
            "roberta-base",
            "roberta",
            "FacebookAI/roberta-base, config.json on its model card",
            dict(vocab_size=50265, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072, max_position_embeddings=514, type_vocab_size=1),
            _BERT_TARGETS,
        ),
        Preset(
            "roberta-large",
            "roberta",
            "FacebookAI/roberta-large, config.json on its model card",
            dict(vocab_size=50265, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                 intermediate_size=4096, max_position_embeddings=514, type_vocab_size=1),
            _BERT_TARGETS,
        ),
        Preset(
            "llama-2-7b",
            "llama",
            "meta-llama/Llama-2-7b-hf, config.json on its model card",
            dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                 num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096),
            _LLAMA_TARGETS,
        ),
        Preset(
            "llama-2-13b",
            "llama",
            "meta-llama/Llama-2-13b-hf, config.json on its model card",
            dict(vocab_size=32000, hidden_size=5120, intermediate_size=13824, num_hidden_layers=40,
                 num_attention_heads=40, num_key_value_heads=40, max_position_embeddings=4096),
            _LLAMA_TARGETS,
        ),
        Preset(
            "llama-2-70b",
            "llama",
            "meta-llama/Llama-2-70b-hf, config.json on its model card",
            dict(vocab_size=32000, hidden_size=8192, intermediate_size=28672, num_hidden_layers=80,
                 num_attention_heads=64, num_key_value_heads=8, max_position_embeddings=4096),
            _LLAMA_TARGETS,
        ),
        Preset(
            "mistral-7b",
            "mistral",
            "mistralai/Mistral-7B-v0.1, config.json on its model card",
            dict(vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                 num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=32768,
                 sliding_window=4096),
            _LLAMA_TARGETS,
        ),
    ]
}


def preset_config(name: str) -> PretrainedConfig:
    """Build the transformers config of the preset `name` (see `PRESETS`)."""
    if name not in PRESETS:
        raise KeyError(f"Unknown preset {name!r}. Choose one of {sorted(PRESETS)}.")
    return PRESETS[name].config()


def list_presets() -> list[dict[str, Any]]:
    """Describe every preset: name, model_type, layers, hidden size, source, default targets."""
    rows = []
    for preset in PRESETS.values():
        rows.append(
            {
                "name": preset.name,
                "model_type": preset.model_type,
                "layers": preset.fields["num_hidden_layers"],
                "hidden_size": preset.fields["hidden_size"],
                "bundled": preset.bundled,
                "default_targets": list(preset.default_targets),
                "source": preset.source,
            }
        )
    return rows


def config_from_json(text: str) -> PretrainedConfig:
    """Build a transformers config from the text of a `config.json`.

    Raises:
        ValueError: the text is not a JSON object, has no `model_type`, or names
            a `model_type` that this transformers version does not know.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"Invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}. "
            "Paste the whole config.json of a transformers model."
        ) from error
    if not isinstance(data, dict):
        raise ValueError(
            f"The config must be a JSON object, got a {type(data).__name__}. "
            "Paste the whole config.json of a transformers model."
        )

    model_type = data.pop("model_type", None)
    if not model_type:
        raise ValueError(
            "The config has no 'model_type' field. Add one such as \"model_type\": \"llama\" "
            "(every transformers config.json has it)."
        )
    if model_type not in CONFIG_MAPPING:
        raise ValueError(
            f"Unknown model_type {model_type!r} for transformers. Use a model_type that "
            "transformers supports, such as 'bert', 'roberta', 'llama' or 'mistral'."
        )
    return AutoConfig.for_model(model_type, **data)
