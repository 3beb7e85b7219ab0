"""Handlers of the Compare screen: overlaid curves, configs side by side, parameters against metric."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go
from pandas.io.formats.style import Styler

from msplora import plots
from msplora.engine import Engine

from .launch import MSPLORA_ONLY_FIELDS

__all__ = ["Comparison", "run_choices", "metric_choices", "compare_runs", "config_table", "final_points"]

DIFFERENCE_STYLE = "background-color: #fff3b0; font-weight: bold"
NOTHING_SELECTED = "Select runs to compare."
NOT_APPLICABLE = "n/a"


@dataclass
class Comparison:
    """The Compare screen's content for a set of runs."""

    curves: go.Figure
    configs: Styler
    differing: list[str]
    pareto: go.Figure


def run_choices(engine: Engine) -> list[tuple[str, str]]:
    """Return (label, run id) pairs for the run picker, newest first."""
    return [(f"{run.name} [{run.id}] {run.status}", run.id) for run in engine.runs()]


def metric_choices(engine: Engine, run_ids: list[str] | None) -> list[str]:
    """Return the metrics the selected runs logged, as "train loss", "eval accuracy", ..."""
    found: list[str] = []
    for run_id in run_ids or []:
        metrics = engine.metrics(run_id)
        for kind, name in metrics[["kind", "name"]].drop_duplicates().itertuples(index=False):
            if kind not in ("train", "eval") or name.endswith(("runtime", "per_second")) or name == "epoch":
                continue
            choice = f"{kind} {name.removeprefix('eval_')}"
            if choice not in found:
                found.append(choice)
    return sorted(found, key=lambda choice: (choice != "train loss", choice))


def compare_runs(
    engine: Engine,
    run_ids: list[str] | None,
    metric: str = "train loss",
    smoothing: float = 0.0,
    log_y: bool = False,
) -> Comparison:
    """Overlay `metric` of the runs, tabulate their specs, and plot parameters against the final metric."""
    run_ids = list(run_ids or [])
    if not run_ids:
        empty = plots.empty_figure(NOTHING_SELECTED)
        table = pd.DataFrame({"field": [], "value": []})
        return Comparison(curves=empty, configs=table.style, differing=[], pareto=empty)
    kind, _, name = (metric or "train loss").partition(" ")
    labels = {run_id: _label(engine, run_id) for run_id in run_ids}

    frames = {labels[run_id]: engine.metrics(run_id) for run_id in run_ids}
    curves = plots.compare_curves_figure(frames, kind=kind, name=name, smoothing=smoothing, log_y=log_y)

    table = config_table(engine, run_ids)
    differing = [field for field in table.index if table.loc[field].astype(str).nunique() > 1]
    # Gradio's Dataframe hides the index, so the field names become the first column.
    shown = table.reset_index()
    styler = shown.style.apply(
        lambda row: [DIFFERENCE_STYLE if row["field"] in differing else "" for _ in row], axis=1
    )

    final_metric = name if kind == "eval" else _default_quality_metric(frames)
    points = final_points(engine, run_ids, final_metric)
    higher_is_better = final_metric not in ("loss", "mse", "perplexity")
    pareto = plots.pareto_figure(points, metric_name=final_metric, higher_is_better=higher_is_better)
    return Comparison(curves=curves, configs=styler, differing=differing, pareto=pareto)


def config_table(engine: Engine, run_ids: list[str]) -> pd.DataFrame:
    """Return the runs' specs side by side: one row per field, one column per run.

    LoRA runs show "n/a" for the fields only MSPLoRA reads (MSPLORA_ONLY_FIELDS).
    """
    columns = {}
    for run_id in run_ids:
        spec = engine.status(run_id).spec.to_dict()
        cells = {key: _cell(value) for key, value in spec.items()}
        if spec["method"] == "lora":
            cells.update({key: NOT_APPLICABLE for key in MSPLORA_ONLY_FIELDS if key in cells})
        columns[_label(engine, run_id)] = cells
    table = pd.DataFrame(columns)
    table.index.name = "field"
    return table


def final_points(engine: Engine, run_ids: list[str], metric: str) -> pd.DataFrame:
    """One row per run: label, method, trainable parameters and the last value of eval `metric`."""
    rows = []
    for run_id in run_ids:
        run = engine.status(run_id)
        budget = engine.budget(run_id) or {}
        metrics = engine.metrics(run_id)
        evaluation = metrics[(metrics["kind"] == "eval") & (metrics["name"].str.removeprefix("eval_") == metric)]
        value = float(evaluation.sort_values("step")["value"].iloc[-1]) if not evaluation.empty else None
        rows.append(
            {
                "label": run.name,
                "method": run.spec.method,
                "trainable": budget.get("total"),
                "metric": value,
            }
        )
    return pd.DataFrame(rows, columns=["label", "method", "trainable", "metric"])


def _default_quality_metric(frames: dict[str, pd.DataFrame]) -> str:
    """Pick the first task metric the runs logged (accuracy before F1, ...), else the eval loss."""
    names = set()
    for frame in frames.values():
        names.update(frame.loc[frame["kind"] == "eval", "name"].str.removeprefix("eval_"))
    for preferred in ("accuracy", "f1", "matthews_correlation", "pearson", "spearman", "perplexity"):
        if preferred in names:
            return preferred
    return "loss"


def _label(engine: Engine, run_id: str) -> str:
    return f"{engine.status(run_id).name} [{run_id}]"


def _cell(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value)
    return "" if value is None else str(value)
