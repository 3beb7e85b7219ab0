"""Smoke tests of the benchmark scripts: each `--quick` run finishes and writes a sound JSON record.

These check that the scripts work and that their outputs are self-consistent: sizes
from formulas, spectra equal to dense SVDs, merged outputs equal to unmerged ones.
They do not check the speed targets, which need the full runs on a quiet machine.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH = REPO_ROOT / "bench"

# The quick versions' tiny BERT: hidden 64, MLP 128, 4 blocks, a 2-class head (64 * 2 weights + 2 biases).
TINY_HIDDEN = 64
TINY_INTERMEDIATE = 128
TINY_BLOCKS = 4
TINY_HEAD = TINY_HIDDEN * 2 + 2

# A hand-written record in the shape bench/merged_inference.py writes, for the report test.
QUICK_MERGED_RECORD = {
    "benchmark": "merged_inference",
    "command": "python bench/merged_inference.py --quick",
    "machine": {"cpu_model": "test CPU", "cpu_count": 2, "torch_threads": 1, "device": "cpu",
                "date_utc": "2026-01-01 00:00 UTC", "git_commit": "abc1234", "load_average": [1.0, 1.0, 1.0]},
    "cases": [
        {
            "model": "tiny-bert",
            "targets": "query_value",
            "max_abs_logit_difference_merged_vs_unmerged": 1.5e-8,
            "times": {"clock": "cpu", "cpu": {}, "wall": {}},
            "merged_over_base": {"median": 0.99, "min": 0.95, "max": 1.05, "ratio_of_medians": 0.99},
            "unmerged_over_base": {"median": 1.2, "min": 1.1, "max": 1.3, "ratio_of_medians": 1.2},
            "copy_over_base": {"median": 1.0, "min": 0.97, "max": 1.02, "ratio_of_medians": 1.0},
        }
    ],
}


def run_quick(script: str, out: Path, timeout: float = 600) -> dict:
    """Run bench/`script` with --quick on CPU and return the JSON it wrote to `out`."""
    command = [sys.executable, str(BENCH / script), "--quick", "--device", "cpu", "--out", str(out)]
    completed = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, timeout=timeout)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(out.read_text(encoding="utf-8"))


def render_report(results_dir: Path) -> str:
    """Run bench/report.py over the records in `results_dir` and return its Markdown."""
    command = [sys.executable, str(BENCH / "report.py"), "--results", str(results_dir)]
    completed = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


def assert_machine_record(results: dict) -> None:
    machine = results["machine"]
    assert machine["device"] == "cpu"
    assert machine["cpu_count"] >= 1
    assert len(machine["load_average"]) == 3
    assert machine["torch_threads"] == 1
    assert results["command"].startswith("python bench/")


def assert_ratio(summary: dict) -> None:
    for key in ("median", "min", "max", "ratio_of_medians"):
        assert math.isfinite(summary[key]), (key, summary)
        assert summary[key] > 0, (key, summary)
    assert summary["min"] <= summary["median"] <= summary["max"]


def test_train_step_quick(tmp_path):
    results = run_quick("train_step.py", tmp_path / "train_step.json")

    assert_machine_record(results)
    cases = {case["targets"]: case for case in results["cases"]}
    assert set(cases) == {"query_value", "all_linear"}
    for case in cases.values():
        assert_ratio(case["msplora_over_lora"])
        assert_ratio(case["msplora_over_floor"])
        assert_ratio(case["msplora_over_unfolded"])
        assert case["trainable_params"]["floor"] == 0
        assert 0.0 < case["floor_matmul_share"] < 1.0

    # Query and value maps are 64 -> 64 in each of the 4 blocks.
    # LoRA r=8: 8 * (64 + 64) per map. MSPLoRA per role: global 8, mid 3 groups of rank 4,
    # layer 4 blocks of rank 2, each rank * (64 + 64).
    per_map = TINY_HIDDEN + TINY_HIDDEN
    lora = 8 * per_map * TINY_BLOCKS * 2
    msplora = (8 + 3 * 4 + TINY_BLOCKS * 2) * per_map * 2
    assert cases["query_value"]["trainable_params"]["lora"] == lora + TINY_HEAD
    assert cases["query_value"]["trainable_params"]["msplora"] == msplora + TINY_HEAD

    # All linears: per block, 4 attention maps 64 -> 64 and the MLP's 64 -> 128 and 128 -> 64.
    per_unit = 4 * per_map + 2 * (TINY_HIDDEN + TINY_INTERMEDIATE)
    assert cases["all_linear"]["trainable_params"]["lora"] == 8 * per_unit * TINY_BLOCKS + TINY_HEAD
    assert cases["all_linear"]["trainable_params"]["msplora"] == (8 + 3 * 4 + TINY_BLOCKS * 2) * per_unit + TINY_HEAD
    assert cases["all_linear"]["trainable_params"]["msplora_unfolded"] == (8 + 3 * 4 + TINY_BLOCKS * 2) * per_unit + TINY_HEAD

    # Exact-gradient minimum (formula in train_step.py): per adapted map 2 R (in + out) extra
    # multiply-adds per row against the floor's 2 in out, the floor's rows and maps alike.
    # Every map of the tiny BERT runs on 4 x 16 rows except the pooler and the head (4 rows each).
    rows, sequences = 4 * 16, 4
    block = 4 * TINY_HIDDEN * TINY_HIDDEN + 2 * TINY_HIDDEN * TINY_INTERMEDIATE
    floor_macs = 2 * (rows * TINY_BLOCKS * block + sequences * (TINY_HIDDEN * TINY_HIDDEN + TINY_HIDDEN * 2))
    total_ranks = {"msplora": 8 + 4 + 2, "lora": 8}
    for targets, per_row in (("query_value", 2 * per_map), ("all_linear", per_unit)):
        case = cases[targets]
        for method, rank in total_ranks.items():
            expected = 1 + case["floor_matmul_share"] * 2 * rows * TINY_BLOCKS * rank * per_row / floor_macs
            assert case["exact_gradient_minimum"][method] == pytest.approx(expected, rel=1e-12)


def test_report_renders_merged_record(tmp_path):
    (tmp_path / "merged.json").write_text(json.dumps(QUICK_MERGED_RECORD), encoding="utf-8")

    report = render_report(tmp_path)

    assert "## merged.json" in report
    assert "| tiny-bert | query_value | 0.990 (0.950-1.050) | 1.200 (1.100-1.300) | 1.000 (0.970-1.020) | 1.5e-08 |" in report
    assert "timings on the process CPU-time clock" in report


def test_merged_inference_quick(tmp_path):
    results = run_quick("merged_inference.py", tmp_path / "merged.json")

    assert_machine_record(results)
    assert len(results["cases"]) == 2
    for case in results["cases"]:
        assert_ratio(case["merged_over_base"])
        assert_ratio(case["copy_over_base"])
        assert case["max_abs_logit_difference_merged_vs_unmerged"] < 1e-4
    assert "| base copy / base |" in render_report(tmp_path)


def test_spectra_quick(tmp_path):
    results = run_quick("spectra.py", tmp_path / "spectra.json")

    assert_machine_record(results)
    assert [case["hidden"] for case in results["factors"]] == [64, 128]
    for case in results["factors"]:
        # Both sides are float64 SVDs of the same update; the dense one also has hidden - rank zeros.
        assert case["max_abs_difference"] < 1e-9 * case["max_singular_value"] + 1e-12
        assert case["max_dense_value_beyond_rank"] < 1e-9 * case["max_singular_value"]
        assert_ratio(case["speedup"])
    model = results["models"][0]
    assert model["adapters"] == 2 * (1 + 3 + TINY_BLOCKS)  # query and value: global, 3 mid, 4 layer each
    assert model["blocks"] == 2 * TINY_BLOCKS
    assert model["max_abs_difference"] < 1e-9
    cadence = results["cadence"]
    assert cadence["spectra_steps"] == 50  # RunSpec's default
    share = cadence["cases"][0]["share_of_training"]
    assert share == pytest.approx(cadence["cases"][0]["snapshot_over_step"]["median"] / 50)

    report = render_report(tmp_path)
    assert "## spectra.json" in report
    assert "| 128 | [8, 4, 2] |" in report


def test_budget_scale_quick(tmp_path):
    results = run_quick("budget_scale.py", tmp_path / "budget.json")

    assert_machine_record(results)
    (case,) = results["cases"]
    # SmolLM2-135M: 30 blocks, q_proj 576 -> 576, v_proj 576 -> 192 (3 key/value heads of 64).
    # Per role, rank units: global 8 + mid 3 * 4 + layer 30 * 2 = 80, times (in + out).
    expected = 80 * (576 + 576) + 80 * (576 + 192)
    assert case["cold"]["budget_total"] == expected
    assert case["budget"]["total"] == expected
    assert case["cold"]["call_s"] > 0
    assert case["cold"]["imports_s"] > 0
    assert case["memory"]["tracemalloc_peak_mib"] > 0
    assert_ratio(case["over_peer"])


@pytest.mark.slow
def test_memory_quick(tmp_path):
    results = run_quick("memory.py", tmp_path / "memory.json")

    assert_machine_record(results)
    (case,) = results["cases"]
    for method in ("floor", "lora", "msplora"):
        assert case["peak_rise_median_mib"][method] > 0
    disk = case["disk_bytes"]
    # Adapters alone in float32: LoRA 8192 weights, MSPLoRA 7168 (see test_train_step_quick), plus headers.
    assert 8192 * 4 < disk["lora"]["adapters_only"] < 8192 * 4 + 16_384
    assert 7168 * 4 < disk["msplora"]["adapters_only"] < 7168 * 4 + 16_384
    assert disk["msplora"]["with_head"] > disk["msplora"]["adapters_only"]


@pytest.mark.slow
def test_engine_overhead_quick(tmp_path):
    results = run_quick("engine_overhead.py", tmp_path / "engine.json")

    assert_machine_record(results)
    assert_ratio(results["engine_over_bare"])
    # 4 steps with logging every 2: two training logs, each with system rows, plus evaluations.
    assert results["store_rows_per_engine_run"]["metrics"] > 4
    # Spectra at the start, at steps 2 and 4 (the last one also at the end).
    assert results["store_rows_per_engine_run"]["spectra"] == 3


@pytest.mark.slow
def test_quality_quick(tmp_path):
    results = run_quick("quality.py", tmp_path / "quality.json")

    assert_machine_record(results)
    assert results["finished"] is True
    (setting,) = results["settings"]
    assert [run["method"] for run in setting["runs"]] == ["MSPLoRA 8/4/2", "LoRA r=8"]
    for run in setting["runs"]:
        assert 0.0 <= run["eval_accuracy"] <= 1.0
        assert 0.0 <= run["dev_accuracy"] <= 1.0
    summary = setting["summary"]
    assert summary["MSPLoRA 8/4/2"]["adapter_params"] < summary["LoRA r=8"]["adapter_params"]

    # The report lists each method's dev accuracy at every rate of the grid, for the first seed.
    dev = {run["method"]: f"{run['dev_accuracy']:.3f}" for run in setting["runs"]}
    report = render_report(tmp_path)
    assert f"| MSPLoRA 8/4/2 | {dev['MSPLoRA 8/4/2']} |" in report
    assert f"| LoRA r=8 | {dev['LoRA r=8']} |" in report


def test_layer_step_quick(tmp_path):
    results = run_quick("layer_step.py", tmp_path / "layer_step.json")

    assert_machine_record(results)
    shapes = [(case["in"], case["out"]) for case in results["layers"]]
    assert shapes == [(64, 64), (64, 128), (128, 64)]
    for case in results["layers"]:
        assert_ratio(case["folded_over_floor"])
        assert_ratio(case["unfolded_over_floor"])
        assert_ratio(case["folded_over_unfolded"])
    for case in results["thin_products"]:
        assert case["rank"] == 8 + 4 + 2
        assert len(case["products"]) == 4
        for product in case["products"].values():
            assert_ratio(product["first_over_last"])
    report = render_report(tmp_path)
    assert "| tiny-bert | 64 -> 128 |" in report
    # Exact-gradient minimum of a 64 -> 128 map at rank 14: 1 + 14 * (64 + 128) / (64 * 128).
    assert "| 1.328 |" in report
