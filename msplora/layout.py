"""Adapter placement: block stacks, roles, groups and the adapter map.

A *stack* is a ModuleList of repeated transformer blocks (``encoder.layer``,
``transformer.h``, ``model.layers``, T5's ``encoder.block`` and ``decoder.block``),
found from the module tree. A *role* is a target's path with the block index
replaced by ``*`` (``bert.encoder.layer.*.attention.self.query``). Each role of
each stack gets its own pyramid: for every level, the adapted blocks are split into
contiguous groups and each group shares one adapter.

`build_layout` only reads module names and weight shapes, so it works on a model
built on the meta device: the budgets of a 70B model need no weights.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

import numpy as np
from torch import nn
from transformers.pytorch_utils import Conv1D

from .config import LevelConfig, MSPLoRAConfig

__all__ = ["AdapterRecord", "Target", "Layout", "build_layout", "find_block_stacks", "split_groups"]


@dataclass(frozen=True)
class AdapterRecord:
    """One adapter of the pyramid, which may serve several blocks.

    `key` names the adapter in the model's ``adapters`` ModuleDict and state_dict;
    `blocks` are the block indices of `stack` whose update uses it.
    """

    key: str
    level: str
    group: int
    role: str
    stack: str
    blocks: tuple[int, ...]
    rank: int
    alpha: float
    in_features: int
    out_features: int

    @property
    def scaling(self) -> float:
        return self.alpha / self.rank

    @property
    def params(self) -> int:
        """Trainable parameters: r * (in + out) for lora_A (r x in) and lora_B (out x r)."""
        return self.rank * (self.in_features + self.out_features)


@dataclass(frozen=True)
class Target:
    """One adapted linear map: a role in one block."""

    path: str
    stack: str
    block: int
    role: str
    in_features: int
    out_features: int
    fan_in_fan_out: bool  # True for GPT-2's Conv1D, whose weight is stored (in, out)


@dataclass
class Layout:
    """The full adapter map of a model: targets, adapters and which adapters each target applies."""

    targets: list[Target]
    adapters: list[AdapterRecord]
    assignments: dict[str, tuple[str, ...]] = field(default_factory=dict)  # target path -> adapter keys, top level first
    stacks: dict[str, int] = field(default_factory=dict)  # stack path -> number of blocks

    def by_key(self) -> dict[str, AdapterRecord]:
        return {record.key: record for record in self.adapters}


def build_layout(model: nn.Module, config: MSPLoRAConfig) -> Layout:
    """Map every target module of `model` to the adapters of its pyramid.

    Raises:
        ValueError: when no block stack is found, when the targets match nothing or
            match modules outside every stack, or when the grouping does not fit.
    """
    stacks = find_block_stacks(model)
    if not stacks:
        raise ValueError(
            f"No block stack found in {type(model).__name__}: MSPLoRA needs a ModuleList of repeated "
            "transformer blocks (such as encoder.layer or model.layers). Models without one are not supported."
        )
    targets = _find_targets(model, config, stacks)

    # Group the targets by (stack, role, shape): roles whose shapes differ never share.
    roles: dict[tuple[str, str, int, int], list[Target]] = {}
    for target in targets:
        roles.setdefault((target.stack, target.role, target.in_features, target.out_features), []).append(target)
    shapes_per_role: dict[str, int] = {}
    for _, role, _, _ in roles:
        shapes_per_role[role] = shapes_per_role.get(role, 0) + 1

    adapters: list[AdapterRecord] = []
    assignments: dict[str, list[str]] = {t.path: [] for t in targets}
    for (stack, role, in_features, out_features), members in roles.items():
        members = sorted(members, key=lambda t: t.block)
        role_id = role.replace(".", "/")
        if shapes_per_role[role] > 1:
            role_id += f"@{out_features}x{in_features}"
        for level in config.levels:
            for group, positions in enumerate(split_groups(len(members), level, stack)):
                served = [members[p] for p in positions]
                record = AdapterRecord(
                    key=f"{role_id}/{level.name}/{group}",
                    level=level.name,
                    group=group,
                    role=role,
                    stack=stack,
                    blocks=tuple(t.block for t in served),
                    rank=level.rank,
                    alpha=level.alpha,
                    in_features=in_features,
                    out_features=out_features,
                )
                adapters.append(record)
                for target in served:
                    assignments[target.path].append(record.key)
    return Layout(
        targets=targets,
        adapters=adapters,
        assignments={path: tuple(keys) for path, keys in assignments.items()},
        stacks={path: len(blocks) for path, blocks in stacks.items()},
    )


def find_block_stacks(model: nn.Module) -> dict[str, nn.ModuleList]:
    """Return the outermost ModuleLists whose entries are all blocks of one class, by path."""
    stacks: dict[str, nn.ModuleList] = {}
    for path, module in model.named_modules():
        if not isinstance(module, nn.ModuleList) or len(module) == 0:
            continue
        if any(path.startswith(stack + ".") for stack in stacks):
            continue  # nested lists (experts, T5's per-block sublayers) belong to their block
        entry_types = {type(entry) for entry in module}
        if len(entry_types) != 1:
            continue
        entry = module[0]
        # A block contains submodules with weights; a list of bare Linears is not a stack of blocks.
        if isinstance(entry, (nn.Linear, Conv1D, nn.Embedding, nn.LayerNorm)) or not list(entry.children()):
            continue
        stacks[path] = module
    return stacks


def split_groups(count: int, level: LevelConfig, stack: str = "") -> list[list[int]]:
    """Split `count` adapted blocks into the contiguous groups of `level`, as positions.

    The rule follows numpy.array_split: sizes differ by at most one, larger groups first
    (32 blocks into 3 groups -> 11, 11, 10). Explicit boundaries override it.
    """
    positions = list(range(count))
    if level.boundaries is not None:
        if level.boundaries[-1] >= count:
            raise ValueError(
                f"Invalid group boundaries {list(level.boundaries)} for level {level.name!r} in stack "
                f"{stack!r}: it has {count} adapted blocks, so every boundary must be below {count}."
            )
        starts = [0, *level.boundaries, count]
        return [positions[a:b] for a, b in zip(starts, starts[1:])]
    if level.groups is None:
        return [[p] for p in positions]
    if level.groups > count:
        raise ValueError(
            f"Invalid groups={level.groups} for level {level.name!r}: stack {stack!r} has only {count} adapted "
            f"blocks. Use at most {count} groups (mid_groups={count} gives one per block)."
        )
    return [chunk.tolist() for chunk in np.array_split(np.arange(count), level.groups)]


def _find_targets(model: nn.Module, config: MSPLoRAConfig, stacks: dict[str, nn.ModuleList]) -> list[Target]:
    matches = [(path, module) for path, module in model.named_modules() if path and _matches(path, config)]
    if not matches:
        raise ValueError(
            f"target_modules={config.target_modules!r} matched no module of {type(model).__name__}. "
            f"Linear modules inside its blocks are named: {_suggest_names(model, stacks)}."
        )

    if not isinstance(config.target_modules, str):
        unmatched = [name for name in config.target_modules if not any(_matches_name(path, name) for path, _ in matches)]
        if unmatched:
            raise ValueError(
                f"target_modules {unmatched} matched no module of {type(model).__name__}, while "
                f"{[n for n in config.target_modules if n not in unmatched]} did. Fix or remove the unmatched "
                f"names; linear modules inside its blocks are named: {_suggest_names(model, stacks)}."
            )

    targets: list[Target] = []
    outside: list[str] = []
    unsupported: list[str] = []
    allowed = set(config.layers_to_transform) if config.layers_to_transform is not None else None
    for path, module in matches:
        stack, block = _locate(path, stacks)
        if stack is None:
            outside.append(path)
            continue
        if not isinstance(module, (nn.Linear, Conv1D)):
            unsupported.append(f"{path} ({type(module).__name__})")
            continue
        if allowed is not None and block not in allowed:
            continue
        rest = path[len(stack) + 1 :].split(".", 1)[1]
        if isinstance(module, Conv1D):
            in_features, out_features = module.weight.shape
        else:
            in_features, out_features = module.in_features, module.out_features
        targets.append(
            Target(path, stack, block, f"{stack}.*.{rest}", in_features, out_features, isinstance(module, Conv1D))
        )

    if outside:
        raise ValueError(
            f"target_modules={config.target_modules!r} matched modules outside every block stack: "
            f"{outside[:5]}. Adapters are shared across blocks, so targets must sit inside blocks "
            f"({list(stacks)}). Use longer names or a regex, e.g. {_suggest_names(model, stacks)}; "
            "train other modules in full with modules_to_save."
        )
    if unsupported:
        raise ValueError(
            f"target_modules={config.target_modules!r} matched modules that are not linear maps: "
            f"{unsupported[:5]}. Target nn.Linear (or GPT-2 Conv1D) modules such as {_suggest_names(model, stacks)}."
        )
    if allowed is not None:
        sizes = {stack: len(blocks) for stack, blocks in stacks.items()}
        missing = sorted(i for i in allowed if all(i >= n for n in sizes.values()))
        if missing:
            raise ValueError(
                f"Invalid layers_to_transform: blocks {missing} do not exist (stack sizes: {sizes}). "
                "Use indices below the block count."
            )
    if not targets:
        raise ValueError(
            f"layers_to_transform={config.layers_to_transform} leaves no target of {config.target_modules!r} to adapt."
        )
    return targets


def _matches(path: str, config: MSPLoRAConfig) -> bool:
    if isinstance(config.target_modules, str):
        return re.fullmatch(config.target_modules, path) is not None
    return any(_matches_name(path, name) for name in config.target_modules)


def _matches_name(path: str, name: str) -> bool:
    return path == name or path.endswith("." + name)


def _locate(path: str, stacks: dict[str, nn.ModuleList]) -> tuple[str | None, int]:
    """Return the stack that contains `path` and the block index within it."""
    for stack in stacks:
        if path.startswith(stack + "."):
            index = path[len(stack) + 1 :].split(".", 1)[0]
            return stack, int(index)
    return None, -1


def _suggest_names(model: nn.Module, stacks: dict[str, nn.ModuleList]) -> list[str]:
    names: list[str] = []
    for stack, blocks in stacks.items():
        for path, module in blocks[0].named_modules():
            if isinstance(module, (nn.Linear, Conv1D)) and path not in names:
                names.append(path)
    return names or difflib.get_close_matches("query", [p for p, _ in model.named_modules()], n=5)
