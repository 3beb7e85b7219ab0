"""A rough estimate of memory and time per training step, shown before launch.

The estimate is deliberately simple, so a user can check it by hand:

memory = weights + adapter training state + activations
    weights: every base parameter in fp32 (4 bytes).
    adapter training state: 16 bytes per trainable parameter (fp32 weight,
        gradient and AdamW's two moments).
    activations: per block, batch · seq · hidden · (34 + 5 · heads · seq / hidden)
        bytes for 16-bit activations, doubled for fp32. This is the per-layer
        count of Korthikanti et al., "Reducing Activation Recomputation in Large
        Transformer Models" (arXiv 2205.05198), for a standard transformer block.

time = 4 · matmul parameters · tokens / measured matmul throughput
    A forward pass costs about 2 FLOPs per parameter per token, and the
    backward pass with frozen base weights another 2 (input gradients only).
    Embedding tables are lookups, so their parameters are not counted.
    The throughput is measured once per process with a float32 matrix
    product on the device the engine would pick. Attention's seq² term, data
    loading and the optimizer are left out, so the time is a lower bound.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import torch
from transformers import PretrainedConfig

__all__ = ["StepEstimate", "estimate_step", "measured_flops"]

BYTES_FP32 = 4
ADAPTER_STATE_BYTES = 16  # fp32 weight + gradient + AdamW exp_avg + exp_avg_sq


@dataclass(frozen=True)
class StepEstimate:
    """Estimated memory (bytes) and time (seconds) of one optimizer step."""

    weights_bytes: int
    adapter_state_bytes: int
    activation_bytes: int
    seconds: float
    flops_per_second: float
    device: str

    @property
    def memory_bytes(self) -> int:
        return self.weights_bytes + self.adapter_state_bytes + self.activation_bytes

    def to_markdown(self) -> str:
        """Describe the estimate and how it was computed, for the Launch screen."""
        return (
            f"**Estimate per step:** about **{_gib(self.memory_bytes)}** of memory and at least "
            f"**{self.seconds:.2f} s** on {self.device}.\n\n"
            f"- weights (fp32): {_gib(self.weights_bytes)}\n"
            f"- adapter weights, gradients and AdamW state (16 bytes each): {_gib(self.adapter_state_bytes)}\n"
            f"- activations (Korthikanti et al. per-block count, fp32): {_gib(self.activation_bytes)}\n"
            f"- time: 4 FLOPs per non-embedding parameter per token at the measured "
            f"{self.flops_per_second / 1e9:.0f} GFLOP/s; a lower bound (attention, data loading "
            "and the optimizer are not counted)."
        )


def estimate_step(
    hf_config: PretrainedConfig,
    base_parameters: int,
    matmul_parameters: int,
    trainable_parameters: int,
    batch_size: int,
    max_length: int,
    flops_per_second: float | None = None,
    device: str | None = None,
) -> StepEstimate:
    """Estimate the memory and time of one step (see the module docstring for the formulas).

    Args:
        hf_config: the model's config (hidden size, heads, blocks).
        base_parameters: parameters of the frozen model.
        matmul_parameters: base parameters outside embedding tables.
        trainable_parameters: adapter (and head) parameters.
        batch_size: sequences per step.
        max_length: tokens per sequence, the worst case of padding to max_length.
        flops_per_second: throughput to divide by; measured with `measured_flops` when None.
        device: the device name shown with the estimate.
    """
    hidden = int(hf_config.hidden_size)
    heads = int(hf_config.num_attention_heads)
    blocks = int(hf_config.num_hidden_layers)
    sequence, batch = int(max_length), int(batch_size)

    activations_16bit = sequence * batch * hidden * (34 + 5 * heads * sequence / hidden)
    activation_bytes = int(2 * activations_16bit * blocks)

    if flops_per_second is None:
        device, flops_per_second = measured_flops()
    tokens = batch * sequence
    seconds = 4 * matmul_parameters * tokens / flops_per_second

    return StepEstimate(
        weights_bytes=base_parameters * BYTES_FP32,
        adapter_state_bytes=trainable_parameters * ADAPTER_STATE_BYTES,
        activation_bytes=activation_bytes,
        seconds=seconds,
        flops_per_second=flops_per_second,
        device=device or "this machine",
    )


@functools.lru_cache(maxsize=1)
def measured_flops(size: int = 512, repeats: int = 8) -> tuple[str, float]:
    """Measure float32 matmul throughput on the engine's default device (CUDA, MPS, else CPU).

    Returns the device name and FLOP/s. Cached, so it runs once per process (about 0.1 s on CPU).
    """
    device = "cpu"
    if torch.cuda.is_available():
        device = "cuda"
    elif torch.backends.mps.is_available():
        device = "mps"
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    torch.mm(a, b)  # warm-up

    _synchronize(device)
    started = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    _synchronize(device)
    elapsed = max(time.perf_counter() - started, 1e-9)
    return device, 2 * size**3 * repeats / elapsed


def _synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()
    elif device == "mps":
        torch.mps.synchronize()


def _gib(count: int) -> str:
    if count < 2**30:
        return f"{count / 2**20:,.0f} MiB"
    return f"{count / 2**30:,.1f} GiB"
