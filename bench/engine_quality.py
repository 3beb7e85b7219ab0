"""MSPLoRA against PEFT LoRA through the engine: accuracy, trainable parameters, time per step.

Submits two runs that differ only in the adapter method (MSPLoRA 8/4/2 with 3 mid
groups, and PEFT LoRA r=8, both on query and value), waits for both, and prints
and writes a JSON record with each run's final eval accuracy, the majority-class
baseline, trainable parameters (adapters + classification head) and seconds per
training step, plus the MSPLoRA / LoRA ratios.

    .venv/bin/python bench/engine_quality.py --steps 150 --out bench/results/engine_quality.json

Times are wall-clock seconds of runs that follow each other in one worker, so on a
shared machine the time ratio moves with the load (recorded in the JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from msplora.engine import Engine, RunSpec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="minilm-l6", help="model asset name or folder")
    parser.add_argument("--dataset", default="movie-sentences", help="dataset asset name or file")
    parser.add_argument("--steps", type=int, default=150, help="training steps of each run")
    parser.add_argument("--batch-size", type=int, default=16, help="training batch size")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="peak learning rate of both runs")
    parser.add_argument("--max-length", type=int, default=64, help="max tokens per sentence")
    parser.add_argument("--seed", type=int, default=0, help="seed of both runs (data split, init, order)")
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: best available)")
    parser.add_argument("--store", type=Path, default=None, help="run store folder (default: a temp folder)")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON record here")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for both runs")
    args = parser.parse_args()

    store = args.store or Path(tempfile.mkdtemp(prefix="msplora-bench-"))
    engine = Engine(store)
    common = dict(
        model=args.model,
        dataset=args.dataset,
        task="classification",
        target_modules=["query", "value"],
        rank=8,
        alpha=16.0,
        max_steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        logging_steps=max(args.steps // 30, 1),
        eval_steps=args.steps * 10,  # Trainer evaluates once, after the last step
        save_steps=args.steps * 10,  # no checkpoints inside the timed loop
        spectra_steps=max(args.steps // 4, 1),
        max_length=args.max_length,
        seed=args.seed,
        device=args.device,
    )
    specs = {
        "msplora": RunSpec(method="msplora", rank_decay=2.0, mid_groups=3, name="bench-msplora", **common),
        "lora": RunSpec(method="lora", name="bench-lora", **common),
    }
    load_at_start = os.getloadavg()[0]
    run_ids = {method: engine.submit(spec) for method, spec in specs.items()}
    started = time.monotonic()
    results = {}
    try:
        for method, run_id in run_ids.items():
            remaining = args.timeout - (time.monotonic() - started)
            status = engine.wait(run_id, timeout=max(remaining, 1.0))
            if status.status != "completed":
                raise SystemExit(f"{method} run {run_id} ended {status.status}: {status.error}")
            results[method] = summarize(engine, run_id)
    finally:
        engine.stop_workers(timeout=30)

    record = {
        "command": "bench/engine_quality.py " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in _command_args(args)),
        "machine": platform.platform(),
        "date": time.strftime("%Y-%m-%d"),
        "load_average": {"start": load_at_start, "end": os.getloadavg()[0]},
        "settings": common,
        "runs": results,
        "ratios_msplora_to_lora": {
            key: results["msplora"][key] / results["lora"][key]
            for key in ("accuracy", "trainable_params", "adapter_params", "seconds_per_step")
        },
    }
    print(json.dumps(record, indent=2))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def summarize(engine: Engine, run_id: str) -> dict:
    """Final eval accuracy, majority baseline, trainable parameters and seconds per step of a run."""
    metrics = engine.metrics(run_id)
    status = engine.status(run_id)
    budget = engine.budget(run_id)

    def last(kind: str, name: str) -> float:
        rows = metrics[(metrics.kind == kind) & (metrics.name == name)].sort_values("step")
        return float(rows.value.iloc[-1])

    return {
        "run_id": run_id,
        "steps": status.step,
        "accuracy": last("eval", "accuracy"),
        "majority_baseline": last("system", "majority_baseline"),
        "adapter_params": budget["total"],
        "trainable_params": budget["total"] + budget["head"],
        # elapsed_s of the last training log: the final evaluation comes after it
        "seconds_per_step": last("system", "elapsed_s") / status.step,
    }


def _command_args(args) -> list[tuple[str, object]]:
    return [(key, value) for key, value in vars(args).items() if value is not None and key not in ("store", "timeout")]


if __name__ == "__main__":
    main()
