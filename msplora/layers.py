"""Adapter modules: shared low-rank adapters and the linear layer that applies a pyramid.

For a target linear map W0 of block l, the layer computes

    h = W0 x + s_g B_g A_g x + s_m B_m(l) A_m(l) x + s_l B_l A_l x,     s = alpha / rank

in one low-rank product: the level matrices are concatenated along the rank axis,
A = [A_g; A_m; A_l] (R x in) and B = [B_g, B_m, B_l] (out x R) with R = r_g + r_m + r_l,
so the update costs the same whatever the number of levels. For many input rows (a
training or evaluation batch) in float32, the update is folded into the weight,
W0 + B diag(s) A, and the layer runs one matmul (see `msplora.folded`); for a few
rows (token-by-token decoding) or under bf16/fp16 it is applied as two thin matmuls
beside the base layer, as in PEFT.

Shared adapters are registered once, in the model's ``adapters`` ModuleDict. The
layers keep plain references to them, so a shared matrix appears once in the
state_dict, the optimizer and the budget, and autograd sums its gradient over the
blocks that use it.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

from .folded import folded_linear

__all__ = ["LowRankAdapter", "MSPLoRALinear"]


class LowRankAdapter(nn.Module):
    """One adapter of the pyramid: lora_A (r x in) and lora_B (out x r), B zero at start.

    Args:
        in_features: input size of the target linear map.
        out_features: output size of the target linear map.
        rank: rank r of the update B A.
        alpha: scaling numerator; the update is scaled by alpha / rank.
        dtype: dtype of the adapter weights. Default: float32, which trains well on a
            bf16 or fp16 base.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        rank: int,
        alpha: float,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        self.rank = rank
        self.alpha = alpha
        self.scaling = alpha / rank
        self.lora_A = nn.Parameter(torch.empty(rank, in_features, dtype=dtype, device=device))
        self.lora_B = nn.Parameter(torch.zeros(out_features, rank, dtype=dtype, device=device))
        # Same initialisation as LoRA: Kaiming-uniform A, zero B, so the update starts at zero.
        if self.lora_A.device.type != "meta":
            nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

    def get_delta_weight(self) -> torch.Tensor:
        """Return the dense update s * B @ A, shape (out, in)."""
        return self.scaling * (self.lora_B @ self.lora_A)

    def extra_repr(self) -> str:
        return f"rank={self.rank}, alpha={self.alpha}, in={self.lora_A.shape[1]}, out={self.lora_B.shape[0]}"


class MSPLoRALinear(nn.Module):
    """A frozen linear map (nn.Linear or GPT-2's Conv1D) plus the adapters of its pyramid.

    The adapters are not submodules of this layer: they belong to the model's
    ``adapters`` ModuleDict and may be shared with other blocks.

    Attributes:
        fold: whether the layer may fold the update into the weight (see `_can_fold`).
            Set it to False to always apply the update as two thin matmuls, for
            example to measure what the fold saves.
    """

    def __init__(self, base_layer: nn.Module, adapters: list[LowRankAdapter], dropout: float = 0.0) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.fan_in_fan_out = isinstance(base_layer, Conv1D)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False
        self.disabled = False
        self.fold = True
        self._set_adapters(adapters)

    @property
    def adapters(self) -> tuple[LowRankAdapter, ...]:
        return self._adapters

    @property
    def weight(self) -> torch.Tensor:
        return self.base_layer.weight

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base_layer.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply W0 x plus the pyramid's update. x: (..., in) -> (..., out)."""
        if self.merged or self.disabled or not self._adapters:
            return self.base_layer(x)

        lora_A = torch.cat([adapter.lora_A for adapter in self._adapters], dim=0)  # (R, in)
        lora_B = torch.cat([adapter.lora_B for adapter in self._adapters], dim=1)  # (out, R)
        scalings = self._scaling_vector(lora_A)  # each level's rank units times its s = alpha / r
        if self._can_fold(x, lora_A):
            weight = self.base_layer.weight.T if self.fan_in_fan_out else self.base_layer.weight
            return folded_linear(x, weight, self.base_layer.bias, lora_A, lora_B, scalings)

        result = self.base_layer(x)
        hidden = self.dropout(x).to(lora_A.dtype) @ lora_A.T  # (..., R)
        return result + ((hidden * scalings) @ lora_B.T).to(result.dtype)  # (..., out)

    def get_delta_weight(self) -> torch.Tensor:
        """Return the block's combined update sum_level s B A, shape (out, in), in the adapters' dtype."""
        delta = self._adapters[0].get_delta_weight()
        for adapter in self._adapters[1:]:
            delta = delta + adapter.get_delta_weight()
        return delta

    @torch.no_grad()
    def merge(self, safe_merge: bool = False) -> None:
        """Add the update into the base weight, in the base weight's dtype.

        Raises:
            ValueError: with safe_merge=True, when the merged weight is not finite.
        """
        if self.merged:
            return
        delta = self._delta_in_weight_layout()
        merged = self.base_layer.weight.data.float() + delta.float()
        if safe_merge and not torch.isfinite(merged).all():
            raise ValueError("Merging produced non-finite weights; the adapter weights contain NaN or inf.")
        self.base_layer.weight.data.copy_(merged.to(self.base_layer.weight.dtype))
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Subtract the update from the base weight again."""
        if not self.merged:
            return
        delta = self._delta_in_weight_layout()
        restored = self.base_layer.weight.data.float() - delta.float()
        self.base_layer.weight.data.copy_(restored.to(self.base_layer.weight.dtype))
        self.merged = False

    def extra_repr(self) -> str:
        ranks = "+".join(str(adapter.rank) for adapter in self._adapters)
        return f"ranks={ranks}, merged={self.merged}"

    # Private helpers

    def _set_adapters(self, adapters: list[LowRankAdapter]) -> None:
        # A tuple is a plain attribute to nn.Module, so the shared adapters are not registered twice.
        self._adapters = tuple(adapters)
        self._scalings: torch.Tensor | None = None

    def _can_fold(self, x: torch.Tensor, lora_A: torch.Tensor) -> bool:
        """Return whether folding the update into the weight is safe and pays off for this input.

        Folding costs out * in * R multiply-adds to build the weight, and the unfolded
        update costs rows * (in + out) * R. So folding pays off from rows >= in * out /
        (in + out), about half the hidden size. It also needs `fold` set, one dtype
        throughout (no rounding of the update into a bf16 weight), no active dropout (the
        adapters would see another input than the base layer) and a frozen base layer
        (its gradient is not computed).
        """
        weight, bias = self.base_layer.weight, self.base_layer.bias
        out_features, in_features = weight.shape[::-1] if self.fan_in_fan_out else weight.shape
        rows = x.numel() // in_features
        return (
            self.fold
            and rows * (in_features + out_features) >= in_features * out_features
            and x.dtype == weight.dtype == lora_A.dtype
            and not torch.is_autocast_enabled(x.device.type)
            and not (self.training and isinstance(self.dropout, nn.Dropout))
            and not weight.requires_grad
            and (bias is None or not bias.requires_grad)
        )

    def _scaling_vector(self, like: torch.Tensor) -> torch.Tensor:
        cached = self._scalings
        if cached is None or cached.device != like.device or cached.dtype != like.dtype:
            values = [adapter.scaling for adapter in self._adapters for _ in range(adapter.rank)]
            cached = torch.tensor(values, dtype=like.dtype, device=like.device)
            self._scalings = cached
        return cached

    def _delta_in_weight_layout(self) -> torch.Tensor:
        delta = self.get_delta_weight()
        return delta.T if self.fan_in_fan_out else delta
