"""Tests for workbench.estimate: the documented memory and time formulas, checked by hand."""

from transformers import BertConfig

from workbench.estimate import estimate_step, measured_flops


def test_estimate_formulas_by_hand():
    config = BertConfig(hidden_size=64, num_attention_heads=4, num_hidden_layers=2, intermediate_size=128)
    estimate = estimate_step(config, base_parameters=1000, matmul_parameters=600, trainable_parameters=10,
                             batch_size=2, max_length=8, flops_per_second=1e6, device="test")
    assert estimate.weights_bytes == 4000  # 1000 fp32 weights
    assert estimate.adapter_state_bytes == 160  # 10 * (weight + gradient + two AdamW moments) in fp32
    # Per block, s*b*h*(34 + 5*a*s/h) = 8*2*64*(34 + 5*4*8/64) = 1024 * 36.5 = 37376 bytes in 16-bit;
    # doubled for fp32, times 2 blocks.
    assert estimate.activation_bytes == 2 * 37376 * 2
    # 4 FLOPs * 600 parameters * 16 tokens / 1e6 FLOP/s.
    assert abs(estimate.seconds - 0.0384) < 1e-12
    assert estimate.memory_bytes == 4000 + 160 + 149504
    assert "on test" in estimate.to_markdown()


def test_measured_flops_positive_and_cached():
    device, flops = measured_flops()
    assert device in ("cpu", "cuda", "mps")
    assert flops > 1e6
    assert measured_flops() == (device, flops)
