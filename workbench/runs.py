"""Handlers of the Runs screen: the shared run table, one run's live charts, stop/resume, downloads.

Handlers read the engine's store (SQLite and run folders), and stop and resume
only change a run's row there (resume may also start a worker process), so no
handler waits on training. Every browser session reads the same store, so all
of them show the same runs.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from msplora import plots
from msplora.engine import Engine, RunStatus

__all__ = [
    "RUN_COLUMNS", "RunView", "runs_table", "run_view", "view_signature", "stop_run", "resume_run", "artifact_files",
]

logger = logging.getLogger(__name__)

# CSI sequences (colours, cursor moves) and two-byte escapes, as ECMA-48 defines them.
_ANSI_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")

RUN_COLUMNS = ["id", "name", "method", "status", "progress", "step", "ETA", "elapsed", "device", "created"]


@dataclass
class RunView:
    """Everything the Runs screen shows for one selected run."""

    summary: str
    loss: go.Figure
    eval_metrics: go.Figure
    learning_rate: go.Figure
    budget: go.Figure
    spectra: go.Figure
    spectra_evolution: go.Figure
    redundancy: go.Figure
    log: str


def runs_table(engine: Engine) -> pd.DataFrame:
    """Return one row per run of the store, newest first, with progress and ETA."""
    rows = []
    for run in engine.runs():
        rows.append(
            {
                "id": run.id,
                "name": run.name,
                "method": run.spec.method,
                "status": run.status,
                "progress": f"{run.progress:.0%}",
                "step": f"{run.step}/{run.max_steps}" if run.max_steps else str(run.step),
                "ETA": _duration(run.eta_s) if run.status == "running" else "",
                "elapsed": _duration(run.elapsed_s),
                "device": run.device or "",
                "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.created_at)),
            }
        )
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def run_view(engine: Engine, run_id: str | None, smoothing: float = 0.0, log_y: bool = False) -> RunView:
    """Build the charts and text of one run from the store (an empty view when no run is selected)."""
    if not run_id:
        return _empty_view("Select a run in the table.")
    try:
        run = engine.status(run_id)
    except KeyError:
        return _empty_view(f"Run {run_id!r} not found in the store {engine.store_dir}.")

    metrics = engine.metrics(run_id)
    snapshots = engine.spectra(run_id)
    budget = engine.budget(run_id) or {}
    latest = snapshots[-1] if snapshots else None
    return RunView(
        summary=_summary(run, metrics),
        loss=plots.loss_figure(metrics, smoothing=smoothing, log_y=log_y),
        eval_metrics=plots.eval_metrics_figure(metrics),
        learning_rate=plots.learning_rate_figure(metrics),
        budget=plots.budget_figure(budget, lora_rank=run.spec.rank),
        spectra=plots.spectra_figure(latest),
        spectra_evolution=plots.spectra_evolution_figure(snapshots),
        redundancy=plots.redundancy_figure(snapshots),
        log=_log_tail(engine.log(run_id)),
    )


def view_signature(engine: Engine, run_id: str | None) -> str:
    """Summarize what a run view depends on (status, step, row counts), to skip redraws when nothing changed."""
    if not run_id:
        return ""
    try:
        run = engine.status(run_id)
    except KeyError:
        return f"{run_id}|missing"
    rows = len(engine.metrics(run_id, as_frame=False))
    snapshots = len(engine.spectra(run_id))
    return f"{run_id}|{run.status}|{run.step}|{rows}|{snapshots}|{run.finished_at}"


def stop_run(engine: Engine, run_id: str | None) -> str:
    """Cancel a queued run or ask a running one to stop; return a message for the user."""
    if not run_id:
        return "Select a run first."
    try:
        engine.cancel(run_id)
    except (KeyError, ValueError) as error:
        logger.info("Could not stop run %s: %s", run_id, error)
        return f"Could not stop run {run_id}: {error}"
    return f"Asked run {run_id} to stop; it saves a checkpoint and its adapter and shows as cancelled within seconds."


def resume_run(engine: Engine, run_id: str | None) -> str:
    """Queue an interrupted, cancelled or failed run again from its last checkpoint."""
    if not run_id:
        return "Select a run first."
    try:
        engine.resume(run_id)
    except (KeyError, ValueError) as error:
        logger.info("Could not resume run %s: %s", run_id, error)
        return f"Could not resume run {run_id}: {error}"
    step = engine.checkpoint_step(run_id)
    if step is None:
        return f"Queued run {run_id} again; it has no checkpoint, so it restarts from step 0."
    return f"Queued run {run_id} again; it continues from its checkpoint at step {step}."


def artifact_files(engine: Engine, run_id: str | None, downloads_dir: Path) -> list[str]:
    """Return files to download for a run: folders (adapter, PEFT export, merged model) zipped.

    Zips go to `downloads_dir/<run_id>/` and are rebuilt on every call, so they
    match the run folder at the time of the click.
    """
    if not run_id:
        return []
    try:
        artifacts = engine.artifacts(run_id)
    except KeyError:
        return []

    target = downloads_dir / run_id
    target.mkdir(parents=True, exist_ok=True)
    files = []
    for name, path in artifacts.items():
        if path.is_dir():
            archive = shutil.make_archive(str(target / f"{run_id}-{name}"), "zip", root_dir=path)
            files.append(archive)
        else:
            copy = target / f"{run_id}-{path.name}"
            shutil.copyfile(path, copy)
            files.append(str(copy))
    return files


def _summary(run: RunStatus, metrics: pd.DataFrame) -> str:
    lines = [f"### {run.name} `{run.id}`", f"**Status:** {run.status} · step {run.step}/{run.max_steps or '?'}"
             f" · {run.progress:.0%}"]
    if run.status == "running" and run.eta_s is not None:
        lines.append(f"**ETA:** {_duration(run.eta_s)} · elapsed {_duration(run.elapsed_s)}")
    elif run.elapsed_s is not None:
        lines.append(f"**Elapsed:** {_duration(run.elapsed_s)}")
    spec = run.spec
    method = f"{spec.method} rank {spec.rank}"
    if spec.method == "msplora":
        method += f", decay {spec.rank_decay:g}, {spec.mid_groups} mid groups"
    lines.append(f"**Model:** {spec.model} · **data:** {spec.dataset} ({spec.task}) · **method:** {method}")
    final = _final_eval(metrics)
    if final:
        lines.append("**Last evaluation:** " + ", ".join(f"{name} {value:.4g}" for name, value in final.items()))
    if run.device:
        lines.append(f"**Device:** {run.device}")
    if run.status == "failed" and run.error:
        lines.append(f"**Error:**\n```\n{run.error}\n```")
    return "\n\n".join(lines)


def _final_eval(metrics: pd.DataFrame) -> dict[str, float]:
    evaluation = metrics[metrics["kind"] == "eval"] if not metrics.empty else metrics
    if evaluation.empty:
        return {}
    last = evaluation[evaluation["step"] == evaluation["step"].max()]
    return {row.name.removeprefix("eval_"): float(row.value) for row in last.itertuples()
            if not row.name.endswith(("runtime", "per_second"))}


def _empty_view(message: str) -> RunView:
    empty = plots.empty_figure(message)
    return RunView(summary=message, loss=empty, eval_metrics=empty, learning_rate=empty, budget=empty,
                   spectra=empty, spectra_evolution=empty, redundancy=empty, log="")


def _log_tail(text: str, lines: int = 200) -> str:
    # Libraries such as transformers colour their reports with ANSI escape codes, which a textbox shows raw.
    return "\n".join(_ANSI_ESCAPE.sub("", text).splitlines()[-lines:])


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
