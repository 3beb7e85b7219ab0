"""Plotly figures of MSPLoRA layouts, budgets, training curves and spectra.

Plain functions from engine data and core records to `plotly.graph_objects.Figure`,
shared by the workbench app and the teaching notebooks. Inputs are the plain
structures the engine stores, so a figure can be rebuilt from any run store:

- a layout: the `AdapterRecord`s of `model.layout()`, or their `dataclasses.asdict`
  dicts (key, level, group, role, stack, blocks, rank, in_features, out_features);
- a budget: `Budget.to_dict()` (total, by_level, lora_equivalent, ...);
- metrics: the long-format frame of `Engine.metrics` (step, kind, name, value, time);
- spectra: the snapshots of `Engine.spectra`, `[{"step", "spectra": LevelSpectra.to_dict()}]`.

Every function returns a figure, also for empty input (a figure with a
"no data yet" message), so live views can call them before a run logs anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, is_dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = [
    "LEVELS",
    "LEVEL_COLORS",
    "pyramid_figure",
    "budget_figure",
    "loss_figure",
    "eval_metrics_figure",
    "learning_rate_figure",
    "spectra_figure",
    "spectra_evolution_figure",
    "redundancy_figure",
    "compare_curves_figure",
    "pareto_front",
    "pareto_figure",
    "whatif_figure",
    "empty_figure",
    "smooth",
]

LEVELS = ("global", "mid", "layer")
LEVEL_COLORS = {"global": "#1f77b4", "mid": "#ff7f0e", "layer": "#2ca02c", "lora": "#7f7f7f"}


def pyramid_figure(layout: Sequence[Any], num_blocks: int | None = None) -> go.Figure:
    """Draw which blocks each global, mid and layer adapter serves, one row per level.

    `layout` is a sequence of `AdapterRecord` (from `model.layout()` or a `Layout`'s
    `adapters`) or their `dataclasses.asdict` dicts.

    Adapters of different roles (query, value, ...) that serve the same blocks at
    the same level are drawn as one bar, with the roles listed on hover. A model
    with several stacks (encoder and decoder) gets one panel per stack.
    """
    if not layout:
        return empty_figure("No adapters: choose target modules that exist in the model.")

    bars = _merge_roles(layout)
    stacks = list(dict.fromkeys(bar["stack"] for bar in bars))
    figure = make_subplots(rows=len(stacks), cols=1, subplot_titles=[s or "blocks" for s in stacks])

    for row, stack in enumerate(stacks, start=1):
        for level in LEVELS:
            level_bars = [bar for bar in bars if bar["stack"] == stack and bar["level"] == level]
            if not level_bars:
                continue
            figure.add_trace(_pyramid_trace(level, level_bars, show_legend=row == 1), row=row, col=1)
        figure.update_yaxes(categoryorder="array", categoryarray=list(LEVELS)[::-1], row=row, col=1)

    last_block = num_blocks - 1 if num_blocks else max(max(bar["blocks"]) for bar in bars)
    figure.update_xaxes(title_text="block", range=[-0.5, last_block + 0.5], dtick=1)
    figure.update_layout(
        barmode="overlay",
        title="Adapter pyramid: which blocks each adapter serves",
        height=220 + 160 * len(stacks),
        legend_title_text="level",
    )
    return figure


def budget_figure(budget: Mapping[str, Any], lora_rank: int | None = None) -> go.Figure:
    """Compare the trainable parameters per level with LoRA of the same top rank.

    `budget` is `Budget.to_dict()`; its `lora_equivalent` is the count of plain
    LoRA at the top rank on the same targets. A LoRA run's budget has the one
    level "lora" (as the engine records it), drawn as a single bar.
    """
    by_level = budget.get("by_level") or {}
    if not by_level:
        return empty_figure("No budget recorded yet.")

    pyramid = any(level in by_level for level in LEVELS)
    run_label = "MSPLoRA"
    if not pyramid:
        run_label = f"LoRA r={lora_rank}" if lora_rank else "LoRA"
    levels = [level for level in LEVELS if level in by_level] + [level for level in by_level if level not in LEVELS]

    figure = go.Figure()
    for level in levels:
        count = int(by_level[level])
        figure.add_trace(
            go.Bar(
                name=level,
                x=[run_label],
                y=[count],
                marker_color=LEVEL_COLORS.get(level, LEVEL_COLORS["lora"]),
                text=[f"{count:,}"],
                hovertemplate=f"{level}: %{{y:,}} parameters<extra></extra>",
            )
        )

    lora = budget.get("lora_equivalent")
    if lora is not None and pyramid:
        label = f"LoRA r={lora_rank}" if lora_rank else "LoRA, same top rank"
        figure.add_trace(
            go.Bar(
                name="LoRA",
                x=[label],
                y=[int(lora)],
                marker_color=LEVEL_COLORS["lora"],
                text=[f"{int(lora):,}"],
                hovertemplate="LoRA: %{y:,} parameters<extra></extra>",
            )
        )

    total = int(budget.get("total") or sum(int(count) for count in by_level.values()))
    title = f"Trainable adapter parameters: {total:,}"
    if lora and pyramid:
        title += f" ({total / int(lora):.0%} of LoRA)"
    figure.update_layout(barmode="stack", title=title, yaxis_title="parameters", height=360)
    return figure


def loss_figure(metrics: pd.DataFrame, smoothing: float = 0.0, log_y: bool = False) -> go.Figure:
    """Plot training loss (raw and smoothed) and evaluation loss against the step.

    Args:
        metrics: the long-format frame of `Engine.metrics`.
        smoothing: weight of the exponential moving average in [0, 1); 0 draws the raw loss only.
        log_y: draw the loss on a log scale.
    """
    train = _series(metrics, "train", "loss")
    evaluation = _series(metrics, "eval", "loss")
    if train.empty and evaluation.empty:
        return empty_figure("No loss logged yet.")

    figure = go.Figure()
    if not train.empty:
        raw_opacity = 0.35 if smoothing > 0 else 1.0
        figure.add_trace(
            go.Scatter(x=train["step"], y=train["value"], mode="lines", name="train loss",
                       line=dict(color="#1f77b4"), opacity=raw_opacity)
        )
        if smoothing > 0:
            figure.add_trace(
                go.Scatter(x=train["step"], y=smooth(train["value"].to_numpy(), smoothing),
                           mode="lines", name=f"train loss (smoothed {smoothing:g})",
                           line=dict(color="#1f77b4", width=3))
            )
    if not evaluation.empty:
        figure.add_trace(
            go.Scatter(x=evaluation["step"], y=evaluation["value"], mode="lines+markers",
                       name="eval loss", line=dict(color="#d62728"))
        )

    figure.update_layout(title="Loss", xaxis_title="step", yaxis_title="loss", height=360)
    if log_y:
        _log_y_axis(figure)
    return figure


def eval_metrics_figure(metrics: pd.DataFrame) -> go.Figure:
    """Plot every evaluation metric except the loss (accuracy, F1, Pearson, ...) against the step."""
    evaluation = _kind(metrics, "eval")
    if not evaluation.empty:
        evaluation = evaluation[~evaluation["metric"].isin(_NOT_QUALITY_METRICS)]
    if evaluation.empty:
        return empty_figure("No evaluation yet.")

    figure = go.Figure()
    for metric, rows in evaluation.groupby("metric", sort=True):
        rows = rows.sort_values("step")
        figure.add_trace(go.Scatter(x=rows["step"], y=rows["value"], mode="lines+markers", name=metric))
    figure.update_layout(title="Evaluation metrics", xaxis_title="step", yaxis_title="value", height=360)
    return figure


def learning_rate_figure(metrics: pd.DataFrame) -> go.Figure:
    """Plot the learning rate against the step."""
    rate = _series(metrics, "train", "learning_rate")
    if rate.empty:
        return empty_figure("No learning rate logged yet.")

    figure = go.Figure(go.Scatter(x=rate["step"], y=rate["value"], mode="lines", name="learning rate"))
    figure.update_layout(title="Learning rate", xaxis_title="step", yaxis_title="learning rate", height=300)
    return figure


def spectra_figure(snapshot: Mapping[str, Any] | None, log_y: bool = True) -> go.Figure:
    """Plot the singular values of each adapter's update, one panel per level.

    `snapshot` is one entry of `Engine.spectra` or a bare `LevelSpectra.to_dict()`.
    """
    spectra = _spectra_of(snapshot)
    adapters = spectra.get("adapters") or []
    if not adapters:
        return empty_figure("No spectra recorded yet.")

    levels = _levels_of(adapters)
    titles = [_level_title(level, spectra) for level in levels]
    figure = make_subplots(rows=1, cols=len(levels), subplot_titles=titles, shared_yaxes=True)

    for col, level in enumerate(levels, start=1):
        for adapter in (a for a in adapters if a["level"] == level):
            values = adapter["singular_values"]
            figure.add_trace(
                go.Scatter(
                    x=list(range(1, len(values) + 1)),
                    y=values,
                    mode="lines+markers",
                    name=adapter["name"],
                    line=dict(color=_color(level), width=1),
                    showlegend=False,
                    hovertemplate=f"{adapter['name']}<br>σ%{{x}} = %{{y:.4g}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
        figure.update_xaxes(title_text="index", dtick=1, row=1, col=col)

    step = snapshot.get("step") if isinstance(snapshot, Mapping) else None
    title = "Singular values of each adapter's update" + (f" at step {step}" if step is not None else "")
    figure.update_layout(title=title, yaxis_title="singular value", height=360)
    if log_y:
        _log_y_axis(figure)
    return figure


def spectra_evolution_figure(snapshots: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Plot, per level, the effective rank and the largest singular value over the steps."""
    rows = []
    for snapshot in snapshots:
        spectra = _spectra_of(snapshot)
        for level in _levels_of(spectra.get("adapters", [])):
            values = [max(a["singular_values"], default=0.0) for a in spectra.get("adapters", [])
                      if a["level"] == level]
            summary = (spectra.get("levels") or {}).get(level) or {}
            if not values and not summary:
                continue
            rows.append(
                {
                    "step": snapshot.get("step"),
                    "level": level,
                    "effective_rank": summary.get("effective_rank"),
                    "top_singular_value": max(values) if values else None,
                }
            )
    if not rows:
        return empty_figure("No spectra recorded yet.")

    frame = pd.DataFrame(rows).sort_values("step")
    figure = make_subplots(rows=1, cols=2, subplot_titles=["effective rank", "largest singular value"])
    for level, level_rows in frame.groupby("level", sort=False):
        color = _color(level)
        figure.add_trace(
            go.Scatter(x=level_rows["step"], y=level_rows["effective_rank"], mode="lines+markers",
                       name=level, line=dict(color=color), legendgroup=level),
            row=1, col=1,
        )
        figure.add_trace(
            go.Scatter(x=level_rows["step"], y=level_rows["top_singular_value"], mode="lines+markers",
                       name=level, line=dict(color=color), legendgroup=level, showlegend=False),
            row=1, col=2,
        )
    figure.update_xaxes(title_text="step")
    figure.update_layout(title="How the spectra evolve", height=360)
    return figure


