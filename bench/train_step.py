"""Time one training step of MSPLoRA 8/4/2 against PEFT LoRA r=8 and against the frozen base model.

A step is forward + backward + AdamW step on one batch (32 sequences of 64 tokens by
default) with the classification head trained in full, as the engine trains it. The
floor is the frozen base model's forward + backward with gradients flowing to the
input embeddings (`enable_input_require_grads`): every adapter method pays at least
that, since its gradients have to reach the first adapted block.

Targets: the query and value projections, then every linear map inside the blocks
(attention and MLP). A fourth contender, MSPLoRA with its update never folded into the
weight (`msplora.folded`), shows what the fold saves. The contenders run in
alternation; ratios are medians of per-round ratios.

Beside the timings, each case records the least adapter/floor ratio that any method
computing exact adapter gradients could reach (`exact_gradient_minimum`). Per adapted
map with n input rows and total rank R, those gradients need x A^T and grad_y B in
(n x R) and the two products over the rows that turn them into grad_A and grad_B:
2 n R (in + out) multiply-adds, against the floor's 2 n in out for the map (forward
and input gradient). The minimum adds that work, at the floor's own matmul rate, to
the matmul share of the floor's time (from the PyTorch profiler):

    minimum = 1 + matmul share x (extra multiply-adds / the floor's linear multiply-adds)

    python bench/train_step.py                  # MiniLM-L6 and MPNet-base
    python bench/train_step.py --quick          # a tiny BERT built from a config
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from peft import LoraConfig, get_peft_model
from torch import nn
from torch.profiler import ProfilerActivity, profile
from transformers import BertConfig, BertForSequenceClassification

import common
from msplora import MSPLoRAConfig, get_msplora_model
from msplora.models import default_target_modules, load_model, suggest_target_modules

MODELS = ["minilm-l6", "mpnet-base"]
RANK = 8
ALPHA = 16.0
HEAD = ["classifier"]
CONTENDERS = ("floor", "lora", "msplora", "msplora_unfolded")
MATMUL_OPS = ("aten::mm", "aten::addmm")


def main() -> None:
    parser = common.base_parser(__doc__.splitlines()[0], "train_step.json")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--length", type=int, default=64, help="tokens per sequence")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds per comparison")
    parser.add_argument("--models", nargs="+", default=MODELS, help=f"registry models to run (default: {MODELS})")
    args = parser.parse_args()
    common.setup(args)

    models = ["tiny-bert"] if args.quick else args.models
    batch_size, length = (4, 16) if args.quick else (args.batch_size, args.length)
    repeats = 3 if args.quick else args.repeats

    results: dict[str, Any] = common.new_record(
        "train_step",
        args.device,
        batch_size=batch_size,
        length=length,
        repeats=repeats,
        rank=RANK,
        precision="bf16 autocast" if args.device.startswith("cuda") else "float32",
        cases=[],
    )
    for model_name in models:
        base = load_base(model_name)
        batch = make_batch(base, batch_size, length, args.device)
        for target_set, targets in target_sets(base).items():
            contenders = build_contenders(base, targets, args.device)
            steps = {name: make_step(model, args.device, batch) for name, model in contenders.items()}
            timings = common.time_alternating(steps, device=args.device, repeats=repeats)
            share = matmul_share(steps["floor"], args.device)
            maps = linear_maps(contenders["floor"], batch)
            case = {
                "model": model_name,
                "targets": target_set,
                "target_modules": targets,
                "trainable_params": {name: trainable_count(model) for name, model in contenders.items()},
                "times": timings.summary(),
                "msplora_over_lora": common.paired_ratio(timings.primary, "msplora", "lora"),
                "msplora_over_floor": common.paired_ratio(timings.primary, "msplora", "floor"),
                "lora_over_floor": common.paired_ratio(timings.primary, "lora", "floor"),
                "msplora_over_unfolded": common.paired_ratio(timings.primary, "msplora", "msplora_unfolded"),
                "floor_matmul_share": share,
                "exact_gradient_minimum": {
                    "msplora": exact_gradient_minimum(maps, targets, msplora_config(targets).total_rank, share),
                    "lora": exact_gradient_minimum(maps, targets, RANK, share),
                },
            }
            results["cases"].append(case)
            print(
                f"{model_name} {target_set}: MSPLoRA/LoRA {case['msplora_over_lora']['median']:.3f}, "
                f"MSPLoRA/floor {case['msplora_over_floor']['median']:.3f}, "
                f"LoRA/floor {case['lora_over_floor']['median']:.3f}, "
                f"folded/unfolded {case['msplora_over_unfolded']['median']:.3f}, "
                f"exact-gradient minimum {case['exact_gradient_minimum']['msplora']:.3f}",
                flush=True,
            )
            common.write_results(args.out, results)
            del contenders, steps
    common.mark_end(results, args.device)
    common.write_results(args.out, results)


def load_base(name: str) -> nn.Module:
    """Load a registry model with a two-class head, or build the tiny BERT of the quick version."""
    if name == "tiny-bert":
        config = BertConfig(
            vocab_size=512,
            hidden_size=64,
            num_hidden_layers=4,
            num_attention_heads=4,
            intermediate_size=128,
            num_labels=2,
        )
        return BertForSequenceClassification(config)
    model, _ = load_model(name, "classification", num_labels=2)
    return model


def target_sets(model: nn.Module) -> dict[str, list[str]]:
    """Return the two target sets: query and value, then every linear map inside the blocks."""
    return {"query_value": default_target_modules(model), "all_linear": in_block_linear_paths(model)}


def in_block_linear_paths(model: nn.Module) -> list[str]:
    """Paths of the linear maps inside a block, after the block index ("attention.self.query", ...).

    Last names alone are ambiguous: BERT's "dense" also names the pooler outside the blocks.
    """
    # The suggestions are last names ("query") or, where a last name also occurs outside
    # the blocks, in-block paths ("attention.output.dense"); a map counts if either matches.
    suggested = set(suggest_target_modules(model))
    paths: list[str] = []
    for path, module in model.named_modules():
        parts = path.split(".")
        digits = [i for i, part in enumerate(parts) if part.isdigit()]
        if not isinstance(module, nn.Linear) or not digits:
            continue
        suffix = ".".join(parts[digits[-1] + 1 :])
        if (suffix in suggested or parts[-1] in suggested) and suffix not in paths:
            paths.append(suffix)
    return paths


def make_batch(model: nn.Module, batch_size: int, length: int, device: str) -> dict[str, torch.Tensor]:
    """Build a seeded batch of random token ids with labels; every position is attended."""
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, model.config.vocab_size, (batch_size, length), generator=generator)
    labels = torch.randint(0, 2, (batch_size,), generator=generator)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    return {key: value.to(device) for key, value in batch.items()}


def build_contenders(base: nn.Module, targets: list[str], device: str) -> dict[str, nn.Module]:
    """Copies of `base`: frozen (the floor), with PEFT LoRA r=8, with MSPLoRA 8/4/2, and unfolded MSPLoRA."""
    floor = copy.deepcopy(base).to(device)
    floor.requires_grad_(False)
    floor.enable_input_require_grads()

    lora_config = LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=targets, modules_to_save=HEAD)
    lora = get_peft_model(copy.deepcopy(base), lora_config).to(device)

    msplora = get_msplora_model(copy.deepcopy(base), msplora_config(targets)).to(device)
    unfolded = get_msplora_model(copy.deepcopy(base), msplora_config(targets)).to(device)
    for _, layer in unfolded.msplora_layers():
        layer.fold = False  # ablation: always the two thin matmuls beside the base layer
    return {"floor": floor, "lora": lora, "msplora": msplora, "msplora_unfolded": unfolded}


def msplora_config(targets: list[str]) -> MSPLoRAConfig:
    """MSPLoRA 8/4/2 on `targets`: every map gets global, mid and layer ranks, 14 in all."""
    return MSPLoRAConfig(target_modules=targets, rank=RANK, rank_decay=2.0, mid_groups=3, alpha=ALPHA, modules_to_save=HEAD)


def make_step(model: nn.Module, device: str, batch: dict[str, torch.Tensor]):
    """Return a function that runs one training step of `model` on `batch`.

    With no trainable parameters (the floor) the step is forward + backward only.
    """
    model.train()
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=1e-5) if parameters else None

    def step() -> None:
        with common.autocast(device):
            loss = model(**batch).loss
        loss.backward()
        if optimizer is not None:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    return step


def matmul_share(step: Callable[[], None], device: str) -> float:
    """Return the share of a step's time spent in matmuls (aten::mm, aten::addmm), from the profiler."""
    activities = [ProfilerActivity.CPU]
    # NOTE: the CUDA branch (kernel times from the profiler) has not run on a GPU yet.
    if device.startswith("cuda"):
        activities.append(ProfilerActivity.CUDA)
    step()  # warm-up outside the profile
    with profile(activities=activities) as profiler:
        for _ in range(3):
            step()
        common.synchronize(device)
    events = profiler.key_averages()
    if device.startswith("cuda"):
        # Kernels are the leaves that carry device time; an op's total includes the kernels it launched.
        total = sum(event.self_device_time_total for event in events)
        return sum(event.device_time_total for event in events if event.key in MATMUL_OPS) / total
    total = sum(event.self_cpu_time_total for event in events)
    return sum(event.self_cpu_time_total for event in events if event.key in MATMUL_OPS) / total


