"""MSPLoRAModel: a transformers model with a pyramid of shared low-rank adapters.

For a target linear map W0 of block l, the pyramid's update is

    delta_W_l = s_g B_g A_g + s_m B_m(l) A_m(l) + s_l B_l A_l,     s = alpha / rank

where (A_g, B_g) is shared by every block of the stack, (A_m, B_m) by the blocks of
l's mid group, and (A_l, B_l) belongs to block l alone.

    model = get_msplora_model(base_model, MSPLoRAConfig(target_modules=["query", "value"]))
    model.print_trainable_parameters()
    outputs = model(**inputs)          # equal to the base model's until trained

With transformers' Trainer, use `msplora.MSPLoRATrainer`: the wrapper's forward takes
``**kwargs``, so Trainer must keep all dataset columns and receive the label names,
and checkpoints should hold the adapters only.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import torch
from torch import nn

from .analysis import LevelSpectra, level_spectra
from .budget import Budget, budget_from_layout
from .config import MSPLoRAConfig
from .layers import LowRankAdapter, MSPLoRALinear
from .layout import AdapterRecord, Layout, build_layout

__all__ = ["MSPLoRAModel", "get_msplora_model"]

logger = logging.getLogger(__name__)


def get_msplora_model(
    model: nn.Module, config: MSPLoRAConfig, adapter_dtype: torch.dtype = torch.float32
) -> MSPLoRAModel:
    """Wrap `model` with the pyramid described by `config`, freezing the base weights in place.

    Args:
        model: a transformers model (or any module with a ModuleList of repeated blocks).
        config: the pyramid's configuration.
        adapter_dtype: dtype of the adapter weights. Default: float32, also on a bf16 base.

    Raises:
        ValueError: when the targets or the grouping do not fit the model (see `build_layout`).
    """
    return MSPLoRAModel(model, config, adapter_dtype=adapter_dtype)


class MSPLoRAModel(nn.Module):
    """A base model whose target layers apply a pyramid of shared adapters.

    Attributes:
        base_model: the wrapped transformers model; its weights are frozen, except the
            modules named in `modules_to_save`.
        msplora_config: the configuration.
        adapters: every adapter once, keyed ``<role with / for .>/<level>/<group>``.
    """

    def __init__(self, model: nn.Module, config: MSPLoRAConfig, adapter_dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.base_model = model
        self.msplora_config = config
        self.adapter_dtype = adapter_dtype
        self._layout: Layout = build_layout(model, config)
        self._saved_modules = _find_modules_to_save(model, config.modules_to_save)

        model.requires_grad_(False)
        self.adapters = nn.ModuleDict()
        modules = dict(model.named_modules())
        for record in self._layout.adapters:
            device = _first_target_device(modules, self._layout, record)
            self.adapters[record.key] = LowRankAdapter(
                record.in_features, record.out_features, record.rank, record.alpha, dtype=adapter_dtype, device=device
            )
        for target in self._layout.targets:
            adapters = [self.adapters[key] for key in self._layout.assignments[target.path]]
            _replace_module(model, target.path, MSPLoRALinear(modules[target.path], adapters, config.dropout))
        for module in self._saved_modules.values():
            module.requires_grad_(True)
        logger.info(
            "Added %d adapters over %d target modules in %d stack(s)",
            len(self._layout.adapters),
            len(self._layout.targets),
            len(self._layout.stacks),
        )

    # Forward and delegation

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.base_model(*args, **kwargs)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        return self.base_model.generate(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "base_model":
                raise
            return getattr(self.base_model, name)

    # Inspection

    def layout(self) -> list[AdapterRecord]:
        """Return one record per adapter: level, group, role, stack, blocks served, rank, shapes, params."""
        return list(self._layout.adapters)

    @property
    def layout_map(self) -> Layout:
        """The full adapter map, including which adapters each target applies."""
        return self._layout

    def budget(self) -> Budget:
        """Count the trainable parameters per level, with plain LoRA at the top rank for reference."""
        head = sum(p.numel() for m in self._saved_modules.values() for p in m.parameters())
        bytes_per_param = torch.finfo(self.adapter_dtype).bits // 8
        return budget_from_layout(self._layout, self.msplora_config, head=head, bytes_per_param=bytes_per_param)

    def get_nb_trainable_parameters(self) -> tuple[int, int]:
        """Return (trainable parameters, all parameters), each shared adapter counted once."""
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        total = sum(p.numel() for p in self.parameters())
        return trainable, total

    def print_trainable_parameters(self) -> None:
        """Print the trainable parameter count, like PEFT's method of the same name."""
        trainable, total = self.get_nb_trainable_parameters()
        budget = self.budget()
        levels = ", ".join(f"{name} {count:,}" for name, count in budget.by_level.items())
        print(  # noqa: T201 - printing is this method's purpose, as in PEFT
            f"trainable params: {trainable:,} || all params: {total:,} || trainable%: {100 * trainable / total:.4f}"
            f" || adapters by level: {levels} || LoRA r={budget.lora_rank}: {budget.lora_equivalent:,}"
        )

    def level_spectra(self) -> LevelSpectra:
        """Compute the singular values of every adapter's update from its r x r core, grouped by level."""
        return level_spectra(self)

    def level_parameters(self, level: str) -> list[nn.Parameter]:
        """Return the parameters of every adapter of `level`."""
        keys = [r.key for r in self._layout.adapters if r.level == level]
        if not keys and level not in self.msplora_config.level_names:
            raise KeyError(f"No level named {level!r}; this model has {list(self.msplora_config.level_names)}.")
        return [p for key in keys for p in self.adapters[key].parameters()]

    def set_trainable_levels(self, levels: list[str] | tuple[str, ...]) -> None:
        """Make the adapters of `levels` trainable and freeze the other levels (heads stay trainable)."""
        for name in self.msplora_config.level_names:
            for param in self.level_parameters(name):
                param.requires_grad_(name in levels)

    def msplora_layers(self) -> Iterator[tuple[str, MSPLoRALinear]]:
        """Yield (target path, layer) for every adapted layer of the base model."""
        for path, module in self.base_model.named_modules():
            if isinstance(module, MSPLoRALinear):
                yield path, module

    # Merge

    def merge(self, safe_merge: bool = False) -> None:
        """Fold every update into its base weight, so inference costs what the base model costs."""
        for _, layer in self.msplora_layers():
            layer.merge(safe_merge=safe_merge)

    def unmerge(self) -> None:
        """Subtract the updates again, restoring the base weights up to float rounding."""
        for _, layer in self.msplora_layers():
            layer.unmerge()

    @property
    def merged(self) -> bool:
        return any(layer.merged for _, layer in self.msplora_layers())

    def merge_and_unload(self, safe_merge: bool = False) -> nn.Module:
        """Merge, then put the plain base layers back and return the base model."""
        self.merge(safe_merge=safe_merge)
        for path, layer in list(self.msplora_layers()):
            _replace_module(self.base_model, path, layer.base_layer)
        return self.base_model

    @contextlib.contextmanager
    def disable_adapter(self) -> Iterator[None]:
        """Run the base model without the adapters inside this context."""
        layers = [layer for _, layer in self.msplora_layers()]
        if any(layer.merged for layer in layers):
            raise ValueError("Cannot disable merged adapters: call model.unmerge() first.")
        for layer in layers:
            layer.disabled = True
        try:
            yield
        finally:
            for layer in layers:
                layer.disabled = False

    # Saving and loading (implemented in msplora.io)

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs: Any) -> None:
        """Save the adapters and modules_to_save (safetensors) with the config (JSON)."""
        from .io import save_pretrained

        save_pretrained(self, save_directory)

    def load_adapter(self, path: str | os.PathLike) -> None:
        """Load adapter weights saved by `save_pretrained` into this model."""
        from .io import load_adapter_weights

        load_adapter_weights(self, path)

    @classmethod
    def from_pretrained(
        cls, model: nn.Module, path: str | os.PathLike, adapter_dtype: torch.dtype = torch.float32
    ) -> MSPLoRAModel:
        """Wrap `model` with the pyramid saved at `path` and load its weights."""
        from .io import load_pretrained

        return load_pretrained(model, path, adapter_dtype=adapter_dtype)

    def export_peft(self, path: str | os.PathLike) -> None:
        """Write a plain PEFT LoRA adapter with the same outputs (the levels concatenated per block)."""
        from .io import export_peft

        export_peft(self, path)

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Return the adapters and modules_to_save weights, keyed as in `state_dict()`."""
        state = {f"adapters.{key}": value for key, value in self.adapters.state_dict().items()}
        for path, module in self._saved_modules.items():
            for name, value in module.state_dict().items():
                state[f"base_model.{path}.{name}"] = value
        return state

    def layout_records(self) -> list[dict[str, Any]]:
        """Return `layout()` as plain dicts with params and scaling, for JSON and tables."""
        return [{**asdict(r), "params": r.params, "scaling": r.scaling} for r in self._layout.adapters]


def _find_modules_to_save(model: nn.Module, names: list[str] | None) -> dict[str, nn.Module]:
    if not names:
        return {}
    found = {
        path: module
        for path, module in model.named_modules()
        if path and any(path == name or path.endswith("." + name) for name in names)
    }
    # Keep the outermost matches: a parent's parameters already include its children's.
    found = {p: m for p, m in found.items() if not any(p.startswith(q + ".") for q in found if q != p)}
    missing = [name for name in names if not any(p == name or p.endswith("." + name) for p in found)]
    if missing:
        top_level = [path for path, _ in model.named_children()]
        raise ValueError(
            f"modules_to_save {missing} matched no module of {type(model).__name__}. "
            f"Its top-level modules are {top_level}; a classification head is usually 'classifier' or 'score'."
        )
    return found


def _replace_module(model: nn.Module, path: str, new: nn.Module) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, name, new)


def _first_target_device(modules: dict[str, nn.Module], layout: Layout, record: AdapterRecord) -> torch.device:
    for target in layout.targets:
        if record.key in layout.assignments[target.path]:
            return modules[target.path].weight.device
    raise AssertionError(f"adapter {record.key} serves no target")
