"""Time inference of a merged MSPLoRA model against the untouched base model.

After `merge_and_unload()` the adapted layers are plain linear maps again, so the
merged model should cost what the base model costs. The adapters get random
non-zero lora_B first, so the merge really changes the weights; the outputs are
checked against the unmerged model's. The unmerged MSPLoRA model is timed too,
for reference, and so is a deep copy of the base model: the copy runs the very same
computation, so its ratio to the base shows how far two identical models differ in
time on this machine.

    python bench/merged_inference.py            # MiniLM-L6 and MPNet-base, query+value and all linears
    python bench/merged_inference.py --quick    # a tiny BERT built from a config
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

import common
from msplora import MSPLoRAConfig, get_msplora_model
from train_step import load_base, make_batch, target_sets

MODELS = ["minilm-l6", "mpnet-base"]
TARGET = 1.01


def main() -> None:
    parser = common.base_parser(__doc__.splitlines()[0], "merged_inference.json")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--length", type=int, default=64, help="tokens per sequence")
    parser.add_argument("--repeats", type=int, default=9, help="timed rounds per comparison")
    parser.add_argument("--calls", type=int, default=3, help="forward passes per timed sample")
    parser.add_argument("--models", nargs="+", default=MODELS, help=f"registry models to run (default: {MODELS})")
    args = parser.parse_args()
    common.setup(args)

    models = ["tiny-bert"] if args.quick else args.models
    batch_size, length = (4, 16) if args.quick else (args.batch_size, args.length)
    repeats = 3 if args.quick else args.repeats

    results: dict[str, Any] = common.new_record(
        "merged_inference",
        args.device,
        batch_size=batch_size,
        length=length,
        repeats=repeats,
        calls_per_sample=args.calls,
        target=f"merged / base <= {TARGET}",
        cases=[],
    )
    for model_name in models:
        base = load_base(model_name).to(args.device).eval()
        batch = make_batch(base, batch_size, length, args.device)
        batch.pop("labels")
        for target_set, targets in target_sets(base).items():
            unmerged = build_trained_msplora(base, targets).to(args.device).eval()
            merged = copy.deepcopy(unmerged).merge_and_unload().eval()
            max_difference = output_difference(unmerged, merged, batch, args.device)
            base_copy = copy.deepcopy(base).eval()

            contenders = {
                "base": forward_function(base, batch, args.device),
                "merged": forward_function(merged, batch, args.device),
                "unmerged": forward_function(unmerged, batch, args.device),
                "base_copy": forward_function(base_copy, batch, args.device),
            }
            timings = common.time_alternating(contenders, device=args.device, repeats=repeats, calls=args.calls)
            case = {
                "model": model_name,
                "targets": target_set,
                "max_abs_logit_difference_merged_vs_unmerged": max_difference,
                "times": timings.summary(),
                "merged_over_base": common.paired_ratio(timings.primary, "merged", "base"),
                "unmerged_over_base": common.paired_ratio(timings.primary, "unmerged", "base"),
                "copy_over_base": common.paired_ratio(timings.primary, "base_copy", "base"),
            }
            case["meets_target"] = case["merged_over_base"]["median"] <= TARGET
            results["cases"].append(case)
            print(
                f"{model_name} {target_set}: merged/base {case['merged_over_base']['median']:.3f}, "
                f"unmerged/base {case['unmerged_over_base']['median']:.3f}, "
                f"copy/base {case['copy_over_base']['median']:.3f}, max |logit diff| {max_difference:.2e}",
                flush=True,
            )
            common.write_results(args.out, results)
    common.mark_end(results, args.device)
    common.write_results(args.out, results)


def build_trained_msplora(base: nn.Module, targets: list[str]) -> nn.Module:
    """MSPLoRA 8/4/2 on a copy of `base`, with seeded random lora_B so the update is non-zero."""
    config = MSPLoRAConfig(target_modules=targets, rank=8, rank_decay=2.0, mid_groups=3, alpha=16.0)
    model = get_msplora_model(copy.deepcopy(base).cpu(), config)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for adapter in model.adapters.values():
            adapter.lora_B.copy_(0.01 * torch.randn(adapter.lora_B.shape, generator=generator))
    return model


def output_difference(unmerged: nn.Module, merged: nn.Module, batch: dict, device: str) -> float:
    """Max absolute difference between the two models' logits on `batch`."""
    with torch.inference_mode(), common.autocast(device):
        first = unmerged(**batch).logits.float()
        second = merged(**batch).logits.float()
    return float((first - second).abs().max())


def forward_function(model: nn.Module, batch: dict, device: str):
    """Return a function that runs one inference forward pass of `model` on `batch`."""

    def forward() -> None:
        with torch.inference_mode(), common.autocast(device):
            model(**batch)

    return forward


if __name__ == "__main__":
    main()
