"""Staged training: unfreeze the levels one after another, global first.

With L levels and N training steps, level k (0 = global) alone is trainable for
steps [k * N / L, (k + 1) * N / L). This schedule comes from the MSPLoRA authors'
published code (a fork of peft 0.5.0); by default all levels train together.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

if TYPE_CHECKING:
    from .model import MSPLoRAModel

__all__ = ["stage_for_step", "StagedTrainingCallback"]

logger = logging.getLogger(__name__)


def stage_for_step(step: int, max_steps: int, levels: tuple[str, ...] | list[str]) -> str:
    """Return the level trained at `step` (0-based) of `max_steps`, over equal shares of the steps."""
    if max_steps < 1:
        raise ValueError(f"Invalid max_steps={max_steps}: staged training needs at least one step.")
    index = min(step * len(levels) // max_steps, len(levels) - 1)
    return levels[index]


class StagedTrainingCallback(TrainerCallback):
    """Freeze every level but the current stage's, moving global -> mid -> layer over the steps.

    Trainer builds its optimizer from the parameters that require gradients when training
    starts, so every level must still be trainable then: this callback freezes levels
    only from `on_train_begin` on. A frozen parameter gets no gradient, and AdamW skips it.

    Args:
        model: the MSPLoRAModel being trained.
        max_steps: the number of training steps. Default: Trainer's `state.max_steps`.
    """

    def __init__(self, model: MSPLoRAModel, max_steps: int | None = None) -> None:
        self.model = model
        self.max_steps = max_steps
        self.levels = model.msplora_config.level_names
        self.current: str | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._update(state)

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._update(state)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.model.set_trainable_levels(self.levels)
        self.current = None

    def _update(self, state: Any) -> None:
        max_steps = self.max_steps or state.max_steps
        level = stage_for_step(state.global_step, max_steps, self.levels)
        if level != self.current:
            self.model.set_trainable_levels([level])
            logger.info("Staged training: step %d of %d trains the %s level", state.global_step, max_steps, level)
            self.current = level