def linear_maps(model: nn.Module, batch: dict[str, torch.Tensor]) -> list[tuple[str, int, int, int]]:
    """Run one forward and return (path, input rows, in, out) for every linear map it called."""
    maps: list[tuple[str, int, int, int]] = []
    handles = [
        module.register_forward_hook(
            lambda module, inputs, output, path=path: maps.append(
                (path, inputs[0].numel() // module.in_features, module.in_features, module.out_features)
            )
        )
        for path, module in model.named_modules()
        if isinstance(module, nn.Linear)
    ]
    try:
        with torch.no_grad():
            model(**batch)
    finally:
        for handle in handles:
            handle.remove()
    return maps


def exact_gradient_minimum(maps: list[tuple[str, int, int, int]], targets: list[str], rank: int, share: float) -> float:
    """Return the least step/floor ratio for exact gradients of rank-`rank` adapters on `targets`.

    The formula and its assumption (extra products at the floor's matmul rate) are in the module docstring.
    """
    floor_macs = sum(
        rows * common.frozen_map_macs(in_features, out_features) for _, rows, in_features, out_features in maps
    )
    extra_macs = sum(
        rows * common.adapter_gradient_macs(rank, in_features, out_features)
        for path, rows, in_features, out_features in maps
        if any(path == target or path.endswith("." + target) for target in targets)  # PEFT's matching rule
    )
    return 1.0 + share * extra_macs / floor_macs


def trainable_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


if __name__ == "__main__":
    main()
