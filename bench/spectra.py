"""Per-level singular values from r x r cores against a dense SVD of each d x d update.

Three measurements:

1. Factors alone: a pyramid's three levels (ranks 8, 4, 2, scaling alpha / r) on a
   d x d map, for d = 384, 768 and 4096. `msplora.spectrum_of_factors` against
   `torch.linalg.svdvals` of the dense update s * B @ A, both in float64: the largest
   absolute difference of the singular values, and the speed-up.
2. Whole models: `model.level_spectra()` on MSPLoRA 8/4/2 (query, value) over
   MiniLM-L6 (d = 384) and MPNet-base (d = 768), against dense SVDs of every
   adapter's update and every block's combined update (what `level_spectra` reports).
3. Cost in training: `level_spectra().to_dict()` once per `RunSpec().spectra_steps`
   training steps (the engine's default cadence), as a share of the training time,
   with the training step at the engine's default batch size.

    python bench/spectra.py
    python bench/spectra.py --quick         # d = 64 and 128, a tiny BERT
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

import common
from msplora import MSPLoRAConfig, get_msplora_model, spectrum_of_factors
from msplora.engine import RunSpec
from train_step import load_base, make_batch, make_step

HIDDEN_SIZES = [384, 768, 4096]
QUICK_HIDDEN_SIZES = [64, 128]
LEVEL_RANKS = (8, 4, 2)
ALPHA = 16.0
MODELS = ["minilm-l6", "mpnet-base"]
TARGET_SPEEDUP = {768: 50.0, 4096: 1000.0}
TARGET_SHARE = 0.01
LENGTH = 64


def main() -> None:
    parser = common.base_parser(__doc__.splitlines()[0], "spectra.json")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per comparison (2 at d = 4096)")
    parser.add_argument("--cadence-repeats", type=int, default=3, help="timed rounds of snapshot against step")
    args = parser.parse_args()
    common.setup(args)

    hidden_sizes = QUICK_HIDDEN_SIZES if args.quick else HIDDEN_SIZES
    models = ["tiny-bert"] if args.quick else MODELS
    repeats = 2 if args.quick else args.repeats
    spectra_steps = RunSpec().spectra_steps
    batch_size = RunSpec().batch_size

    results: dict[str, Any] = common.new_record(
        "spectra",
        args.device,
        level_ranks=LEVEL_RANKS,
        precision="float64 for both methods",
        factors=[],
        models=[],
        cadence={"spectra_steps": spectra_steps, "batch_size": batch_size, "length": LENGTH, "cases": []},
    )
    for hidden in hidden_sizes:
        case = compare_factors(hidden, repeats=min(repeats, 2) if hidden >= 4096 else repeats)
        results["factors"].append(case)
        print(
            f"d={hidden}: max |difference| {case['max_abs_difference']:.2e}, speed-up {case['speedup']['median']:.1f}x",
            flush=True,
        )
        common.write_results(args.out, results)

    for model_name in models:
        base = load_base(model_name)
        model = build_msplora(base)
        case = compare_model(model_name, model, repeats)
        results["models"].append(case)
        print(
            f"{model_name}: level_spectra max |difference| {case['max_abs_difference']:.2e}, "
            f"speed-up {case['speedup']['median']:.1f}x",
            flush=True,
        )
        cost = cadence_cost(model_name, model, base, batch_size, spectra_steps, args.device,
                            min(repeats, args.cadence_repeats))
        results["cadence"]["cases"].append(cost)
        print(f"{model_name}: spectra cost {100 * cost['share_of_training']:.3f}% of training time", flush=True)
        common.write_results(args.out, results)

    common.mark_end(results, args.device)
    common.write_results(args.out, results)


def compare_factors(hidden: int, repeats: int) -> dict[str, Any]:
    """Spectra of a three-level pyramid on a hidden x hidden map, from cores and from dense SVDs.

    From d = 4096 on, only the global level (rank 8) is compared: one float64 dense SVD
    of that size takes tens of seconds on one CPU core.
    """
    generator = torch.Generator().manual_seed(hidden)
    ranks = LEVEL_RANKS[:1] if hidden >= 4096 else LEVEL_RANKS
    factors = [
        (
            torch.randn(rank, hidden, generator=generator, dtype=torch.float64),
            torch.randn(hidden, rank, generator=generator, dtype=torch.float64),
            ALPHA / rank,
        )
        for rank in ranks
    ]

    def from_cores() -> list[torch.Tensor]:
        return [spectrum_of_factors(lora_A, lora_B, scaling) for lora_A, lora_B, scaling in factors]

    def from_dense() -> list[torch.Tensor]:
        return [torch.linalg.svdvals(scaling * lora_B @ lora_A) for lora_A, lora_B, scaling in factors]

    dense_values = from_dense()
    difference, tail = _max_differences(from_cores(), dense_values)
    timings = common.time_alternating(
        {"cores": from_cores, "dense": from_dense}, device="cpu", repeats=repeats, warmup=0 if hidden >= 4096 else 1
    )
    case = {
        "hidden": hidden,
        "ranks": list(ranks),
        "max_abs_difference": difference,
        "max_dense_value_beyond_rank": tail,
        "max_singular_value": max(float(values[0]) for values in dense_values),
        "times": timings.summary(),
        "speedup": common.paired_ratio(timings.primary, "dense", "cores"),
    }
    if hidden in TARGET_SPEEDUP:
        case["target_speedup"] = TARGET_SPEEDUP[hidden]
        case["meets_target"] = case["speedup"]["median"] >= TARGET_SPEEDUP[hidden]
    return case


def build_msplora(base: nn.Module) -> nn.Module:
    """MSPLoRA 8/4/2 on the query and value maps of a copy of `base`, with seeded random lora_B."""
    targets = ["q", "v"] if base.config.model_type == "mpnet" else ["query", "value"]
    config = MSPLoRAConfig(target_modules=targets, rank=8, rank_decay=2.0, mid_groups=3, alpha=ALPHA,
                           modules_to_save=["classifier"])
    model = get_msplora_model(copy.deepcopy(base), config)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for adapter in model.adapters.values():
            adapter.lora_B.copy_(0.01 * torch.randn(adapter.lora_B.shape, generator=generator))
    return model


def compare_model(name: str, model: nn.Module, repeats: int) -> dict[str, Any]:
    """`model.level_spectra()` against dense SVDs of every adapter's and every block's update."""
    records = model.layout()
    layers = dict(model.msplora_layers())

    def dense() -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        adapters = [torch.linalg.svdvals(_dense_update([model.adapters[r.key]])) for r in records]
        blocks = [torch.linalg.svdvals(_dense_update(layer.adapters)) for layer in layers.values()]
        return adapters, blocks

    spectra = model.level_spectra()
    dense_adapters, dense_blocks = dense()
    core_adapters = [torch.tensor(a.singular_values, dtype=torch.float64) for a in spectra.adapters]
    core_blocks = [torch.tensor(b.singular_values, dtype=torch.float64) for b in spectra.blocks]
    difference, tail = _max_differences(core_adapters + core_blocks, dense_adapters + dense_blocks)

    timings = common.time_alternating({"level_spectra": model.level_spectra, "dense": dense}, device="cpu",
                                      repeats=repeats, warmup=1)
    return {
        "model": name,
        "hidden": model.base_model.config.hidden_size,
        "adapters": len(records),
        "blocks": len(layers),
        "max_abs_difference": difference,
        "max_dense_value_beyond_rank": tail,
        "times": timings.summary(),
        "speedup": common.paired_ratio(timings.primary, "dense", "level_spectra"),
    }


def cadence_cost(
    name: str, model: nn.Module, base: nn.Module, batch_size: int, spectra_steps: int, device: str, repeats: int
) -> dict[str, Any]:
    """Time of one spectra snapshot over the time of `spectra_steps` training steps."""
    model = model.to(device)
    batch = make_batch(base, batch_size, LENGTH, device)
    contenders = {"snapshot": lambda: model.level_spectra().to_dict(), "train_step": make_step(model, device, batch)}
    timings = common.time_alternating(contenders, device=device, repeats=repeats, warmup=1)
    per_step = common.paired_ratio(timings.primary, "snapshot", "train_step")
    return {
        "model": name,
        "times": timings.summary(),
        "snapshot_over_step": per_step,
        "share_of_training": per_step["median"] / spectra_steps,
        "target_share": TARGET_SHARE,
        "meets_target": per_step["median"] / spectra_steps <= TARGET_SHARE,
    }


@torch.no_grad()
def _dense_update(adapters) -> torch.Tensor:
    """Sum s * B @ A over `adapters` in float64, shape (out, in)."""
    return sum(a.scaling * a.lora_B.double() @ a.lora_A.double() for a in adapters)


def _max_differences(cores: list[torch.Tensor], dense: list[torch.Tensor]) -> tuple[float, float]:
    """Largest |core - dense| over the leading singular values, and the largest dense value past the rank."""
    difference = 0.0
    tail = 0.0
    for core_values, dense_values in zip(cores, dense):
        rank = core_values.numel()
        difference = max(difference, float((core_values - dense_values[:rank]).abs().max()))
        if dense_values.numel() > rank:
            tail = max(tail, float(dense_values[rank:].abs().max()))
    return difference, tail


if __name__ == "__main__":
    main()
