"""Print the Markdown tables of BENCHMARKS.md from the JSON records in bench/results/.

    python bench/report.py                      # every record found
    python bench/report.py train_step spectra   # only these records
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from common import RESULTS_DIR, adapter_gradient_macs, frozen_map_macs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="record names without .json (default: all)")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR, help="folder of the JSON records")
    args = parser.parse_args()

    paths = [args.results / f"{name}.json" for name in args.names] or sorted(args.results.glob("*.json"))
    for path in paths:
        results = json.loads(path.read_text(encoding="utf-8"))
        renderer = RENDERERS.get(results.get("benchmark"))
        if renderer is None:
            continue
        print(f"## {path.name}\n")
        print(machine_line(results))
        print()
        print(renderer(results))
        print()


def machine_line(results: dict[str, Any]) -> str:
    """Describe the machine, date and load of one record in one line."""
    machine = results["machine"]
    load = " ".join(str(value) for value in machine["load_average"])
    end = machine.get("load_average_end")
    ending = f", at the end {' '.join(str(v) for v in end)}" if end else ""
    clock = _primary_clock(results)
    clock_text = f", timings on the {'process CPU-time' if clock == 'cpu' else 'wall'} clock" if clock else ""
    return (
        f"`{results['command']}`: {machine['cpu_model']}, {machine['cpu_count']} cores, "
        f"{machine['torch_threads']} torch thread(s), device {machine['device']}, {machine['date_utc']}, "
        f"commit {machine.get('git_commit')}, load average (1, 5, 15 min) {load}{ending}{clock_text}"
    )


def render_train_step(results: dict[str, Any]) -> str:
    rows = ["| model | targets | MSPLoRA / LoRA | MSPLoRA / floor | LoRA / floor | MSPLoRA / unfolded "
            "| exact-gradient minimum / floor (MSPLoRA, LoRA) | floor matmul share "
            "| step s (floor, LoRA, MSPLoRA, unfolded) | trainable (LoRA, MSPLoRA) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for case in results["cases"]:
        # The record keeps the contenders in train_step.py's order: floor, LoRA, MSPLoRA, unfolded.
        times = ", ".join(f"{_median(case['times'], name):.3f}" for name in case["times"]["cpu"])
        params = f"{case['trainable_params']['lora']:,}, {case['trainable_params']['msplora']:,}"
        minimum = case["exact_gradient_minimum"]
        rows.append(
            f"| {case['model']} | {case['targets']} | {_ratio(case['msplora_over_lora'])} "
            f"| {_ratio(case['msplora_over_floor'])} | {_ratio(case['lora_over_floor'])} "
            f"| {_ratio(case['msplora_over_unfolded'])} "
            f"| {minimum['msplora']:.3f}, {minimum['lora']:.3f} | {case['floor_matmul_share']:.2f} | {times} | {params} |"
        )
    return "\n".join(rows)


def render_memory(results: dict[str, Any]) -> str:
    rows = ["| model | targets | peak rise MiB (floor, LoRA, MSPLoRA, unfolded) | MSPLoRA / LoRA "
            "| disk bytes adapters only (LoRA, MSPLoRA) | with head (LoRA, MSPLoRA) |", "|---|---|---|---|---|---|"]
    for case in results["cases"]:
        peaks = ", ".join(f"{peak:.1f}" for peak in case["peak_rise_median_mib"].values())
        disk = case["disk_bytes"]
        rows.append(
            f"| {case['model']} | {case['targets']} | {peaks} | {case['msplora_over_lora']:.3f} "
            f"| {disk['lora']['adapters_only']:,}, {disk['msplora']['adapters_only']:,} "
            f"| {disk['lora']['with_head']:,}, {disk['msplora']['with_head']:,} |"
        )
    return "\n".join(rows)


def render_merged(results: dict[str, Any]) -> str:
    rows = ["| model | targets | merged / base | unmerged / base | base copy / base "
            "| max abs logit difference (merged vs unmerged) |", "|---|---|---|---|---|---|"]
    for case in results["cases"]:
        rows.append(
            f"| {case['model']} | {case['targets']} | {_ratio(case['merged_over_base'])} "
            f"| {_ratio(case['unmerged_over_base'])} | {_ratio(case['copy_over_base'])} "
            f"| {case['max_abs_logit_difference_merged_vs_unmerged']:.1e} |"
        )
    return "\n".join(rows)


def render_spectra(results: dict[str, Any]) -> str:
    rows = ["| d | ranks | max abs difference | largest singular value | cores s | dense s | speed-up |",
            "|---|---|---|---|---|---|---|"]
    for case in results["factors"]:
        rows.append(
            f"| {case['hidden']} | {case.get('ranks', [8, 4, 2])} | {case['max_abs_difference']:.1e} "
            f"| {case['max_singular_value']:.1f} | {_median(case['times'], 'cores'):.5f} "
            f"| {_median(case['times'], 'dense'):.4f} | {_ratio(case['speedup'], digits=0)} |"
        )
    rows += ["", "| model | adapters + blocks | max abs difference | level_spectra s | dense s | speed-up |",
             "|---|---|---|---|---|---|"]
    for case in results["models"]:
        rows.append(
            f"| {case['model']} (d={case['hidden']}) | {case['adapters']} + {case['blocks']} "
            f"| {case['max_abs_difference']:.1e} | {_median(case['times'], 'level_spectra'):.4f} "
            f"| {_median(case['times'], 'dense'):.3f} | {_ratio(case['speedup'], digits=1)} |"
        )
    cadence = results["cadence"]
    rows += ["", f"Every {cadence['spectra_steps']} steps, batch {cadence['batch_size']} x {cadence['length']} tokens:",
             "", "| model | snapshot s | train step s | snapshot / step | share of training |", "|---|---|---|---|---|"]
    for case in cadence["cases"]:
        rows.append(
            f"| {case['model']} | {_median(case['times'], 'snapshot'):.4f} "
            f"| {_median(case['times'], 'train_step'):.3f} | {_ratio(case['snapshot_over_step'])} "
            f"| {100 * case['share_of_training']:.3f}% |"
        )
    return "\n".join(rows)


def render_budget(results: dict[str, Any]) -> str:
    rows = ["| architecture | targets | cold wall s: total (imports, call) | cold call CPU s | warm CPU s (wall) "
            "| warm / MiniLM-L6 | heap peak MiB | RSS rise MiB | budget total |",
            "|---|---|---|---|---|---|---|---|---|"]
    for case in results["cases"]:
        cold = case["cold"]
        rows.append(
            f"| {case['architecture']} | {case['targets']} | {cold['total_s']:.2f} ({cold['imports_s']:.2f}, "
            f"{cold['call_s']:.3f}) | {cold['cpu_call_s']:.3f} | {case['warm']['median_s']:.3f} "
            f"({case['warm_wall']['median_s']:.3f}) | {_ratio(case['over_peer'])} "
            f"| {case['memory']['tracemalloc_peak_mib']:.1f} | {case['memory']['peak_rss_rise_mib']:.1f} "
            f"| {case['budget']['total']:,} |"
        )
    return "\n".join(rows)


def render_engine(results: dict[str, Any]) -> str:
    times = results["times"]
    return "\n".join([
        "| engine run s | bare run s | engine / bare | engine / bare, wall clock | metric rows | spectra snapshots |",
        "|---|---|---|---|---|---|",
        f"| {_median(times, 'engine'):.1f} | {_median(times, 'bare'):.1f} | {_ratio(results['engine_over_bare'])} "
        f"| {_ratio(results['engine_over_bare_wall'])} "
        f"| {results['store_rows_per_engine_run']['metrics']} | {results['store_rows_per_engine_run']['spectra']} |",
    ])


def render_quality(results: dict[str, Any]) -> str:
    rows = []
    rates = results["protocol"]["learning_rates"]
    first_seed = results["protocol"]["seeds"][0]
    for setting in results["settings"]:
        rows += [f"{setting['model']} on {setting['dataset']}, {setting['max_steps']} steps, rows {setting.get('rows')}, "
                 f"majority baseline {setting.get('majority_baseline', float('nan')):.4f}:", "",
                 "| method | adapter params | trainable | lr | seeds | eval accuracy mean ± std (min-max) |",
                 "|---|---|---|---|---|---|"]
        for label, summary in setting["summary"].items():
            rows.append(
                f"| {label} | {summary['adapter_params']:,} | {summary['trainable_params']:,} "
                f"| {summary['learning_rate']:g} | {len(summary['seeds'])} "
                f"| {summary['eval_accuracy_mean']:.4f} ± {summary['eval_accuracy_std']:.4f} "
                f"({summary['eval_accuracy_min']:.4f}-{summary['eval_accuracy_max']:.4f}) |"
            )
        rows += ["", "| method | dev accuracy at " + ", ".join(f"{rate:g}" for rate in rates) + f" (seed {first_seed}) |",
                 "|---|---|"]
        for label in setting["summary"]:
            dev = {run["learning_rate"]: run["dev_accuracy"] for run in setting["runs"]
                   if run["method"] == label and run["seed"] == first_seed}
            rows.append(f"| {label} | " + ", ".join(f"{dev[rate]:.3f}" if rate in dev else "-" for rate in rates) + " |")
        rows += ["", "| method | lr | seed | dev accuracy | eval accuracy | train s |", "|---|---|---|---|---|---|"]
        for run in setting["runs"]:
            rows.append(
                f"| {run['method']} | {run['learning_rate']:g} | {run['seed']} | {run['dev_accuracy']:.4f} "
                f"| {run['eval_accuracy']:.4f} | {run['train_s']} |"
            )
        rows.append("")
    return "\n".join(rows)


def _primary_clock(results: dict[str, Any]) -> str | None:
    for case in results.get("cases", []) + results.get("factors", []):
        if isinstance(case.get("times"), dict) and "clock" in case["times"]:
            return case["times"]["clock"]
        if "clock" in case:
            return case["clock"]
    return results.get("times", {}).get("clock")


def render_layer_step(results: dict[str, Any]) -> str:
    rows = ["| model | in -> out | folded / floor | unfolded / floor | folded / unfolded "
            "| exact-gradient minimum / floor | ms per pass (floor, folded, unfolded) |", "|---|---|---|---|---|---|---|"]
    rank = sum(results["level_ranks"])
    for case in results["layers"]:
        times = ", ".join(f"{1000 * _median(case['times'], name):.2f}" for name in ("floor", "folded", "unfolded"))
        minimum = 1 + adapter_gradient_macs(rank, case["in"], case["out"]) / frozen_map_macs(case["in"], case["out"])
        rows.append(
            f"| {case['model']} | {case['in']} -> {case['out']} | {_ratio(case['folded_over_floor'])} "
            f"| {_ratio(case['unfolded_over_floor'])} | {_ratio(case['folded_over_unfolded'])} | {minimum:.3f} | {times} |"
        )
    names = list(results["thin_products"][0]["products"]) if results["thin_products"] else []
    rows += ["", "| model | in -> out | " + " | ".join(f"{name}: first / last" for name in names) + " |",
             "|---|---|" + "---|" * len(names)]
    for case in results["thin_products"]:
        ratios = " | ".join(_ratio(case["products"][name]["first_over_last"]) for name in names)
        rows.append(f"| {case['model']} | {case['in']} -> {case['out']} | {ratios} |")
    return "\n".join(rows)


def _median(times: dict[str, Any], name: str) -> float:
    """Median seconds of contender `name` on the record's primary clock."""
    return times[times["clock"]][name]["median_s"]


def _ratio(summary: dict[str, float], digits: int = 3) -> str:
    return f"{summary['median']:.{digits}f} ({summary['min']:.{digits}f}-{summary['max']:.{digits}f})"


RENDERERS = {
    "train_step": render_train_step,
    "layer_step": render_layer_step,
    "memory": render_memory,
    "merged_inference": render_merged,
    "spectra": render_spectra,
    "budget_scale": render_budget,
    "engine_overhead": render_engine,
    "quality": render_quality,
}


if __name__ == "__main__":
    main()
