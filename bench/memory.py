"""Peak memory of a training step and adapter size on disk: MSPLoRA 8/4/2 against PEFT LoRA r=8.

Memory: each method runs in a fresh subprocess that loads the model, attaches the
adapters, then takes three training steps (as in bench/train_step.py: forward, backward,
AdamW step, head trained in full). The figure is the rise of peak memory over the
memory in use just before the first step: on CPU the peak resident set size (reset
through /proc/self/clear_refs), on CUDA `torch.cuda.max_memory_allocated`. The frozen
base model's forward + backward (the floor) is measured the same way. Methods run in
rotating order, and each figure is the median over the repeats.

Disk: the folder `save_pretrained` writes, with the classification head (as the engine
saves a run) and without it (the adapters alone).

    python bench/memory.py
    python bench/memory.py --quick              # a tiny BERT built from a config
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, get_peft_model

import common
from msplora import MSPLoRAConfig, get_msplora_model
from train_step import ALPHA, CONTENDERS, HEAD, RANK, build_contenders, load_base, make_batch, make_step, target_sets

MODELS = ["minilm-l6", "mpnet-base"]
STEPS = 3


def main() -> None:
    parser = common.base_parser(__doc__.splitlines()[0], "memory.json")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--length", type=int, default=64, help="tokens per sequence")
    parser.add_argument("--repeats", type=int, default=2, help="subprocesses per method")
    parser.add_argument("--models", nargs="+", default=MODELS, help=f"registry models to run (default: {MODELS})")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # internal: METHOD:MODEL:TARGET_SET in a child
    args = parser.parse_args()
    common.setup(args)

    models = ["tiny-bert"] if args.quick else args.models
    batch_size, length = (4, 16) if args.quick else (args.batch_size, args.length)
    if args.child:
        method, model_name, target_set = args.child.split(":")
        print(json.dumps(measure_step(method, model_name, target_set, batch_size, length, args.device)))
        return
    repeats = 1 if args.quick else args.repeats

    results: dict[str, Any] = common.new_record(
        "memory",
        args.device,
        batch_size=batch_size,
        length=length,
        steps=STEPS,
        repeats=repeats,
        cases=[],
    )
    for model_name in models:
        base = load_base(model_name)
        sets = target_sets(base)
        if args.quick:
            sets = {"query_value": sets["query_value"]}
        for target_set, targets in sets.items():
            peaks = step_peaks(model_name, target_set, args, repeats)
            medians = {method: statistics.median(values) for method, values in peaks.items()}
            case = {
                "model": model_name,
                "targets": target_set,
                "peak_rise_mib": peaks,
                "peak_rise_median_mib": medians,
                "msplora_over_lora": medians["msplora"] / medians["lora"],
                "disk_bytes": disk_sizes(base, targets),
            }
            disk = case["disk_bytes"]
            case["disk_msplora_over_lora"] = {
                kind: disk["msplora"][kind] / disk["lora"][kind] for kind in ("with_head", "adapters_only")
            }
            results["cases"].append(case)
            print(
                f"{model_name} {target_set}: peak rise MiB {medians}, MSPLoRA/LoRA {case['msplora_over_lora']:.3f}; "
                f"disk (adapters only) MSPLoRA/LoRA {case['disk_msplora_over_lora']['adapters_only']:.3f}",
                flush=True,
            )
            common.write_results(args.out, results)
    common.mark_end(results, args.device)
    common.write_results(args.out, results)


def step_peaks(model_name: str, target_set: str, args: Any, repeats: int) -> dict[str, list[float]]:
    """Run each method `repeats` times, each in a fresh subprocess, in rotating order."""
    peaks: dict[str, list[float]] = {method: [] for method in CONTENDERS}
    for round_index in range(repeats):
        shift = round_index % len(CONTENDERS)
        for method in CONTENDERS[shift:] + CONTENDERS[:shift]:
            command = [sys.executable, __file__, "--child", f"{method}:{model_name}:{target_set}",
                       "--device", args.device, "--threads", str(args.threads),
                       "--batch-size", str(args.batch_size), "--length", str(args.length)]
            if args.quick:
                command.append("--quick")
            output = subprocess.run(command, capture_output=True, text=True, check=True, cwd=common.REPO_ROOT)
            peaks[method].append(json.loads(output.stdout.strip().splitlines()[-1])["peak_rise_mib"])
    return peaks


def measure_step(method: str, model_name: str, target_set: str, batch_size: int, length: int,
                 device: str) -> dict[str, Any]:
    """Build one contender, then return the peak memory rise over `STEPS` training steps, in MiB."""
    base = load_base(model_name)
    targets = target_sets(base)[target_set]
    model = build_contenders(base, targets, device)[method]
    del base
    batch = make_batch(model, batch_size, length, device)
    step = make_step(model, device, batch)
    gc.collect()

    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        for _ in range(STEPS):
            step()
        torch.cuda.synchronize(device)
        return {"peak_rise_mib": (torch.cuda.max_memory_allocated(device) - before) / 2**20, "source": "cuda"}

    rise = common.peak_rss_tracker()
    for _ in range(STEPS):
        step()
    return {"peak_rise_mib": rise(), "source": "VmHWM" if rise.reset_worked else "ru_maxrss"}


def disk_sizes(base: torch.nn.Module, targets: list[str]) -> dict[str, dict[str, int]]:
    """Bytes that `save_pretrained` writes for each method, with and without the classification head."""
    sizes: dict[str, dict[str, int]] = {"lora": {}, "msplora": {}}
    for kind, head in (("with_head", HEAD), ("adapters_only", None)):
        lora = get_peft_model(copy.deepcopy(base), LoraConfig(r=RANK, lora_alpha=ALPHA, target_modules=targets,
                                                               modules_to_save=head))
        msplora = get_msplora_model(copy.deepcopy(base), MSPLoRAConfig(target_modules=targets, rank=RANK,
                                                                       alpha=ALPHA, modules_to_save=head))
        for name, model in (("lora", lora), ("msplora", msplora)):
            with tempfile.TemporaryDirectory(prefix="msplora-bench-") as folder:
                model.save_pretrained(folder)
                sizes[name][kind] = sum(path.stat().st_size for path in Path(folder).rglob("*") if path.is_file())
    return sizes


if __name__ == "__main__":
    main()
