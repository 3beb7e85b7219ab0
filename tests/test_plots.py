"""Tests for msplora.plots: figures from layouts, budgets, metrics and spectra."""

import numpy as np
import pandas as pd
import pytest

from msplora import plots
from msplora.budget import budget_from_config, layout_from_config
from msplora.config import MSPLoRAConfig
from msplora.presets import preset_config


@pytest.fixture(scope="module")
def minilm_layout():
    config = MSPLoRAConfig(target_modules=["query", "value"], rank=8, rank_decay=2.0, mid_groups=3)
    return layout_from_config(preset_config("minilm-l6"), config)


def metrics_frame():
    """Synthetic engine metrics: 20 train steps, 2 evaluations, a NaN loss at step 7."""
    rng = np.random.default_rng(0)
    rows = []
    for step in range(1, 21):
        loss = 1.0 / step + 0.05 * rng.random()
        rows.append({"step": step, "kind": "train", "name": "loss", "value": loss, "time": float(step)})
        rows.append({"step": step, "kind": "train", "name": "learning_rate", "value": 1e-3 * (1 - step / 20),
                     "time": float(step)})
    rows[12]["value"] = float("nan")
    for step, accuracy in [(10, 0.6), (20, 0.8)]:
        rows.append({"step": step, "kind": "eval", "name": "eval_loss", "value": 0.5, "time": float(step)})
        rows.append({"step": step, "kind": "eval", "name": "eval_accuracy", "value": accuracy, "time": float(step)})
        rows.append({"step": step, "kind": "eval", "name": "eval_runtime", "value": 1.5, "time": float(step)})
    return pd.DataFrame(rows)


def spectra_snapshot(step, scale):
    adapters = []
    for level, rank, blocks in [("global", 8, [0, 1, 2, 3]), ("mid", 4, [0, 1]), ("mid", 4, [2, 3]),
                                ("layer", 2, [0]), ("layer", 2, [1])]:
        adapters.append({"name": f"{level}/{blocks[0]}", "level": level, "role": "query", "stack": "layers",
                         "group": blocks[0], "blocks": blocks,
                         "singular_values": list(scale * np.linspace(1.0, 0.1, rank))})
    levels = {level: {"effective_rank": 1.5 * scale, "energy": 1.0} for level in plots.LEVELS}
    return {"step": step, "spectra": {"adapters": adapters, "levels": levels,
                                      "redundancy": {"mid": 0.2 * scale, "layer": 0.1 * scale}}}


def test_pyramid_one_bar_per_adapter_group(minilm_layout):
    figure = plots.pyramid_figure(minilm_layout.adapters, num_blocks=6)
    by_level = {trace.name: trace for trace in figure.data}
    # Roles query and value merge into one bar per group: 1 global, 3 mid, 6 layer.
    assert len(by_level["global"].x) == 1
    assert len(by_level["mid"].x) == 3
    assert len(by_level["layer"].x) == 6
    # numpy.array_split of 6 blocks into 3 groups gives widths 2, 2, 2.
    assert list(by_level["mid"].x) == [2, 2, 2]
    assert list(by_level["global"].x) == [6]
    assert "query, value" in by_level["global"].hovertext[0]


def test_pyramid_accepts_record_dicts():
    records = [
        {"key": "q/global/0", "level": "global", "group": 0, "role": "layers.*.q", "stack": "layers",
         "blocks": [0, 1, 3], "rank": 4, "in_features": 8, "out_features": 8},
    ]
    figure = plots.pyramid_figure(records)
    # Blocks 0, 1 and 3 are two contiguous runs, drawn as two bars.
    assert list(figure.data[0].x) == [2, 1]
    assert list(figure.data[0].base) == [-0.5, 2.5]
    assert "64 parameters" in figure.data[0].hovertext[0]


def test_pyramid_empty_layout_explains():
    figure = plots.pyramid_figure([])
    assert "No adapters" in figure.layout.annotations[0].text