def redundancy_figure(snapshots: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Plot each level's redundancy between blocks over the steps.

    Redundancy is the value `LevelSpectra` reports per level (0: the blocks'
    updates share nothing, 1: they are the same); see `msplora.analysis`.
    """
    rows = []
    for snapshot in snapshots:
        for level, value in (_spectra_of(snapshot).get("redundancy") or {}).items():
            if value is not None:
                rows.append({"step": snapshot.get("step"), "level": level, "value": float(value)})
    if not rows:
        return empty_figure("No redundancy recorded yet.")

    frame = pd.DataFrame(rows).sort_values("step")
    figure = go.Figure()
    for level, level_rows in frame.groupby("level", sort=False):
        figure.add_trace(
            go.Scatter(x=level_rows["step"], y=level_rows["value"], mode="lines+markers", name=level,
                       line=dict(color=_color(level)))
        )
    figure.update_layout(title="Redundancy between blocks", xaxis_title="step",
                         yaxis_title="redundancy", height=320)
    return figure


def compare_curves_figure(
    runs: Mapping[str, pd.DataFrame],
    kind: str = "train",
    name: str = "loss",
    smoothing: float = 0.0,
    log_y: bool = False,
) -> go.Figure:
    """Overlay one metric of several runs, e.g. training loss or eval accuracy.

    Args:
        runs: run label → the run's long-format metrics frame.
        kind: "train" or "eval".
        name: the metric name, with or without the "eval_" prefix.
        smoothing: exponential moving average weight in [0, 1).
        log_y: draw the values on a log scale.
    """
    figure = go.Figure()
    for label, metrics in runs.items():
        series = _series(metrics, kind, name)
        if series.empty:
            continue
        values = series["value"].to_numpy()
        if smoothing > 0:
            values = smooth(values, smoothing)
        figure.add_trace(go.Scatter(x=series["step"], y=values, mode="lines", name=label))
    if not figure.data:
        return empty_figure(f"None of the selected runs logged {kind} {name}.")

    figure.update_layout(title=f"{kind} {name}", xaxis_title="step", yaxis_title=name, height=380)
    if log_y:
        _log_y_axis(figure)
    return figure


def pareto_front(points: pd.DataFrame, x: str = "trainable", y: str = "metric",
                 higher_is_better: bool = True) -> pd.DataFrame:
    """Return the points that no other point beats with fewer or equal parameters.

    A point is on the front when every point with at most its `x` has a worse
    `y`. The front is sorted by `x`.
    """
    clean = points.dropna(subset=[x, y])
    sign = 1.0 if higher_is_better else -1.0
    ordered = clean.assign(_score=sign * clean[y]).sort_values([x, "_score"], ascending=[True, False])

    best = -np.inf
    keep = []
    for index, score in zip(ordered.index, ordered["_score"]):
        if score > best:
            keep.append(index)
            best = score
    return ordered.loc[keep].drop(columns="_score")


def pareto_figure(points: pd.DataFrame, metric_name: str = "metric",
                  higher_is_better: bool = True) -> go.Figure:
    """Scatter trainable parameters against a final metric, with the Pareto front.

    `points` has one row per run with columns `label`, `trainable`, `metric`
    and optionally `method`.
    """
    clean = points.dropna(subset=["trainable", "metric"]) if not points.empty else points
    if clean.empty:
        return empty_figure(f"No finished run has a final {metric_name} yet.")

    figure = go.Figure()
    methods = clean["method"] if "method" in clean else pd.Series("run", index=clean.index)
    for method, rows in clean.groupby(methods, sort=True):
        figure.add_trace(
            go.Scatter(x=rows["trainable"], y=rows["metric"], mode="markers+text", name=str(method),
                       text=rows["label"], textposition="top center", marker=dict(size=11))
        )

    front = pareto_front(clean, higher_is_better=higher_is_better)
    figure.add_trace(
        go.Scatter(x=front["trainable"], y=front["metric"], mode="lines", name="Pareto front",
                   line=dict(dash="dash", color="#444444"), line_shape="hv")
    )
    figure.update_xaxes(type="log", title_text="trainable parameters")
    figure.update_layout(title=f"Trainable parameters against final {metric_name}",
                         yaxis_title=metric_name, height=420)
    return figure


def whatif_figure(table: pd.DataFrame, log_y: bool = True) -> go.Figure:
    """Plot adapter parameters against the top rank, one line per method and grouping.

    `table` has columns `method` ("LoRA" or "MSPLoRA"), `rank`, `rank_decay`,
    `mid_groups` and `total` (trainable adapter parameters).
    """
    if table.empty:
        return empty_figure("No budgets to show: pick at least one rank.")

    figure = go.Figure()
    for key, rows in table.groupby(["method", "rank_decay", "mid_groups"], sort=True, dropna=False):
        method, decay, groups = key
        label = "LoRA" if method == "LoRA" else f"MSPLoRA decay {decay:g}, {int(groups)} groups"
        rows = rows.sort_values("rank")
        dash = "dash" if method == "LoRA" else "solid"
        figure.add_trace(
            go.Scatter(x=rows["rank"], y=rows["total"], mode="lines+markers", name=label,
                       line=dict(dash=dash))
        )
    figure.update_xaxes(title_text="top rank", type="log", tickvals=sorted(table["rank"].unique()))
    figure.update_layout(title="Adapter parameters by top rank", yaxis_title="trainable parameters",
                         height=420)
    if log_y:
        _log_y_axis(figure)
    return figure


def empty_figure(message: str) -> go.Figure:
    """Return a blank figure that shows `message` in its middle."""
    figure = go.Figure()
    figure.add_annotation(text=message, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5,
                          font=dict(size=14, color="#666666"))
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    figure.update_layout(height=260, plot_bgcolor="rgba(0,0,0,0)", paper_bgcolor="rgba(0,0,0,0)")
    return figure


def smooth(values: Sequence[float] | np.ndarray, weight: float) -> np.ndarray:
    """Smooth a curve with a debiased exponential moving average.

    `weight` in [0, 1): 0 returns the values unchanged, values near 1 smooth more.
    The debiasing divides by 1 − weight^t so the first points are not pulled toward 0.
    """
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"Smoothing weight {weight} is outside [0, 1); use e.g. 0.6.")
    values = np.asarray(values, dtype=float)

    smoothed = np.empty_like(values)
    average = 0.0
    for t, value in enumerate(values, start=1):
        average = weight * average + (1.0 - weight) * value
        smoothed[t - 1] = average / (1.0 - weight**t)
    return smoothed


# Evaluation rows that are not a quality metric of the task.
_NOT_QUALITY_METRICS = {"loss", "runtime", "samples_per_second", "steps_per_second", "epoch"}


def _kind(metrics: pd.DataFrame | None, kind: str) -> pd.DataFrame:
    """Rows of one kind with a `metric` column: the name without its "eval_" prefix."""
    if metrics is None or metrics.empty:
        return pd.DataFrame(columns=["step", "metric", "value"])
    rows = metrics[metrics["kind"] == kind]
    return rows.assign(metric=rows["name"].str.removeprefix("eval_"))


def _series(metrics: pd.DataFrame | None, kind: str, name: str) -> pd.DataFrame:
    """Select one metric's (step, value) rows, sorted by step, with non-finite values dropped."""
    rows = _kind(metrics, kind)
    rows = rows[rows["metric"] == name.removeprefix("eval_")]
    rows = rows[np.isfinite(rows["value"].astype(float))]
    return rows[["step", "value"]].sort_values("step")


def _levels_of(adapters: Sequence[Mapping[str, Any]]) -> list[str]:
    """List the levels present, global/mid/layer first, then others such as a LoRA run's "lora"."""
    present = list(dict.fromkeys(adapter["level"] for adapter in adapters))
    return [level for level in LEVELS if level in present] + [level for level in present if level not in LEVELS]


def _color(level: str) -> str:
    return LEVEL_COLORS.get(level, LEVEL_COLORS["lora"])


def _spectra_of(snapshot: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if not snapshot:
        return {}
    return snapshot.get("spectra", snapshot)


def _level_title(level: str, spectra: Mapping[str, Any]) -> str:
    summary = (spectra.get("levels") or {}).get(level) or {}
    effective_rank = summary.get("effective_rank")
    if effective_rank is None:
        return level
    return f"{level} (effective rank {effective_rank:.2f})"


def _merge_roles(layout: Sequence[Any]) -> list[dict[str, Any]]:
    """Merge adapters that differ only in role into one bar per contiguous run of blocks."""
    merged: dict[tuple, dict[str, Any]] = {}
    for record in map(_record_dict, layout):
        blocks = tuple(sorted(record["blocks"]))
        key = (record.get("stack", ""), record["level"], record.get("group"), blocks, record["rank"])
        bar = merged.setdefault(
            key,
            {"stack": key[0] or "", "level": key[1], "group": key[2], "blocks": blocks,
             "rank": key[4], "roles": [], "params": 0},
        )
        bar["roles"].append(_short_role(record.get("role") or record.get("key", "")))
        bar["params"] += int(record.get("params", 0))

    bars = []
    for bar in merged.values():
        for run in _contiguous_runs(bar["blocks"]):
            bars.append({**bar, "run": run})
    return bars


def _record_dict(record: Any) -> dict[str, Any]:
    """Convert an `AdapterRecord` or its dict to a dict with `params` = rank * (in + out)."""
    if is_dataclass(record):
        data = asdict(record)
        data["params"] = getattr(record, "params", 0)
        return data
    data = dict(record)
    if "params" not in data and "in_features" in data:
        data["params"] = data["rank"] * (data["in_features"] + data["out_features"])
    return data


def _pyramid_trace(level: str, bars: list[dict[str, Any]], show_legend: bool) -> go.Bar:
    starts = [bar["run"][0] for bar in bars]
    widths = [bar["run"][-1] - bar["run"][0] + 1 for bar in bars]
    texts = [f"r={bar['rank']}" for bar in bars]
    hovers = [
        f"{level} adapter, rank {bar['rank']}<br>blocks {_block_range(bar['blocks'])}"
        f"<br>roles: {', '.join(bar['roles'])}<br>{bar['params']:,} parameters"
        for bar in bars
    ]
    return go.Bar(
        y=[level] * len(bars),
        x=widths,
        base=[start - 0.5 for start in starts],
        orientation="h",
        name=level,
        legendgroup=level,
        showlegend=show_legend,
        marker=dict(color=LEVEL_COLORS[level], line=dict(color="white", width=2)),
        text=texts,
        textposition="inside",
        insidetextanchor="middle",
        hovertext=hovers,
        hoverinfo="text",
    )


def _contiguous_runs(blocks: Sequence[int]) -> list[tuple[int, ...]]:
    runs: list[list[int]] = []
    for block in blocks:
        if runs and block == runs[-1][-1] + 1:
            runs[-1].append(block)
        else:
            runs.append([block])
    return [tuple(run) for run in runs]


def _block_range(blocks: Sequence[int]) -> str:
    return ", ".join(f"{run[0]}–{run[-1]}" if len(run) > 1 else str(run[0]) for run in _contiguous_runs(blocks))


def _short_role(role: str) -> str:
    """Return the last name of a role path: `encoder.layer.*.attention.self.query` → `query`."""
    return role.rsplit(".", 1)[-1]


def _log_y_axis(figure: go.Figure) -> None:
    """Put the y axes on a log scale with labels only where they do not crowd.

    Plotly labels every digit between powers of ten on a short log range, which
    overlaps on small charts. When the data contain two or more powers of ten, only
    those get labels (as 10^k). Otherwise the labels are at 1, 2 and 5 times a power of ten.
    """
    values = np.concatenate([np.asarray(trace.y, dtype=float) for trace in figure.data if trace.y is not None]
                            or [np.array([])])
    values = values[np.isfinite(values) & (values > 0)]
    powers_of_ten = 0
    if values.size:
        powers_of_ten = int(np.floor(np.log10(values.max())) - np.ceil(np.log10(values.min()))) + 1
    figure.update_yaxes(type="log", dtick=1 if powers_of_ten >= 2 else "D2", exponentformat="power",
                        minor=dict(ticks="outside", showgrid=True))
