"""A linear map with a low-rank update folded into its weight, and the backward pass written out.

For many input rows (a training batch), the cheapest way to apply

    y = x (W0 + B diag(s) A)^T + b

is to build the effective weight W0 + B diag(s) A once (out x R x in multiply-adds)
and run one matmul, instead of the base matmul plus two thin ones and an add over
the whole output. The backward pass then needs

    grad_x = grad_y (W0 + B diag(s) A)           one matmul, the effective weight rebuilt
    grad_A = diag(s) (grad_y B)^T x              two thin products over the rows
    grad_B = grad_y^T (x A^T) diag(s)            two thin products over the rows

Autograd on the unfolded form computes the thin products in the layout the
expression gives. On CPU a product with a thin output such as (N x out) @ (out x R)
took about twice as long as the same product written as (R x out) @ (out x N)
(measured with torch 2.13 on one thread, N = 2048, R = 14). So the backward below
computes every thin product with the thin side first. It also keeps the effective
weight out of memory between the passes: the weight is rebuilt, at R multiply-adds
per element.

Folding gives the unfolded result up to float rounding, but it rounds the update into
the weight's dtype. So `MSPLoRALinear` folds only when the weight, the adapters and
the input share one dtype and autocast is off. In bf16 or fp16 the update stays a
separate product, as in PEFT, so that its small values are not rounded away in the
weight.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

__all__ = ["folded_linear"]


def folded_linear(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    lora_A: torch.Tensor,
    lora_B: torch.Tensor,
    scalings: torch.Tensor,
) -> torch.Tensor:
    """Return x (weight + lora_B diag(scalings) lora_A)^T + bias.

    Args:
        x: input, shape (..., in).
        weight: frozen base weight in nn.Linear layout, shape (out, in); it gets no gradient.
        bias: frozen base bias, shape (out,), or None; it gets no gradient.
        lora_A: the concatenated down-projections, shape (R, in).
        lora_B: the concatenated up-projections, shape (out, R).
        scalings: per-rank-unit scaling s, shape (R,).
    """
    return _FoldedLowRankLinear.apply(x, weight, bias, lora_A, lora_B, scalings)


class _FoldedLowRankLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, lora_A, lora_B, scalings):
        ctx.save_for_backward(x, weight, lora_A, lora_B, scalings)
        return F.linear(x, _effective_weight(weight, lora_A, lora_B, scalings), bias)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        x, weight, lora_A, lora_B, scalings = ctx.saved_tensors
        need_x, _, _, need_A, need_B, _ = ctx.needs_input_grad
        grad_rows = grad_output.reshape(-1, weight.shape[0])  # (N, out)
        x_rows = x.reshape(-1, weight.shape[1])  # (N, in)

        grad_x = grad_A = grad_B = None
        if need_x:
            grad_x = (grad_rows @ _effective_weight(weight, lora_A, lora_B, scalings)).view(x.shape)
        if need_A:
            grad_hidden_t = (lora_B.T @ grad_rows.T) * scalings[:, None]  # (R, N) = (s * grad_y B)^T
            grad_A = grad_hidden_t @ x_rows  # (R, in)
        if need_B:
            hidden_t = lora_A @ x_rows.T  # (R, N) = (x A^T)^T
            grad_B = (hidden_t @ grad_rows).T * scalings  # (out, R)
        return grad_x, None, None, grad_A, grad_B, None


def _effective_weight(
    weight: torch.Tensor, lora_A: torch.Tensor, lora_B: torch.Tensor, scalings: torch.Tensor
) -> torch.Tensor:
    return torch.addmm(weight, lora_B * scalings, lora_A)  # W0 + B diag(s) A, (out, in)
