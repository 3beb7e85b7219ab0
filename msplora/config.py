"""Configuration of an MSPLoRA pyramid.

`MSPLoRAConfig` describes which linear maps get adapters and how the pyramid is
shaped. The usual form gives a top rank, a rank decay and a number of mid groups:

    MSPLoRAConfig(target_modules=["query", "value"], rank=8, rank_decay=2.0, mid_groups=3)
    # levels: global (1 group, rank 8), mid (3 groups, rank 4), layer (1 per block, rank 2)

The general form lists the levels explicitly, so plain LoRA (one per-block level)
and a global-only tied LoRA are special cases of the same code:

    MSPLoRAConfig(target_modules=["query", "value"],
                  levels=[LevelConfig("layer", groups=None, rank=8, alpha=16)])
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Sequence

__all__ = ["LEVEL_NAMES", "LevelConfig", "MSPLoRAConfig"]

# The three levels of the pyramid, from the widest sharing to none.
LEVEL_NAMES = ("global", "mid", "layer")


@dataclass(frozen=True)
class LevelConfig:
    """One level of the pyramid: how its blocks are grouped and the rank of each adapter.

    Attributes:
        name: the level's name, used in parameter names, budgets and plots.
        groups: number of contiguous groups of blocks per stack (1 means one adapter
            shared by the whole stack), or None for one adapter per block.
        rank: rank r of every adapter of this level. Must be at least 1.
        alpha: scaling numerator; the adapter's update is scaled by alpha / rank.
        boundaries: explicit group start positions (indices into the adapted blocks,
            strictly increasing, first > 0). Overrides `groups` when given.
    """

    name: str
    groups: int | None
    rank: int
    alpha: float
    boundaries: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if not self.name or "." in self.name or "_" in self.name:
            raise ValueError(
                f"Invalid level name {self.name!r}: use a non-empty name without '.' or '_', e.g. 'global'."
            )
        if self.groups is not None and (not isinstance(self.groups, int) or self.groups < 1):
            raise ValueError(
                f"Invalid groups={self.groups!r} for level {self.name!r}: use a positive integer, "
                "or None for one adapter per block."
            )
        if not isinstance(self.rank, int) or self.rank < 1:
            raise ValueError(
                f"Invalid rank={self.rank!r} for level {self.name!r}: every level needs rank >= 1. "
                "Raise the top rank or lower rank_decay."
            )
        if not math.isfinite(self.alpha) or self.alpha <= 0:
            raise ValueError(f"Invalid alpha={self.alpha!r} for level {self.name!r}: use a positive number.")
        if self.boundaries is not None:
            object.__setattr__(self, "boundaries", tuple(self.boundaries))
            _check_boundaries(self.boundaries, where=f"level {self.name!r}")

    @property
    def scaling(self) -> float:
        """The factor s = alpha / rank applied to this level's update."""
        return self.alpha / self.rank

    @property
    def per_block(self) -> bool:
        return self.groups is None and self.boundaries is None