def test_budget_figure_against_lora():
    config = MSPLoRAConfig(target_modules=["query", "value"])
    budget = budget_from_config(preset_config("minilm-l6"), config).to_dict()
    figure = plots.budget_figure(budget, lora_rank=8)
    heights = {trace.name: trace.y[0] for trace in figure.data}
    # Formula r * (in + out) with in = out = 384, 2 roles, 6 blocks:
    # global 2*8*768, mid 2*3*4*768, layer 2*6*2*768, LoRA 2*6*8*768.
    assert heights == {"global": 12288, "mid": 18432, "layer": 18432, "LoRA": 73728}
    assert "67% of LoRA" in figure.layout.title.text


def test_loss_figure_smoothing_and_log_scale():
    figure = plots.loss_figure(metrics_frame(), smoothing=0.6, log_y=True)
    names = [trace.name for trace in figure.data]
    assert names == ["train loss", "train loss (smoothed 0.6)", "eval loss"]
    # The NaN loss at step 7 is dropped, leaving 19 of 20 points.
    assert len(figure.data[0].x) == 19
    assert figure.layout.yaxis.type == "log"


def test_loss_figure_without_rows():
    empty = pd.DataFrame(columns=["step", "kind", "name", "value", "time"])
    assert "No loss" in plots.loss_figure(empty).layout.annotations[0].text


def test_eval_metrics_skip_loss_and_runtime():
    figure = plots.eval_metrics_figure(metrics_frame())
    assert [trace.name for trace in figure.data] == ["accuracy"]
    assert list(figure.data[0].y) == [0.6, 0.8]


def test_learning_rate_figure_points():
    figure = plots.learning_rate_figure(metrics_frame())
    assert len(figure.data[0].x) == 20


def test_smooth_debiased_ema():
    # Hand-computed: a = 0.5*0 + 0.5*2 = 1, debiased 1/(1-0.5) = 2;
    # then a = 0.5*1 + 0.5*4 = 2.5, debiased 2.5/(1-0.25) = 3.333...
    assert np.allclose(plots.smooth([2.0, 4.0], 0.5), [2.0, 10.0 / 3.0])
    assert np.allclose(plots.smooth([1.0, 5.0], 0.0), [1.0, 5.0])
    with pytest.raises(ValueError, match="outside"):
        plots.smooth([1.0], 1.0)


def test_spectra_figure_panels_per_level():
    figure = plots.spectra_figure(spectra_snapshot(50, 1.0))
    assert len(figure.data) == 5
    titles = [annotation.text for annotation in figure.layout.annotations]
    assert titles == ["global (effective rank 1.50)", "mid (effective rank 1.50)", "layer (effective rank 1.50)"]
    assert "step 50" in figure.layout.title.text


def test_spectra_evolution_over_steps():
    snapshots = [spectra_snapshot(50, 1.0), spectra_snapshot(100, 2.0)]
    figure = plots.spectra_evolution_figure(snapshots)
    global_top = next(t for t in figure.data if t.name == "global" and t.showlegend is False)
    assert list(global_top.x) == [50, 100]
    assert list(global_top.y) == [1.0, 2.0]


def test_redundancy_figure_levels():
    figure = plots.redundancy_figure([spectra_snapshot(50, 1.0), spectra_snapshot(100, 2.0)])
    values = {trace.name: list(trace.y) for trace in figure.data}
    assert values == {"mid": [0.2, 0.4], "layer": [0.1, 0.2]}


def test_compare_curves_overlay():
    frame = metrics_frame()
    figure = plots.compare_curves_figure({"run a": frame, "run b": frame}, kind="eval", name="eval_accuracy")
    assert [trace.name for trace in figure.data] == ["run a", "run b"]
    missing = plots.compare_curves_figure({"run a": frame}, kind="eval", name="f1")
    assert "None of the selected runs" in missing.layout.annotations[0].text


