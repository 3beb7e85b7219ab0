"""The `msplora` command line: queue and inspect runs, size budgets, fetch assets.

    msplora train SPEC.yaml [--wait]     queue a run (and follow it with a progress bar)
    msplora runs                         list runs, newest first
    msplora show RUN                     one run: status, budget, last metrics, files
    msplora cancel RUN | resume RUN
    msplora budget --model minilm-l6 --targets query value --rank 8 --decay 2 --groups 3
    msplora assets [--fetch NAME ...]
    msplora worker                       serve the store in the foreground

Every run command takes `--store DIR` (default: $MSPLORA_RUNS_DIR, else ./runs).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

__all__ = ["main", "build_parser"]


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (0 on success)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.handler(args) or 0
    except (ValueError, KeyError, FileNotFoundError, TimeoutError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"error: {message}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    """Build the argparse parser with one subcommand per action."""
    parser = argparse.ArgumentParser(prog="msplora", description="MSPLoRA Workbench command line")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument(
        "--store",
        default=None,
        help="run store folder (default: $MSPLORA_RUNS_DIR, else ./runs)",
    )

    train = commands.add_parser("train", parents=[store], help="queue a run from a RunSpec YAML file")
    train.add_argument("spec", type=Path, help="RunSpec YAML file")
    train.add_argument("--wait", action="store_true", help="follow the run with a progress bar until it ends")
    train.add_argument("--timeout", type=float, default=None, help="with --wait: give up after this many seconds")
    train.set_defaults(handler=_train)

    runs = commands.add_parser("runs", parents=[store], help="list runs, newest first")
    runs.set_defaults(handler=_runs)

    for name, handler, text in (
        ("show", _show, "show one run: status, budget, last metrics, files"),
        ("cancel", _cancel, "cancel a queued or running run"),
        ("resume", _resume, "queue an interrupted, cancelled or failed run again from its last checkpoint"),
    ):
        command = commands.add_parser(name, parents=[store], help=text)
        command.add_argument("run", help="run id")
        command.set_defaults(handler=handler)

    budget = commands.add_parser("budget", help="per-level parameter budget of MSPLoRA next to LoRA")
    source = budget.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="architecture preset name (see --list-models) or a local model folder")
    source.add_argument("--config-json", type=Path, help="a transformers config.json file")
    source.add_argument("--list-models", action="store_true", help="list the architecture presets")
    budget.add_argument("--targets", nargs="+", default=["query", "value"], help="target module names")
    budget.add_argument("--rank", type=int, default=8, help="global-level rank (also the LoRA rank compared)")
    budget.add_argument("--decay", type=float, default=2.0, help="rank decay from level to level")
    budget.add_argument("--groups", type=int, default=3, help="number of mid-level groups")
    budget.set_defaults(handler=_budget)

    assets = commands.add_parser("assets", help="list the offline assets, or fetch some")
    assets.add_argument("--fetch", nargs="+", metavar="NAME", help="fetch these assets into the cache")
    assets.set_defaults(handler=_assets)

    worker = commands.add_parser("worker", parents=[store], help="serve the store in the foreground")
    worker.add_argument("--device", choices=("cpu", "cuda", "mps"), default=None, help="device for every run")
    worker.add_argument("--idle-exit", type=float, default=None, help="exit after this many seconds with an empty queue")
    worker.set_defaults(handler=_worker)
    return parser


# ---- run commands ----


def _train(args) -> int:
    from msplora.engine import RunSpec

    engine = _engine(args)
    if not args.spec.is_file():
        raise FileNotFoundError(f"spec file {args.spec} not found; write a RunSpec YAML file first")
    run_id = engine.submit(RunSpec.from_yaml(args.spec))
    print(run_id)
    if not args.wait:
        return 0
    status = _follow(engine, run_id, args.timeout)
    print(f"{run_id} {status.status}" + (f": {status.error}" if status.error else ""))
    return 0 if status.status == "completed" else 1


def _runs(args) -> int:
    rows = [
        [
            run.id,
            run.name,
            run.status,
            f"{run.step}/{run.max_steps or '?'}",
            run.device or "",
            time.strftime("%Y-%m-%d %H:%M", time.localtime(run.created_at)),
        ]
        for run in _engine(args).runs()
    ]
    print(_table(["id", "name", "status", "step", "device", "created"], rows))
    return 0


def _show(args) -> int:
    engine = _engine(args)
    run = engine.status(args.run)
    print(f"id:       {run.id}")
    print(f"name:     {run.name}")
    print(f"status:   {run.status}")
    print(f"step:     {run.step}/{run.max_steps or '?'} ({run.progress:.0%})")
    print(f"device:   {run.device or '-'}")
    if run.elapsed_s is not None:
        print(f"elapsed:  {run.elapsed_s:.1f} s" + (f", ETA {run.eta_s:.0f} s" if run.eta_s else ""))
    if run.error:
        print(f"error:    {run.error}")

    budget = engine.budget(run.id)
    if budget:
        levels = ", ".join(f"{level} {count:,}" for level, count in budget["by_level"].items())
        print(f"budget:   {budget['total']:,} adapter parameters ({levels}); head {budget['head']:,}")

    metrics = engine.metrics(run.id)
    if not metrics.empty:
        latest = metrics.sort_values("step").groupby(["kind", "name"]).tail(1)
        quality = latest[latest["kind"].isin(["train", "eval"])]
        rows = [[r.kind, r.name, r.step, f"{r.value:.4g}"] for r in quality.itertuples()]
        print(_table(["kind", "metric", "step", "value"], rows))
    for name, path in engine.artifacts(run.id).items():
        print(f"{name + ':':<10}{path}")
    return 0


def _cancel(args) -> int:
    engine = _engine(args)
    engine.cancel(args.run)
    print(f"{args.run} {engine.status(args.run).status} (cancel requested)")
    return 0


def _resume(args) -> int:
    print(_engine(args).resume(args.run))
    return 0


def _worker(args) -> int:
    from msplora.engine.worker import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    run_worker(_store_dir(args), device=args.device, idle_exit_s=args.idle_exit)
    return 0


# ---- budget and assets ----


def _budget(args) -> int:
    from msplora.budget import budget_from_config
    from msplora.config import MSPLoRAConfig

    if args.list_models:
        from msplora.presets import list_presets

        rows = [[p["name"], p["model_type"], p["layers"], p["hidden_size"]] for p in list_presets()]
        print(_table(["preset", "model_type", "blocks", "hidden"], rows))
        return 0
    hf_config = _hf_config(args)
    config = MSPLoRAConfig(
        target_modules=args.targets, rank=args.rank, rank_decay=args.decay, mid_groups=args.groups
    )
    budget = budget_from_config(hf_config, config)
    rows = [
        [level, rank, f"{budget.by_level[level]:,}"]
        for level, rank in zip(config.level_names, config.level_ranks)
    ]
    rows.append(["MSPLoRA total", "", f"{budget.total:,}"])
    rows.append([f"LoRA (r={budget.lora_rank})", budget.lora_rank, f"{budget.lora_equivalent:,}"])
    rows.append(["MSPLoRA / LoRA", "", f"{budget.ratio_to_lora:.3f}"])
    print(_table(["level", "rank", "parameters"], rows))
    return 0


def _hf_config(args):
    if args.config_json is not None:
        from msplora.presets import config_from_json

        if not args.config_json.is_file():
            raise FileNotFoundError(f"config file {args.config_json} not found")
        return config_from_json(args.config_json.read_text(encoding="utf-8"))
    if Path(args.model).is_dir():
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(args.model)
    from msplora.presets import preset_config

    return preset_config(args.model)


def _assets(args) -> int:
    from msplora import assets

    if args.fetch:
        for name in args.fetch:
            path = assets.fetch(name, progress=True)
            print(f"{name}: {path}")
        return 0
    rows = [
        [a["name"], a["kind"], "yes" if a["cached"] else "no", a["license"], a["description"]]
        for a in assets.list_assets()
    ]
    print(_table(["name", "kind", "cached", "license", "description"], rows))
    return 0


# ---- helpers ----


def _store_dir(args) -> Path:
    return Path(args.store or os.environ.get("MSPLORA_RUNS_DIR") or "runs")


def _engine(args):
    from msplora.engine import Engine

    return Engine(_store_dir(args))


def _follow(engine, run_id: str, timeout: float | None):
    """Show a tqdm progress bar over the run's steps until it finishes; return its status."""
    from tqdm import tqdm

    deadline = None if timeout is None else time.monotonic() + timeout
    status = engine.status(run_id)
    with tqdm(total=status.max_steps, desc=run_id, unit="step") as bar:
        while not status.finished:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} still {status.status} after {timeout} s; it keeps running")
            time.sleep(0.5)
            status = engine.status(run_id)
            if status.max_steps and bar.total != status.max_steps:
                bar.total = status.max_steps
            bar.set_postfix_str(status.status)
            bar.update(status.step - bar.n)
    return status


def _table(header: list[str], rows: list[list]) -> str:
    """Format rows as a plain left-aligned text table."""
    cells = [header] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
