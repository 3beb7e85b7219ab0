"""Time and memory of `msplora.budget_from_config` for Llama-2-7B and Llama-2-70B, with no weights.

Two cases per architecture and target set:

- cold: a fresh Python process imports msplora and the presets, then makes its first
  call. The time covers imports and call; the imports' own share is reported too.
  Wall-clock and CPU times are both recorded; the target is checked on CPU time.
- warm: the same call repeated in one process; median time, and the peak memory of one
  call measured apart from the timing (Python heap peak by tracemalloc, and the rise of
  the process's peak resident memory).

Each warm figure is set beside MiniLM-L6's (6 blocks) measured in the same rounds,
since the meta-device build should cost little more for 80 blocks than for 6.

    python bench/budget_scale.py
    python bench/budget_scale.py --quick        # SmolLM2-135M's query and value only
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
import tracemalloc
from typing import Any

import common

ARCHITECTURES = ["llama-2-7b", "llama-2-70b"]
QUICK_ARCHITECTURES = ["smollm2-135m"]
PEER = "minilm-l6"
TARGET_SETS = {
    "query_value": {"llama": ["q_proj", "v_proj"], "bert": ["query", "value"]},
    "all_linear": {
        "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        "bert": ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
                 "intermediate.dense", "output.dense"],
    },
}
TARGET_SECONDS_70B = 0.5
TARGET_MIB_70B = 50.0


def main() -> None:
    parser = common.base_parser(__doc__.splitlines()[0], "budget_scale.json")
    parser.add_argument("--repeats", type=int, default=9, help="warm calls timed per case")
    parser.add_argument("--cold-call", help=argparse.SUPPRESS)  # internal: ARCHITECTURE:TARGET_SET in a child
    args = parser.parse_args()
    if args.cold_call:
        architecture, target_set = args.cold_call.split(":")
        print(json.dumps(cold_call(architecture, target_set)))
        return
    common.setup(args)

    architectures = QUICK_ARCHITECTURES if args.quick else ARCHITECTURES
    repeats = 2 if args.quick else args.repeats
    results: dict[str, Any] = common.new_record(
        "budget_scale",
        "cpu",
        repeats=repeats,
        targets={"70b_seconds": TARGET_SECONDS_70B, "70b_extra_mib": TARGET_MIB_70B},
        cases=[],
    )
    target_sets = ["query_value"] if args.quick else list(TARGET_SETS)
    for architecture in architectures:
        for target_set in target_sets:
            case = {
                "architecture": architecture,
                "targets": target_set,
                "cold": run_cold_call(architecture, target_set),
                **warm_calls(architecture, target_set, repeats),
            }
            if architecture == "llama-2-70b":
                case["meets_target"] = (
                    case["warm"]["median_s"] < TARGET_SECONDS_70B
                    and case["cold"]["cpu_call_s"] < TARGET_SECONDS_70B
                    and case["memory"]["tracemalloc_peak_mib"] < TARGET_MIB_70B
                    and case["memory"]["peak_rss_rise_mib"] < TARGET_MIB_70B
                )
            results["cases"].append(case)
            print(
                f"{architecture} {target_set}: cold {case['cold']['total_s']:.2f} s "
                f"(call {case['cold']['call_s']:.3f} s, CPU {case['cold']['cpu_call_s']:.3f} s), "
                f"warm CPU {case['warm']['median_s']:.3f} s, "
                f"heap peak {case['memory']['tracemalloc_peak_mib']:.1f} MiB, "
                f"RSS rise {case['memory']['peak_rss_rise_mib']:.1f} MiB",
                flush=True,
            )
    common.mark_end(results, "cpu")
    common.write_results(args.out, results)


def cold_call(architecture: str, target_set: str) -> dict[str, Any]:
    """Import msplora and make the first budget call in this (fresh) process; return the times."""
    started, cpu_started = time.perf_counter(), time.process_time()
    from msplora import MSPLoRAConfig, budget_from_config
    from msplora.presets import preset_config

    imported, cpu_imported = time.perf_counter(), time.process_time()
    hf_config = preset_config(architecture)
    config = MSPLoRAConfig(target_modules=targets_for(hf_config.model_type, target_set))
    budget = budget_from_config(hf_config, config)
    finished, cpu_finished = time.perf_counter(), time.process_time()
    return {
        "total_s": finished - started,
        "imports_s": imported - started,
        "call_s": finished - imported,
        "cpu_total_s": cpu_finished - cpu_started,
        "cpu_imports_s": cpu_imported - cpu_started,
        "cpu_call_s": cpu_finished - cpu_imported,
        "budget_total": budget.total,
        "peak_rss_mib": common.process_peak_rss_mib(),
    }


def run_cold_call(architecture: str, target_set: str) -> dict[str, Any]:
    """Run `cold_call` in a fresh interpreter, so nothing is imported or cached beforehand."""
    command = [sys.executable, __file__, "--cold-call", f"{architecture}:{target_set}"]
    output = subprocess.run(command, capture_output=True, text=True, check=True, cwd=common.REPO_ROOT).stdout
    return json.loads(output.strip().splitlines()[-1])


def warm_calls(architecture: str, target_set: str, repeats: int) -> dict[str, Any]:
    """Time repeated calls beside MiniLM-L6's, then measure one call's peak memory."""
    from msplora import MSPLoRAConfig, budget_from_config
    from msplora.presets import preset_config

    def call_for(name: str):
        hf_config = preset_config(name)
        config = MSPLoRAConfig(target_modules=targets_for(hf_config.model_type, target_set))
        return lambda: budget_from_config(hf_config, config)

    call = call_for(architecture)
    timings = common.time_alternating({"case": call, "peer": call_for(PEER)}, device="cpu", repeats=repeats)

    gc.collect()
    rss_rise = common.peak_rss_tracker()
    tracemalloc.start()
    budget = call()
    _, heap_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "budget": budget.to_dict(),
        "warm": common.summarise_times(timings.primary["case"]),
        "warm_wall": common.summarise_times(timings.wall["case"]),
        "peer_warm": {"architecture": PEER, **common.summarise_times(timings.primary["peer"])},
        "over_peer": common.paired_ratio(timings.primary, "case", "peer"),
        "clock": timings.clock,
        "memory": {
            "tracemalloc_peak_mib": heap_peak / 2**20,
            "peak_rss_rise_mib": rss_rise(),
            "peak_rss_reset_worked": rss_rise.reset_worked,
        },
    }


def targets_for(model_type: str, target_set: str) -> list[str]:
    family = "bert" if model_type == "bert" else "llama"
    return TARGET_SETS[target_set][family]


if __name__ == "__main__":
    main()
