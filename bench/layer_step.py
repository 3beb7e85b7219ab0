"""Time one adapted linear map, forward + backward, folded and unfolded, against the frozen map alone.

This is the layer-level view of `bench/train_step.py`: where the time of a MSPLoRA
training step goes beyond the frozen base model's. Two measurements:

1. Layer step: one `MSPLoRALinear` with ranks 8 + 4 + 2 on the map shapes of
   MiniLM-L6 (384 -> 384, 384 -> 1536, 1536 -> 384) and MPNet-base (768 -> 768,
   768 -> 3072, 3072 -> 768), run forward and backward on 32 x 64 rows, with
   gradients to the input and to the A and B matrices. Contenders: the frozen map alone (the floor, gradient to the input
   only), the layer with its update folded into the weight (`msplora.folded`), and
   the same layer always unfolded (two thin matmuls beside the base layer).
2. Thin products: the four thin products an adapter's backward needs, each written
   with the thin side (R = 14 rows or columns) last and first, on the same shapes.
   `msplora.folded` writes all four with the thin side first.

    python bench/layer_step.py
    python bench/layer_step.py --quick      # 64 x 64 and 64 -> 128 maps, 256 rows
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

import common
from msplora.layers import LowRankAdapter, MSPLoRALinear

LEVEL_RANKS = (8, 4, 2)
ALPHA = 16.0
SHAPES = {  # model -> (in, out) of its distinct maps inside a block
    "minilm-l6": [(384, 384), (384, 1536), (1536, 384)],
    "mpnet-base": [(768, 768), (768, 3072), (3072, 768)],
}
QUICK_SHAPES = {"tiny-bert": [(64, 64), (64, 128), (128, 64)]}


def main() -> None:
    parser = common.base_parser(__doc__.splitlines()[0], "layer_step.json")
    parser.add_argument("--rows", type=int, default=32 * 64, help="input rows (batch x tokens)")
    parser.add_argument("--repeats", type=int, default=9, help="timed rounds per comparison")
    parser.add_argument("--calls", type=int, default=10, help="passes per timed sample")
    args = parser.parse_args()
    common.setup(args)

    shapes = QUICK_SHAPES if args.quick else SHAPES
    rows = 256 if args.quick else args.rows
    repeats = 3 if args.quick else args.repeats
    calls = 2 if args.quick else args.calls

    results: dict[str, Any] = common.new_record(
        "layer_step",
        args.device,
        rows=rows,
        level_ranks=LEVEL_RANKS,
        repeats=repeats,
        calls_per_sample=calls,
        precision="float32",
        layers=[],
        thin_products=[],
    )
    for model_name, model_shapes in shapes.items():
        for in_features, out_features in model_shapes:
            layer_case = time_layer(in_features, out_features, rows, args.device, repeats, calls)
            results["layers"].append({"model": model_name, **layer_case})
            products_case = time_thin_products(in_features, out_features, rows, args.device, repeats, calls)
            results["thin_products"].append({"model": model_name, **products_case})
            print(
                f"{model_name} {in_features} -> {out_features}: "
                f"folded/floor {layer_case['folded_over_floor']['median']:.3f}, "
                f"unfolded/floor {layer_case['unfolded_over_floor']['median']:.3f}",
                flush=True,
            )
            common.write_results(args.out, results)
    common.mark_end(results, args.device)
    common.write_results(args.out, results)


def time_layer(in_features: int, out_features: int, rows: int, device: str, repeats: int, calls: int) -> dict:
    """Time forward + backward of the frozen map, the folded layer and the unfolded layer."""
    generator = torch.Generator().manual_seed(0)
    base = nn.Linear(in_features, out_features).to(device).requires_grad_(False)
    adapters = [LowRankAdapter(in_features, out_features, rank, ALPHA, device=device) for rank in LEVEL_RANKS]
    for adapter in adapters:
        nn.init.normal_(adapter.lora_B, std=0.02)
    folded = MSPLoRALinear(base, adapters)
    unfolded = MSPLoRALinear(base, adapters)
    unfolded.fold = False  # ablation: always the two thin matmuls beside the base layer
    assert folded._can_fold(torch.empty(rows, in_features, device=device), adapters[0].lora_A)

    x = torch.randn(rows, in_features, generator=generator).to(device).requires_grad_()
    grad_output = torch.randn(rows, out_features, generator=generator).to(device)

    def step(module: nn.Module) -> Callable[[], None]:
        def run() -> None:
            module(x).backward(grad_output)
            x.grad = None
            for adapter in adapters:
                adapter.zero_grad(set_to_none=True)

        return run

    contenders = {"floor": step(base), "folded": step(folded), "unfolded": step(unfolded)}
    timings = common.time_alternating(contenders, device=device, repeats=repeats, calls=calls)
    return {
        "in": in_features,
        "out": out_features,
        "times": timings.summary(),
        "folded_over_floor": common.paired_ratio(timings.primary, "folded", "floor"),
        "unfolded_over_floor": common.paired_ratio(timings.primary, "unfolded", "floor"),
        "folded_over_unfolded": common.paired_ratio(timings.primary, "folded", "unfolded"),
    }


def time_thin_products(in_features: int, out_features: int, rows: int, device: str, repeats: int, calls: int) -> dict:
    """Time each thin product of the backward pass with the thin side last, then first."""
    generator = torch.Generator().manual_seed(1)
    rank = sum(LEVEL_RANKS)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator).to(device)

    x, grad_output = rand(rows, in_features), rand(rows, out_features)
    lora_A, lora_B = rand(rank, in_features), rand(out_features, rank)
    hidden, grad_hidden = rand(rows, rank), rand(rows, rank)
    products = {  # name -> (thin side last, thin side first), equal in value
        "hidden = x A^T": (lambda: x @ lora_A.T, lambda: (lora_A @ x.T).T),
        "grad_hidden = grad_y B": (lambda: grad_output @ lora_B, lambda: (lora_B.T @ grad_output.T).T),
        "grad_A = grad_hidden^T x": (lambda: (x.T @ grad_hidden).T, lambda: grad_hidden.T @ x),
        "grad_B = grad_y^T hidden": (lambda: grad_output.T @ hidden, lambda: (hidden.T @ grad_output).T),
    }
    case: dict[str, Any] = {"in": in_features, "out": out_features, "rank": rank, "products": {}}
    for name, (thin_last, thin_first) in products.items():
        torch.testing.assert_close(thin_last(), thin_first(), rtol=1e-4, atol=1e-3)
        timings = common.time_alternating(
            {"thin_last": thin_last, "thin_first": thin_first}, device=device, repeats=repeats, calls=calls
        )
        case["products"][name] = {
            "times": timings.summary(),
            "first_over_last": common.paired_ratio(timings.primary, "thin_first", "thin_last"),
        }
    return case


if __name__ == "__main__":
    main()