def test_pareto_front_keeps_undominated():
    points = pd.DataFrame(
        {
            "label": ["a", "b", "c", "d", "e"],
            "trainable": [100, 200, 300, 400, 400],
            "metric": [0.70, 0.65, 0.80, 0.79, 0.85],
        }
    )
    front = plots.pareto_front(points)
    # b is beaten by a with fewer parameters; d is beaten by e at the same count.
    assert list(front["label"]) == ["a", "c", "e"]
    lower = plots.pareto_front(points, higher_is_better=False)
    assert list(lower["label"]) == ["a", "b"]


def test_pareto_figure_traces():
    points = pd.DataFrame({"label": ["x", "y"], "trainable": [10, 20], "metric": [0.5, 0.9],
                           "method": ["msplora", "lora"]})
    figure = plots.pareto_figure(points, metric_name="accuracy")
    assert [trace.name for trace in figure.data] == ["lora", "msplora", "Pareto front"]
    assert figure.layout.xaxis.type == "log"


def test_whatif_figure_lines():
    table = pd.DataFrame(
        {
            "method": ["LoRA", "LoRA", "MSPLoRA", "MSPLoRA"],
            "rank": [8, 16, 8, 16],
            "rank_decay": [np.nan, np.nan, 2.0, 2.0],
            "mid_groups": [np.nan, np.nan, 3, 3],
            "total": [100, 200, 60, 120],
        }
    )
    figure = plots.whatif_figure(table)
    assert [trace.name for trace in figure.data] == ["LoRA", "MSPLoRA decay 2, 3 groups"]
    assert list(figure.data[1].y) == [60, 120]


def test_budget_figure_lora_run():
    # The engine records a LoRA run's budget with the single level "lora".
    budget = {"total": 73728, "by_level": {"lora": 73728}, "lora_equivalent": 73728}
    figure = plots.budget_figure(budget, lora_rank=8)
    assert [trace.name for trace in figure.data] == ["lora"]
    assert list(figure.data[0].x) == ["LoRA r=8"]
    assert figure.layout.title.text == "Trainable adapter parameters: 73,728"


def test_spectra_of_lora_run():
    # The engine reports a LoRA run's adapters as the single level "lora".
    snapshot = {"step": 10, "spectra": {
        "adapters": [{"name": "q/0", "level": "lora", "role": "q", "stack": "layers", "group": 0, "blocks": [0],
                      "singular_values": [0.3, 0.1]}],
        "levels": {"lora": {"effective_rank": 1.4, "energy": 1.0}}, "redundancy": {"lora": None}}}
    figure = plots.spectra_figure(snapshot)
    assert len(figure.data) == 1
    assert figure.layout.annotations[0].text == "lora (effective rank 1.40)"
    evolution = plots.spectra_evolution_figure([snapshot])
    assert [trace.name for trace in evolution.data] == ["lora", "lora"]


def test_log_axis_labels_do_not_crowd():
    # Values 1.0 .. 0.1 (spectra_snapshot) contain two powers of ten, 10^0 and 10^-1: labels only there.
    wide = plots.spectra_figure(spectra_snapshot(50, 1.0))
    assert wide.layout.yaxis.type == "log"
    assert wide.layout.yaxis.dtick == 1
    assert wide.layout.yaxis.exponentformat == "power"

    narrow_snapshot = spectra_snapshot(50, 1.0)
    for adapter in narrow_snapshot["spectra"]["adapters"]:
        adapter["singular_values"] = [0.5, 0.3, 0.2][: len(adapter["singular_values"])]
    narrow = plots.spectra_figure(narrow_snapshot)
    # Under two powers of ten, Plotly's "D2" labels only the 2s and 5s between powers of ten.
    assert narrow.layout.yaxis.dtick == "D2"

    # 1.4 M .. 33.5 M contains only 10^7, which alone would leave one label on the axis.
    table = pd.DataFrame({"method": ["LoRA", "LoRA"], "rank": [8, 64], "rank_decay": [None, None],
                          "mid_groups": [None, None], "total": [1_376_256, 33_554_432]})
    assert plots.whatif_figure(table).layout.yaxis.dtick == "D2"
