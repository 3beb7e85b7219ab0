"""Time a run through the engine against the same Trainer run without the engine.

Engine: `msplora.engine.training.execute_run` on a run queued in a fresh `RunStore`,
which is what a worker process calls for each run: it streams metrics, progress and
spectra into SQLite through `StoreCallback`, writes spec.yaml, the adapter, the PEFT
export and metrics.csv.

Bare: the same model, data and Trainer built by the engine's own `build_trainer`,
with a no-op callback in place of `StoreCallback`. It trains, runs the same final
evaluation and saves the adapter. Both load the model and data from the local cache.

The two run in alternation after one warm-up pair; the ratio is the median of the
per-pair ratios of wall-clock time.

    python bench/engine_overhead.py             # MiniLM-L6 on movie-sentences, 50 steps
    python bench/engine_overhead.py --quick     # a tiny BERT saved to a temporary folder
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any

from transformers import BertConfig, BertForSequenceClassification, TrainerCallback, set_seed

import common
from msplora.engine import RunSpec, RunStore
from msplora.engine.adapters import adapt_model
from msplora.engine.training import build_trainer, execute_run, load_model_and_data
from msplora.models import load_tokenizer

TARGET = 1.03


def main() -> None:
    parser = common.base_parser(__doc__.splitlines()[0], "engine_overhead.json")
    parser.add_argument("--repeats", type=int, default=2, help="timed pairs of runs")
    parser.add_argument("--max-steps", type=int, default=50, help="training steps per run")
    args = parser.parse_args()
    common.setup(args)

    with tempfile.TemporaryDirectory(prefix="msplora-bench-") as scratch:
        scratch_dir = Path(scratch)
        if args.quick:
            spec = RunSpec(model=str(save_tiny_model(scratch_dir / "tiny-bert")), max_steps=4, batch_size=8,
                           logging_steps=2, eval_steps=2, spectra_steps=2, max_length=32,
                           max_train_samples=64, max_eval_samples=16, device=args.device)
            repeats = 1
        else:
            spec = RunSpec(model="minilm-l6", dataset="movie-sentences", max_steps=args.max_steps, max_length=64,
                           max_eval_samples=256, device=args.device)
            repeats = args.repeats

        store = RunStore(scratch_dir / "store")
        counter = iter(range(10_000))
        contenders = {
            "engine": lambda: run_through_engine(store, spec, args.device),
            "bare": lambda: run_bare(spec, scratch_dir / f"bare-{next(counter)}", args.device),
        }
        timings = common.time_alternating(contenders, device=args.device, repeats=repeats, warmup=1)
        metric_rows = len(store.metrics(store.list_runs()[0]["id"]))
        spectra_rows = len(store.spectra(store.list_runs()[0]["id"]))

    ratio = common.paired_ratio(timings.primary, "engine", "bare")
    results: dict[str, Any] = common.new_record(
        "engine_overhead",
        args.device,
        spec={key: spec.to_dict()[key] for key in ("model", "dataset", "method", "max_steps", "batch_size",
                                                       "max_length", "logging_steps", "eval_steps",
                                                       "spectra_steps", "save_steps", "max_eval_samples")},
        repeats=repeats,
        store_rows_per_engine_run={"metrics": metric_rows, "spectra": spectra_rows},
        times=timings.summary(),
        engine_over_bare=ratio,
        engine_over_bare_wall=common.paired_ratio(timings.wall, "engine", "bare"),
        target=f"engine / bare <= {TARGET}",
        meets_target=ratio["median"] <= TARGET,
    )
    print(f"engine/bare {ratio['median']:.3f} (range {ratio['min']:.3f}-{ratio['max']:.3f})", flush=True)
    common.write_results(args.out, results)


def run_through_engine(store: RunStore, spec: RunSpec, device: str) -> None:
    """Queue `spec` in `store` and execute it as a worker does, in this process."""
    run_id = store.add_run(spec.to_dict(), spec.name or "bench", spec.max_steps)
    status, error = execute_run(store, store.get_run(run_id), device=device, stop_event=threading.Event())
    if status != "completed":
        raise RuntimeError(f"engine run {run_id} ended {status}: {error}")


def run_bare(spec: RunSpec, folder: Path, device: str) -> None:
    """Train `spec` with the engine's Trainer setup but no store: no metrics, spectra or progress writes."""
    set_seed(spec.seed)
    task_data, base_model, tokenizer = load_model_and_data(spec)
    adapted = adapt_model(spec, base_model)
    trainer = build_trainer(spec, adapted, task_data, tokenizer, folder, device, TrainerCallback())
    trainer.train()
    if trainer.state.global_step % spec.eval_steps != 0:
        trainer.evaluate()  # the engine evaluates once more when the last step was not an evaluation step
    adapted.model.save_pretrained(folder / "adapter")


def save_tiny_model(folder: Path) -> Path:
    """Save a 3-block BERT (hidden 32) with MiniLM-L6's tokenizer, so runs load it like any model folder."""
    tokenizer = load_tokenizer("minilm-l6")
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=2)
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


if __name__ == "__main__":
    main()