@dataclass
class MSPLoRAConfig:
    """Configuration of an MSPLoRA model.

    Attributes:
        target_modules: names matched against the end of a module path
            (``["query", "value"]`` matches ``...attention.self.query``), or one regular
            expression string matched against the whole path.
        rank: rank of the global level, the top of the pyramid. Default: 8.
        rank_decay: factor by which the rank falls from level to level, rounded down
            (8 -> 4 -> 2 for decay 2). Must be >= 1. Default: 2.0.
        mid_groups: number of contiguous groups of blocks that share a mid adapter,
            split as evenly as possible with larger groups first. Default: 3.
        alpha: scaling numerator, one value for all levels or one per enabled level;
            each level's update is scaled by alpha / rank. Default: 16.
        dropout: dropout probability applied to the adapter input only. Default: 0.0.
        layers_to_transform: block indices to adapt in every stack (None: all blocks).
        group_boundaries: explicit start positions of the mid groups after the first,
            as indices into the adapted blocks (``[2, 4]`` splits 6 blocks into
            0-1, 2-3, 4-5). Overrides `mid_groups`.
        modules_to_save: modules outside the adapters that are trained and saved in full,
            such as a classification head (``["classifier"]``).
        staged: unfreeze the levels one after another (global first) over equal shares
            of the training steps. Read by the trainers; the model itself ignores it.
        enabled_levels: which of global, mid and layer exist. Default: all three.
        levels: the general form. When given, it replaces rank, rank_decay, mid_groups,
            alpha, group_boundaries and enabled_levels.

    Raises:
        ValueError: on any invalid value, naming the value and the fix.
    """

    target_modules: list[str] | str = field(default_factory=lambda: ["query", "value"])
    rank: int = 8
    rank_decay: float = 2.0
    mid_groups: int = 3
    alpha: float | Sequence[float] = 16.0
    dropout: float = 0.0
    layers_to_transform: list[int] | None = None
    group_boundaries: list[int] | None = None
    modules_to_save: list[str] | None = None
    staged: bool = False
    enabled_levels: tuple[str, ...] = LEVEL_NAMES
    levels: list[LevelConfig] | None = None

    def __post_init__(self) -> None:
        self._check_targets()
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"Invalid dropout={self.dropout!r}: use a probability in [0, 1).")
        if self.layers_to_transform is not None:
            if isinstance(self.layers_to_transform, int):
                self.layers_to_transform = [self.layers_to_transform]
            self.layers_to_transform = sorted(set(int(i) for i in self.layers_to_transform))
            if not self.layers_to_transform or self.layers_to_transform[0] < 0:
                raise ValueError(
                    f"Invalid layers_to_transform={self.layers_to_transform!r}: "
                    "use a non-empty list of block indices >= 0, or None for all blocks."
                )
        if self.modules_to_save is not None:
            self.modules_to_save = list(self.modules_to_save)
        if self.levels is not None:
            self.levels = [lv if isinstance(lv, LevelConfig) else LevelConfig(**lv) for lv in self.levels]
            if not self.levels:
                raise ValueError("Invalid levels=[]: give at least one level, or levels=None for the default pyramid.")
            names = [lv.name for lv in self.levels]
            if len(set(names)) != len(names):
                raise ValueError(f"Invalid levels: duplicate level names {names}. Give each level its own name.")
        else:
            self.levels = self._default_levels()

    # Public properties

    @property
    def level_ranks(self) -> tuple[int, ...]:
        """The rank of each level, top first, e.g. (8, 4, 2)."""
        return tuple(lv.rank for lv in self.levels)

    @property
    def level_names(self) -> tuple[str, ...]:
        return tuple(lv.name for lv in self.levels)

    @property
    def total_rank(self) -> int:
        """The rank of one block's combined update: the level ranks added up."""
        return sum(self.level_ranks)

    def level(self, name: str) -> LevelConfig:
        for lv in self.levels:
            if lv.name == name:
                return lv
        raise KeyError(f"No level named {name!r}; this config has {list(self.level_names)}.")

    # Constructors for the special cases

    @classmethod
    def lora(cls, target_modules: list[str] | str, rank: int = 8, alpha: float = 16.0, **kwargs: Any) -> MSPLoRAConfig:
        """Build plain LoRA as a one-level pyramid: one adapter per block."""
        return cls(target_modules=target_modules, levels=[LevelConfig("layer", None, rank, alpha)], **kwargs)

    @classmethod
    def tied_lora(
        cls, target_modules: list[str] | str, rank: int = 8, alpha: float = 16.0, **kwargs: Any
    ) -> MSPLoRAConfig:
        """Build a global-only pyramid: one adapter per role shared by every block."""
        return cls(target_modules=target_modules, levels=[LevelConfig("global", 1, rank, alpha)], **kwargs)

    # Serialisation

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["levels"] = [asdict(lv) for lv in self.levels]
        data["enabled_levels"] = list(self.enabled_levels)
        data["alpha"] = list(self.alpha) if isinstance(self.alpha, (list, tuple)) else self.alpha
        for lv in data["levels"]:
            if lv["boundaries"] is not None:
                lv["boundaries"] = list(lv["boundaries"])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MSPLoRAConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"Unknown MSPLoRAConfig fields {unknown}; valid fields are {sorted(known)}.")
        data = dict(data)
        if data.get("levels") is not None:
            data["levels"] = [LevelConfig(**lv) for lv in data["levels"]]
        if "enabled_levels" in data:
            data["enabled_levels"] = tuple(data["enabled_levels"])
        return cls(**data)

    # Private helpers

    def _check_targets(self) -> None:
        targets = self.target_modules
        if isinstance(targets, str):
            try:
                re.compile(targets)
            except re.error as err:
                raise ValueError(f"Invalid target_modules regex {targets!r}: {err}.") from None
            return
        if not isinstance(targets, (list, tuple)) or not targets or not all(isinstance(t, str) and t for t in targets):
            raise ValueError(
                f"Invalid target_modules={targets!r}: give a non-empty list of module names such as "
                "['query', 'value'], or one regular expression string."
            )
        self.target_modules = list(targets)

    def _default_levels(self) -> list[LevelConfig]:
        if not isinstance(self.rank, int) or self.rank < 1:
            raise ValueError(f"Invalid rank={self.rank!r}: use an integer >= 1 (the top level's rank).")
        if not isinstance(self.rank_decay, (int, float)) or not self.rank_decay >= 1.0:
            raise ValueError(
                f"Invalid rank_decay={self.rank_decay!r}: use a number >= 1 (1 keeps every level at the "
                "top rank, 2 halves the rank at each level)."
            )
        enabled = tuple(self.enabled_levels)
        unknown = [name for name in enabled if name not in LEVEL_NAMES]
        if unknown or not enabled or len(set(enabled)) != len(enabled):
            raise ValueError(
                f"Invalid enabled_levels={list(enabled)!r}: choose one or more distinct levels of {list(LEVEL_NAMES)}."
            )
        self.enabled_levels = tuple(name for name in LEVEL_NAMES if name in enabled)
        alphas = self._alphas(len(self.enabled_levels))
        if self.group_boundaries is not None:
            self.group_boundaries = [int(b) for b in self.group_boundaries]
            _check_boundaries(self.group_boundaries, where="group_boundaries")
        elif not isinstance(self.mid_groups, int) or self.mid_groups < 1:
            raise ValueError(f"Invalid mid_groups={self.mid_groups!r}: use an integer >= 1.")

        levels = []
        for name, alpha in zip(self.enabled_levels, alphas):
            # Ranks fall by position in the full pyramid, so disabling mid keeps layer at rank / decay**2.
            depth = LEVEL_NAMES.index(name)
            rank = math.floor(self.rank / self.rank_decay**depth + 1e-9)
            if rank < 1:
                raise ValueError(
                    f"Invalid rank={self.rank} with rank_decay={self.rank_decay}: the {name} level's rank "
                    f"would be {self.rank}/{self.rank_decay}^{depth} < 1. Raise rank or lower rank_decay."
                )
            if name == "global":
                levels.append(LevelConfig(name, 1, rank, alpha))
            elif name == "mid":
                boundaries = tuple(self.group_boundaries) if self.group_boundaries is not None else None
                levels.append(LevelConfig(name, self.mid_groups, rank, alpha, boundaries))
            else:
                levels.append(LevelConfig(name, None, rank, alpha))
        return levels

    def _alphas(self, count: int) -> list[float]:
        if isinstance(self.alpha, (list, tuple)):
            if len(self.alpha) != count:
                raise ValueError(
                    f"Invalid alpha={list(self.alpha)!r}: give one value, or exactly {count} values "
                    f"(one per enabled level {list(self.enabled_levels)})."
                )
            return [float(a) for a in self.alpha]
        if not isinstance(self.alpha, (int, float)):
            raise ValueError(f"Invalid alpha={self.alpha!r}: use a positive number or a list of them.")
        return [float(self.alpha)] * count


def _check_boundaries(boundaries: Sequence[int], where: str) -> None:
    values = list(boundaries)
    if not values:
        raise ValueError(f"Invalid {where}=[]: give group start positions such as [2, 4], or None.")
    if values[0] <= 0 or any(b <= a for a, b in zip(values, values[1:])):
        raise ValueError(
            f"Invalid {where}={values}: group start positions must be strictly increasing and > 0 "
            "(the first group always starts at block 0), e.g. [2, 4] for groups 0-1, 2-3, 4-5."
        )
