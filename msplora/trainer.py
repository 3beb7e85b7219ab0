"""transformers' Trainer, set up for MSPLoRA models.

Three things differ from training a plain transformers model:

- MSPLoRAModel.forward takes ``**kwargs``, so Trainer cannot read its signature. It must
  keep every dataset column (``remove_unused_columns=False``; hand it only model inputs
  and labels) and receive the label names, or evaluation returns no labels.
- Checkpoints hold the adapters and modules_to_save only (`save_pretrained`), not the
  frozen base weights, and resuming loads them back.
- With ``staged=True`` in the config, `StagedTrainingCallback` is added.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import torch
from transformers import Trainer

from .model import MSPLoRAModel
from .staged import StagedTrainingCallback

__all__ = ["MSPLoRATrainer"]

logger = logging.getLogger(__name__)

TRAINING_ARGS_NAME = "training_args.bin"


class MSPLoRATrainer(Trainer):
    """A Trainer whose checkpoints are MSPLoRA adapters; other models train as with Trainer."""

    def __init__(self, model: Any = None, args: Any = None, **kwargs: Any) -> None:
        if isinstance(model, MSPLoRAModel) and args is not None:
            if args.remove_unused_columns:
                logger.info("Setting remove_unused_columns=False: MSPLoRAModel.forward takes **kwargs")
                args.remove_unused_columns = False
            if args.label_names is None:
                args.label_names = ["labels"]
        super().__init__(model=model, args=args, **kwargs)
        if isinstance(model, MSPLoRAModel) and model.msplora_config.staged:
            self.add_callback(StagedTrainingCallback(model))

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        if not isinstance(self.model, MSPLoRAModel):
            return super()._save(output_dir, state_dict)
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if not self.args.should_save:
            return
        os.makedirs(output_dir, exist_ok=True)
        self.model.save_pretrained(output_dir)
        if self.processing_class is not None:
            self.processing_class.save_pretrained(output_dir)
        torch.save(self.args, os.path.join(output_dir, TRAINING_ARGS_NAME))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        if not isinstance(self.model, MSPLoRAModel):
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        logger.info("Loading MSPLoRA adapter weights from %s", resume_from_checkpoint)
        self.model.load_adapter(resume_from_checkpoint)

    def _load_best_model(self) -> None:
        if not isinstance(self.model, MSPLoRAModel):
            return super()._load_best_model()
        logger.info("Loading the best adapter from %s", self.state.best_model_checkpoint)
        self.model.load_adapter(self.state.best_model_checkpoint)
