"""One run, start to finish, inside a worker: load, adapt, train with the Trainer, save.

The training loop is transformers' `Trainer` (mixed precision on CUDA, gradient
accumulation, checkpoints every `save_steps`, resume from the last checkpoint).
`StoreCallback` streams the run into the store; `MSPLoRATrainer` adds
`StagedTrainingCallback`, which unfreezes the pyramid's levels in turn, when
`spec.staged` is set.
"""

from __future__ import annotations

import inspect
import json
import logging
import threading
from pathlib import Path

import pandas as pd
import torch
from transformers import DataCollatorForSeq2Seq, DataCollatorWithPadding, PrinterCallback, TrainingArguments, set_seed
from transformers.trainer_utils import get_last_checkpoint

from msplora.metrics import trainer_metric_kwargs
from msplora.trainer import MSPLoRATrainer

from .adapters import AdaptedModel, adapt_model
from .callbacks import RunStopped, StoreCallback
from .spec import RunSpec
from .store import CHECKPOINTS_DIR, RunStore

logger = logging.getLogger(__name__)

# Columns a model batch may carry besides the model's own forward arguments.
_LABEL_COLUMNS = ("label", "labels")


def execute_run(
    store: RunStore, run: dict, *, device: str | None, stop_event: threading.Event
) -> tuple[str, str | None]:
    """Run one claimed run to its end; return (status, error). Exceptions propagate to the worker."""
    run_id = run["id"]
    spec = RunSpec.from_dict(json.loads(run["spec"]))
    run_dir = store.run_dir(run_id)
    spec.to_yaml(run_dir / "spec.yaml")
    device = resolve_device(spec.device or device)
    store.set_device(run_id, device)
    logger.info("run %s: %s on %s, device %s", run_id, spec.method, spec.model, device)

    set_seed(spec.seed)
    task_data, base_model, tokenizer = load_model_and_data(spec)
    adapted = adapt_model(spec, base_model)
    store.set_budget(run_id, adapted.budget)
    if not run["resume"] and getattr(task_data, "majority_baseline", None) is not None:
        store.add_metrics(run_id, [(0, "system", "majority_baseline", task_data.majority_baseline)])

    resume_from = None
    if run["resume"]:
        resume_from = get_last_checkpoint(str(run_dir / CHECKPOINTS_DIR))
        if resume_from:
            logger.info("run %s: resuming from %s", run_id, resume_from)
        else:
            logger.info("run %s: no checkpoint was saved, so the run restarts from step 0", run_id)

    callback = StoreCallback(
        store,
        run_id,
        samples_per_step=spec.batch_size * spec.gradient_accumulation_steps,
        spectra_steps=spec.spectra_steps,
        spectra_fn=adapted.spectra,
        stop_event=stop_event,
        elapsed_before_s=(run["elapsed_s"] or 0.0) if resume_from else 0.0,
    )
    trainer = build_trainer(spec, adapted, task_data, tokenizer, run_dir, device, callback)
    if stop_event.is_set() or store.cancel_requested(run_id):
        callback.stop_reason = "interrupted" if stop_event.is_set() else "cancelled"
    else:
        # Trainer (transformers 5) also evaluates and checkpoints at the final step by itself
        try:
            trainer.train(resume_from_checkpoint=resume_from)
        except RunStopped:
            logger.info("run %s: evaluation abandoned (%s)", run_id, callback.stop_reason)
        if callback.stop_reason is not None:
            save_stop_checkpoint(trainer, run_dir / CHECKPOINTS_DIR, run_id)

    adapted.save(run_dir)
    write_metrics_csv(store, run_id, run_dir / "metrics.csv")
    status = callback.stop_reason or "completed"
    del trainer, adapted, base_model
    return status, None


def resolve_device(requested: str | None) -> str:
    """Pick the device: the requested one, else CUDA, then MPS, then CPU."""
    cuda = torch.cuda.is_available()
    mps = torch.backends.mps.is_available()
    if requested in (None, "auto"):
        if cuda:
            return "cuda"
        if mps:
            return "mps"
        return "cpu"
    if (requested == "cuda" and not cuda) or (requested == "mps" and not mps):
        raise RuntimeError(f"device={requested!r} is not available on this machine; use device=None or 'cpu'")
    return requested


def load_model_and_data(spec: RunSpec):
    """Load the tokenized train/eval splits and the base model sized for their labels."""
    from msplora.data import load_task_data
    from msplora.models import load_model, load_tokenizer

    tokenizer = load_tokenizer(spec.model, trust_remote_code=spec.trust_remote_code)
    task_data = load_task_data(
        spec.dataset,
        spec.task,
        tokenizer,
        max_length=spec.max_length,
        eval_fraction=spec.eval_fraction,
        seed=spec.seed,
        text_column=spec.text_column,
        text_pair_column=spec.text_pair_column,
        label_column=spec.label_column,
        max_train_samples=spec.max_train_samples,
        max_eval_samples=spec.max_eval_samples,
    )
    model, tokenizer = load_model(
        spec.model,
        spec.task,
        num_labels=getattr(task_data, "num_labels", None),
        problem_type=getattr(task_data, "problem_type", None),
        trust_remote_code=spec.trust_remote_code,
    )
    return task_data, model, tokenizer


