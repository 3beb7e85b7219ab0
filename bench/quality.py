"""Accuracy of MSPLoRA 8/4/2 against PEFT LoRA at r = 8, 4 and 2, with a learning-rate search per method.

For each setting (model, dataset, steps), every method first trains once per learning
rate of one shared grid with seed 0; the rate with the best accuracy on a dev split
(held out from the training rows, never the eval split) is kept, and the method then
trains with seeds 1 and 2 at that rate. The table reports the eval-split accuracy over
the three seeds (mean, standard deviation) and the trainable parameters.

Training is transformers' Trainer (through `msplora.MSPLoRATrainer`) on the adapters
that the engine attaches (`msplora.engine.adapters.adapt_model`: the task head trains
in full for both methods). Results are rewritten after every run, so a stopped sweep
keeps what finished.

    python bench/quality.py                 # the full sweep (hours on two CPU cores)
    python bench/quality.py --quick         # smoke version: two tiny runs
    python bench/quality.py --models mpnet-base --methods msplora:8 lora:8 lora:4
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
from transformers import TrainingArguments, set_seed

import common
from msplora.data import load_task_data
from msplora.engine import RunSpec
from msplora.engine.adapters import adapt_model
from msplora.metrics import build_compute_metrics
from msplora.models import default_target_modules, load_model, load_tokenizer
from msplora.trainer import MSPLoRATrainer


@dataclass(frozen=True)
class Setting:
    """One model on one dataset, trained for `max_steps` steps per run."""

    model: str
    dataset: str
    max_steps: int
    max_train_samples: int | None = None
    max_eval_samples: int | None = None


@dataclass(frozen=True)
class Method:
    """An adapter method at one rank: "msplora" (rank = the global level's) or "lora"."""

    method: str
    rank: int

    @property
    def label(self) -> str:
        return "MSPLoRA 8/4/2" if self.method == "msplora" else f"LoRA r={self.rank}"


FULL_SETTINGS = [
    Setting("minilm-l6", "movie-sentences", max_steps=120),
    Setting("minilm-l6", "bbc-news", max_steps=80),
    Setting("mpnet-base", "movie-sentences", max_steps=60),
]
QUICK_SETTINGS = [Setting("minilm-l6", "movie-sentences", max_steps=3, max_train_samples=64, max_eval_samples=32)]
METHODS = [Method("msplora", 8), Method("lora", 8), Method("lora", 4), Method("lora", 2)]
QUICK_METHODS = [Method("msplora", 8), Method("lora", 8)]
LEARNING_RATES = [1e-3, 3e-3]
SEEDS = [0, 1, 2]
MODELS_IN_SETTINGS = sorted({setting.model for setting in FULL_SETTINGS})

BATCH_SIZE = 16
MAX_LENGTH = 64
ALPHA = 16.0  # the engine's default; scaling alpha / rank per adapter, as in PEFT
DEV_FRACTION = 0.05  # share of the training rows held out to choose the learning rate


def main() -> None:
    parser = common.base_parser(__doc__.splitlines()[0], "quality.json")
    parser.add_argument(
        "--models",
        nargs="+",
        help="run only the settings of these registry models (default: every setting)",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        type=parse_method,
        help="methods as METHOD:RANK, e.g. msplora:8 lora:8 (default: MSPLoRA 8/4/2 and LoRA r=8, 4, 2)",
    )
    parser.add_argument(
        "--datasets",
        nargs="+",
        help="run only the settings on these datasets (default: every setting)",
    )
    parser.add_argument(
        "--learning-rates",
        nargs="+",
        type=float,
        help=f"the learning-rate grid searched with the first seed (default: {LEARNING_RATES})",
    )
    args = parser.parse_args()
    common.setup(args)

    settings = QUICK_SETTINGS if args.quick else FULL_SETTINGS
    if args.models:
        settings = [setting for setting in settings if setting.model in args.models]
        if not settings:
            parser.error(f"--models {' '.join(args.models)} matches no setting; the settings use {MODELS_IN_SETTINGS}.")
    if args.datasets:
        settings = [setting for setting in settings if setting.dataset in args.datasets]
        if not settings:
            parser.error(f"--datasets {' '.join(args.datasets)} matches no setting of the chosen models.")
    methods = args.methods or (QUICK_METHODS if args.quick else METHODS)
    learning_rates = args.learning_rates or (LEARNING_RATES[:1] if args.quick else LEARNING_RATES)
    seeds = SEEDS[:1] if args.quick else SEEDS

    results: dict[str, Any] = common.new_record(
        "quality",
        args.device,
        protocol={
            "batch_size": BATCH_SIZE,
            "max_length": MAX_LENGTH,
            "alpha": ALPHA,
            "learning_rates": learning_rates,
            "seeds": seeds,
            "dev_fraction": DEV_FRACTION,
            "lr_scheduler": "linear",
            "warmup_ratio": 0.06,
        },
        settings=[],
    )
    for setting in settings:
        entry: dict[str, Any] = {**asdict(setting), "runs": [], "summary": {}}
        results["settings"].append(entry)
        run_setting(setting, methods, learning_rates, seeds, args, entry, results)
    results["finished"] = True
    common.write_results(args.out, results)


def parse_method(text: str) -> Method:
    """Parse METHOD:RANK (e.g. "lora:4") into a Method."""
    name, _, rank = text.partition(":")
    if name not in ("msplora", "lora") or not rank.isdigit() or int(rank) < 1:
        raise argparse.ArgumentTypeError(f"invalid method {text!r}: use msplora:RANK or lora:RANK, e.g. lora:8.")
    return Method(name, int(rank))


def run_setting(
    setting: Setting,
    methods: list[Method],
    learning_rates: list[float],
    seeds: list[int],
    args: Any,
    entry: dict[str, Any],
    results: dict[str, Any],
) -> None:
    """Search the learning rate of each method with the first seed, then train the other seeds."""
    tokenizer = load_tokenizer(setting.model)
    data = load_task_data(
        setting.dataset,
        "classification",
        tokenizer,
        max_length=MAX_LENGTH,
        seed=0,
        max_train_samples=setting.max_train_samples,
        max_eval_samples=setting.max_eval_samples,
    )
    parts = data.train.train_test_split(test_size=DEV_FRACTION, seed=0, keep_in_memory=True)
    splits = {"train": parts["train"], "dev": parts["test"], "eval": data.eval}
    entry["rows"] = {name: len(split) for name, split in splits.items()}
    entry["majority_baseline"] = data.majority_baseline

    for method in methods:
        search = []
        for learning_rate in learning_rates:
            run = train_once(setting, method, learning_rate, seeds[0], splits, data, args.device)
            entry["runs"].append(run)
            search.append(run)
            common.write_results(args.out, results)
        best = max(search, key=lambda run: run["dev_accuracy"])
        for seed in seeds[1:]:
            run = train_once(setting, method, best["learning_rate"], seed, splits, data, args.device)
            entry["runs"].append(run)
            common.write_results(args.out, results)
        entry["summary"][method.label] = summarise(entry["runs"], method, best["learning_rate"])
        common.write_results(args.out, results)


def train_once(
    setting: Setting, method: Method, learning_rate: float, seed: int, splits: dict, data: Any, device: str
) -> dict[str, Any]:
    """Train one adapter from a fresh base model; return its dev and eval accuracy and its size."""
    set_seed(seed)
    base_model, _ = load_model(setting.model, "classification", num_labels=data.num_labels)
    spec = RunSpec(
        model=setting.model,
        dataset=setting.dataset,
        method=method.method,
        target_modules=default_target_modules(base_model),
        rank=method.rank,
        alpha=ALPHA,
        max_steps=setting.max_steps,
        batch_size=BATCH_SIZE,
        learning_rate=learning_rate,
        seed=seed,
        max_length=MAX_LENGTH,
    )
    adapted = adapt_model(spec, base_model)
    trainable = sum(p.numel() for p in adapted.model.parameters() if p.requires_grad)

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="msplora-bench-") as output_dir:
        trainer = MSPLoRATrainer(
            model=adapted.model,
            args=_training_arguments(spec, output_dir, device),
            train_dataset=splits["train"],
            data_collator=data.data_collator,
            compute_metrics=build_compute_metrics(data.problem_type, data.num_labels),
        )
        trainer.train()
        train_s = time.perf_counter() - started
        dev = trainer.evaluate(splits["dev"], metric_key_prefix="dev")
        evaluation = trainer.evaluate(splits["eval"], metric_key_prefix="eval")

    run = {
        "method": method.label,
        "learning_rate": learning_rate,
        "seed": seed,
        "dev_accuracy": dev["dev_accuracy"],
        "eval_accuracy": evaluation["eval_accuracy"],
        "eval_f1_macro": evaluation["eval_f1_macro"],
        "adapter_params": adapted.budget["total"],
        "head_params": adapted.budget["head"],
        "trainable_params": trainable,
        "train_s": round(train_s, 1),
    }
    print(
        f"{setting.model} {setting.dataset} {method.label} lr={learning_rate:g} seed={seed}: "
        f"dev {run['dev_accuracy']:.4f}, eval {run['eval_accuracy']:.4f} ({train_s:.0f} s)",
        flush=True,
    )
    return run


