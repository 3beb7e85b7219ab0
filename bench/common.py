"""Shared parts of the benchmark scripts: arguments, machine record, paired timing, JSON output.

Every figure in BENCHMARKS.md is a ratio against a peer measured in the same run.
`time_alternating` runs the contenders in turn (warm-up first, then rounds whose
order rotates), so slow drift of a shared machine hits every contender alike, and
the ratio reported is the median of the per-round ratios.

On CPU the primary clock is the process's CPU time (`time.process_time`, all its
threads), because on a machine shared with other work the wall-clock time of a
step also counts the time the process waited for a core. Wall-clock times are
recorded beside it. On CUDA the primary clock is the wall clock, after a
synchronize.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO_ROOT = Path(__file__).resolve().parent.parent


def base_parser(description: str, default_out: str) -> argparse.ArgumentParser:
    """Build a parser with the options every benchmark script shares."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="device to run on (default: cuda if available, else cpu)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke version: tiny sizes, few repeats, no targets")
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS_DIR / default_out,
        help=f"path of the JSON results (default: bench/results/{default_out})",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads on CPU (default: 1, so a shared machine disturbs the timings less)",
    )
    return parser


def setup(args: argparse.Namespace) -> None:
    """Apply the thread count, seed the random generators and quiet the libraries' logs."""
    import transformers

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    logging.basicConfig(level=logging.WARNING)
    transformers.logging.set_verbosity_error()


def new_record(benchmark: str, device: str, **fields: Any) -> dict[str, Any]:
    """Start a results record: the benchmark's name, the command, the machine now, then `fields`."""
    return {"benchmark": benchmark, "command": command_line(), "machine": machine_info(device), **fields}


def mark_end(results: dict[str, Any], device: str) -> None:
    """Record the load average at the end of the run beside the one at the start."""
    results["machine"]["load_average_end"] = machine_info(device)["load_average"]


def machine_info(device: str) -> dict[str, Any]:
    """Describe the machine and its load at this moment, for the record beside each figure."""
    info: dict[str, Any] = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": device,
        "git_commit": _git_commit(),
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def synchronize(device: str) -> None:
    """Wait for queued CUDA work, so a wall-clock time covers it; a no-op on CPU."""
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def autocast(device: str) -> contextlib.AbstractContextManager:
    """Return bf16 autocast on CUDA, and a no-op context (float32) on CPU."""
    if device.startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@dataclass
class Timings:
    """Samples of each contender in seconds per call, in round order, on two clocks.

    Attributes:
        clock: the primary clock, "cpu" (process CPU time) on CPU, "wall" on CUDA.
        wall: contender name -> wall-clock samples.
        cpu: contender name -> process CPU-time samples.
    """

    clock: str
    wall: dict[str, list[float]]
    cpu: dict[str, list[float]]

    @property
    def primary(self) -> dict[str, list[float]]:
        """The samples of the primary clock, which the reported ratios use."""
        return self.cpu if self.clock == "cpu" else self.wall

    def summary(self) -> dict[str, Any]:
        """Summarise each contender on both clocks, naming the primary clock."""
        return {
            "clock": self.clock,
            "cpu": {name: summarise_times(values) for name, values in self.cpu.items()},
            "wall": {name: summarise_times(values) for name, values in self.wall.items()},
        }


def time_alternating(
    contenders: dict[str, Callable[[], Any]],
    *,
    device: str,
    repeats: int,
    warmup: int = 2,
    calls: int = 1,
) -> Timings:
    """Time each contender `repeats` times, one of each per round, after `warmup` untimed rounds.

    Each sample is the mean seconds per call over `calls` back-to-back calls. The
    order within a round rotates, so no contender always runs first after another.
    """
    names = list(contenders)
    for _ in range(warmup):
        for name in names:
            contenders[name]()
    synchronize(device)

    timings = Timings(
        clock="wall" if device.startswith("cuda") else "cpu",
        wall={name: [] for name in names},
        cpu={name: [] for name in names},
    )
    for round_index in range(repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            function = contenders[name]
            synchronize(device)
            wall_started, cpu_started = time.perf_counter(), time.process_time()
            for _ in range(calls):
                function()
            synchronize(device)
            timings.wall[name].append((time.perf_counter() - wall_started) / calls)
            timings.cpu[name].append((time.process_time() - cpu_started) / calls)
    return timings


def paired_ratio(samples: dict[str, list[float]], numerator: str, denominator: str) -> dict[str, float]:
    """Summarise numerator / denominator: median of per-round ratios, their range, and the medians' ratio."""
    ratios = [a / b for a, b in zip(samples[numerator], samples[denominator])]
    return {
        "median": statistics.median(ratios),
        "min": min(ratios),
        "max": max(ratios),
        "ratio_of_medians": statistics.median(samples[numerator]) / statistics.median(samples[denominator]),
    }


def frozen_map_macs(in_features: int, out_features: int) -> int:
    """Return the multiply-adds per input row of a frozen linear map's forward and input gradient."""
    return 2 * in_features * out_features


def adapter_gradient_macs(rank: int, in_features: int, out_features: int) -> int:
    """Return the multiply-adds per input row that exact gradients of a rank-`rank` adapter add.

    The four products are x A^T, grad_y B, and the two over the rows that give grad_A and grad_B.
    """
    return 2 * rank * (in_features + out_features)


def summarise_times(samples: list[float]) -> dict[str, float]:
    """Summarise timings in seconds: median, minimum, maximum and count."""
    return {"median_s": statistics.median(samples), "min_s": min(samples), "max_s": max(samples), "n": len(samples)}


def write_results(path: Path, results: dict[str, Any]) -> None:
    """Write `results` as indented JSON, creating the folder, and name the file on stdout."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, default=_json_default) + "\n", encoding="utf-8")
    print(f"wrote {path}")


def command_line() -> str:
    """Return the command that started this script, relative to the repository root where possible."""
    script = Path(sys.argv[0]).resolve()
    with contextlib.suppress(ValueError):
        script = script.relative_to(REPO_ROOT)
    return " ".join(["python", str(script), *sys.argv[1:]])


def process_peak_rss_mib() -> float:
    """Return this process's lifetime peak resident memory (ru_maxrss) in MiB."""
    return _ru_maxrss_kib() / 1024


def peak_rss_tracker() -> Callable[[], float]:
    """Start measuring peak resident memory; the returned function gives the peak rise in MiB since now.

    On Linux, writing 5 to /proc/self/clear_refs resets the kernel's peak RSS (VmHWM),
    so the peak counts only what happens after this call. Where that is not allowed,
    the process's lifetime peak (ru_maxrss) is used, which hides a rise that stays
    below an earlier peak; the returned function's `reset_worked` is then False.
    """
    baseline = _status_kib("VmRSS")
    reset = _reset_peak_rss()

    def peak_rise_mib() -> float:
        peak = _status_kib("VmHWM") if reset else _ru_maxrss_kib()
        return max(peak - baseline, 0) / 1024

    peak_rise_mib.reset_worked = reset  # type: ignore[attr-defined]
    return peak_rise_mib


# Private helpers


def _cpu_model() -> str:
    try:
        output = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    for line in output.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def _git_commit() -> str | None:
    try:
        output = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True, cwd=REPO_ROOT
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return output.stdout.strip()


def _status_kib(field: str) -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return _ru_maxrss_kib()


def _ru_maxrss_kib() -> int:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS, KiB on Linux


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, torch.dtype):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