def build_trainer(
    spec: RunSpec,
    adapted: AdaptedModel,
    task_data,
    tokenizer,
    run_dir: Path,
    device: str,
    store_callback: StoreCallback,
) -> MSPLoRATrainer:
    """Build the Trainer for a run: arguments from the spec, callbacks, metrics, collator."""
    has_eval = task_data.eval is not None and len(task_data.eval) > 0
    args = TrainingArguments(
        output_dir=str(run_dir / CHECKPOINTS_DIR),
        max_steps=spec.max_steps if spec.max_steps is not None else -1,
        num_train_epochs=spec.num_epochs if spec.num_epochs is not None else 1.0,
        per_device_train_batch_size=spec.batch_size,
        per_device_eval_batch_size=spec.batch_size,
        gradient_accumulation_steps=spec.gradient_accumulation_steps,
        learning_rate=spec.learning_rate,
        lr_scheduler_type=spec.lr_scheduler,
        warmup_steps=spec.warmup_ratio,  # a float in [0, 1) is a share of the total steps
        weight_decay=spec.weight_decay,
        logging_strategy="steps",
        logging_steps=spec.logging_steps,
        logging_nan_inf_filter=False,  # let a non-finite loss reach StoreCallback, which fails the run
        eval_strategy="steps" if has_eval else "no",
        eval_steps=spec.eval_steps,
        save_strategy="steps",
        save_steps=spec.save_steps,
        save_total_limit=spec.save_total_limit,
        seed=spec.seed,
        data_seed=spec.seed,
        use_cpu=device == "cpu",
        bf16=device == "cuda" and torch.cuda.is_bf16_supported(),
        fp16=device == "cuda" and not torch.cuda.is_bf16_supported(),
        label_names=["labels"],
        remove_unused_columns=False,  # the MSPLoRA wrapper's forward(**kwargs) hides the real columns
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    # MSPLoRATrainer checkpoints the adapters only and adds StagedTrainingCallback when
    # the config is staged; for a PEFT model it behaves as the plain Trainer.
    inner_model = _inner_model(adapted.model)
    trainer = MSPLoRATrainer(
        model=adapted.model,
        args=args,
        train_dataset=_model_columns(task_data.train, inner_model),
        eval_dataset=_model_columns(task_data.eval, inner_model) if has_eval else None,
        data_collator=getattr(task_data, "data_collator", None) or _collator(spec, tokenizer),
        processing_class=tokenizer,
        callbacks=[store_callback],
        **(trainer_metric_kwargs(task_data.problem_type, task_data.num_labels or None) if has_eval else {}),
    )
    trainer.remove_callback(PrinterCallback)  # metrics go to the store, not to the worker's stdout
    return trainer


def save_stop_checkpoint(trainer: MSPLoRATrainer, folder: Path, run_id: str) -> None:
    """Checkpoint the step a stopped run reached, unless Trainer already did (or no step ran).

    StoreCallback sets `control.should_save` at the step where it notices a stop. A stop
    noticed inside an evaluation abandons it by raising, before Trainer saves, so
    the checkpoint is written here. The worker marks the run stopped only after this returns.
    """
    step = trainer.state.global_step
    if step == 0 or (folder / f"checkpoint-{step}").is_dir():
        return
    trainer._save_checkpoint(trainer.model, trial=None)  # noqa: SLF001 - the Trainer's own checkpoint writer
    logger.info("run %s: saved checkpoint-%d at the stop", run_id, step)


def write_metrics_csv(store: RunStore, run_id: str, path: Path) -> None:
    """Write the run's metric rows as a CSV file (step, kind, name, value, time)."""
    pd.DataFrame(store.metrics(run_id), columns=["step", "kind", "name", "value", "time"]).to_csv(path, index=False)


def _inner_model(model: torch.nn.Module) -> torch.nn.Module:
    """The transformers model under a wrapper (MSPLoRAModel.base_model, or PEFT's)."""
    from peft import PeftModel

    if isinstance(model, PeftModel):
        return model.get_base_model()
    return getattr(model, "base_model", model)


def _model_columns(dataset, model: torch.nn.Module):
    """Drop dataset columns the model's forward does not take (text, ids, ...)."""
    accepted = set(inspect.signature(model.forward).parameters) | set(_LABEL_COLUMNS)
    unused = [column for column in dataset.column_names if column not in accepted]
    return dataset.remove_columns(unused) if unused else dataset


def _collator(spec: RunSpec, tokenizer):
    if spec.task == "causal-lm":
        return DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    return DataCollatorWithPadding(tokenizer)