def summarise(runs: list[dict[str, Any]], method: Method, learning_rate: float) -> dict[str, Any]:
    """Mean and spread of eval accuracy over the seeds trained at the chosen learning rate."""
    chosen = [r for r in runs if r["method"] == method.label and r["learning_rate"] == learning_rate]
    accuracies = [r["eval_accuracy"] for r in chosen]
    return {
        "learning_rate": learning_rate,
        "seeds": [r["seed"] for r in chosen],
        "eval_accuracy_mean": statistics.mean(accuracies),
        "eval_accuracy_std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
        "eval_accuracy_min": min(accuracies),
        "eval_accuracy_max": max(accuracies),
        "adapter_params": chosen[0]["adapter_params"],
        "trainable_params": chosen[0]["trainable_params"],
    }


def _training_arguments(spec: RunSpec, output_dir: str, device: str) -> TrainingArguments:
    use_bf16 = device.startswith("cuda") and torch.cuda.is_bf16_supported()
    return TrainingArguments(
        output_dir=output_dir,
        max_steps=spec.max_steps,
        per_device_train_batch_size=spec.batch_size,
        per_device_eval_batch_size=64,
        learning_rate=spec.learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=spec.warmup_ratio,  # a float below 1 is a share of the total steps
        weight_decay=0.0,
        save_strategy="no",
        eval_strategy="no",
        logging_strategy="no",
        seed=spec.seed,
        data_seed=spec.seed,
        use_cpu=device == "cpu",
        bf16=use_bf16,
        label_names=["labels"],
        remove_unused_columns=False,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )


if __name__ == "__main__":
    main()
