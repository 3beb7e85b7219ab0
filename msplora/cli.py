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
import io
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
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, KeyError, FileNotFoundError, TimeoutError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"error: {message}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader of stdout (`msplora runs | head`) closed the pipe: stop quietly,
        # and point stdout at /dev/null so the flush at interpreter exit cannot fail again.
        _silence_stdout()
        return 141  # 128 + SIGPIPE, as a shell reports a command killed by SIGPIPE


class SpecError(ValueError):
    """A RunSpec file that cannot be read or is invalid; `msplora train` exits with status 2."""


def build_parser() -> argparse.ArgumentParser:
    """Build the argparse parser with one subcommand per action."""
    parser = argparse.ArgumentParser(prog="msplora", description="MSPLoRA Workbench command line")
    # Handlers import torch, transformers and the engine themselves, so parsing needs none of them.
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
        ("resume", _resume, "queue an interrupted, cancelled or failed run again (from its last checkpoint, if any)"),
    ):
        command = commands.add_parser(name, parents=[store], help=text)
        command.add_argument("run", help="run id")
        command.set_defaults(handler=handler)

    budget = commands.add_parser("budget", help="per-level parameter budget of MSPLoRA next to LoRA")
    source = budget.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="architecture preset name (see --list-models) or a local model folder")
    source.add_argument("--config-json", type=Path, help="a transformers config.json file")
    source.add_argument("--list-models", action="store_true", help="list the architecture presets")
    budget.add_argument(
        "--targets",
        nargs="+",
        default=None,
        help="target module names (default: the model's query and value projections, e.g. query value "
        "for BERT, q_proj v_proj for Llama)",
    )
    budget.add_argument(
        "--rank", type=int, default=8, help="global-level rank, also the LoRA rank compared (default: %(default)s)"
    )
    budget.add_argument("--decay", type=float, default=2.0, help="rank decay from level to level (default: %(default)s)")
    budget.add_argument("--groups", type=int, default=3, help="number of mid-level groups (default: %(default)s)")
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
    import yaml

    from msplora.engine import RunSpec

    if not args.spec.is_file():
        raise FileNotFoundError(f"spec file {args.spec} not found; write a RunSpec YAML file first")
    try:
        spec = RunSpec.from_yaml(args.spec)
    except yaml.YAMLError as exc:
        raise SpecError(_yaml_error_text(args.spec, exc)) from exc
    except ValueError as exc:
        raise SpecError(f"invalid spec in {args.spec}: {exc}") from exc
    engine = _engine(args)
    try:
        run_id = engine.submit(spec)
    except ValueError as exc:  # the model or dataset cannot be used (checked before queueing)
        raise SpecError(f"invalid spec in {args.spec}: {exc}") from exc
    print(run_id)
    if not args.wait:
        print(f"queued; follow it with `msplora show {run_id}` or in the app's Runs tab", file=sys.stderr)
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
        print(f"{name + ':':<9} {path}")
    return 0


def _cancel(args) -> int:
    engine = _engine(args)
    engine.cancel(args.run)
    print(f"{args.run} {engine.status(args.run).status} (cancel requested)")
    return 0


def _resume(args) -> int:
    engine = _engine(args)
    step = engine.checkpoint_step(args.run)
    engine.resume(args.run)
    if step is None:
        print(f"{args.run} queued again; it has no checkpoint, so it restarts from step 0")
    else:
        print(f"{args.run} queued again; it continues from its checkpoint at step {step}")
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
    targets = args.targets or _default_targets(hf_config)
    config = MSPLoRAConfig(target_modules=targets, rank=args.rank, rank_decay=args.decay, mid_groups=args.groups)
    budget = budget_from_config(hf_config, config)
    rows = [
        [level, rank, f"{budget.by_level[level]:,}"]
        for level, rank in zip(config.level_names, config.level_ranks)
    ]
    rows.append(["MSPLoRA total", "", f"{budget.total:,}"])
    rows.append([f"LoRA (r={budget.lora_rank})", budget.lora_rank, f"{budget.lora_equivalent:,}"])
    rows.append(["MSPLoRA / LoRA", "", f"{budget.ratio_to_lora:.3f}"])
    print(f"targets: {' '.join(targets)}")
    print(_table(["level", "rank", "parameters"], rows))
    return 0


def _default_targets(hf_config) -> list[str]:
    """Find the architecture's query and value projections on a model built on the meta device."""
    import torch
    from transformers import AutoModel

    from msplora.models import default_target_modules

    with torch.device("meta"):
        model = AutoModel.from_config(hf_config)
    return default_target_modules(model)


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


def _yaml_error_text(path: Path, exc) -> str:
    """Return "invalid YAML in FILE, line N: problem" from a PyYAML error (its marks count lines from 0)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return f"invalid YAML in {path}: {problem}"
    return f"invalid YAML in {path}, line {mark.line + 1}: {problem}"


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass  # stdout is not a real file (tests capture it); nothing will flush to the closed pipe


def _table(header: list[str], rows: list[list]) -> str:
    """Format rows as a plain left-aligned text table."""
    cells = [header] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
