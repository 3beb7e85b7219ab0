"""The folded update (W0 + B diag(s) A in one matmul) against autograd on the unfolded form."""

import pytest
import torch
from torch import nn

from msplora import MSPLoRAConfig, get_msplora_model
from msplora import layers as layers_module
from msplora.folded import folded_linear
from msplora.layers import LowRankAdapter, MSPLoRALinear

from .tiny_models import ARCHITECTURES, build, randomize_adapters


def test_folded_gradients_pass_gradcheck():
    generator = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64)

    weight, bias, scalings = rand(12, 10), rand(12), torch.tensor([2.0, 2.0, 2.0, 4.0, 8.0], dtype=torch.float64)
    x, lora_A, lora_B = (rand(*shape).requires_grad_() for shape in [(3, 4, 10), (5, 10), (12, 5)])
    assert torch.autograd.gradcheck(
        lambda x, a, b: folded_linear(x, weight, bias, a, b, scalings), (x, lora_A, lora_B)
    )


def _layer(base: nn.Module, in_features: int, out_features: int, ranks=(8, 4, 2)) -> MSPLoRALinear:
    torch.manual_seed(0)
    adapters = [LowRankAdapter(in_features, out_features, rank, alpha=16.0) for rank in ranks]
    for adapter in adapters:
        nn.init.normal_(adapter.lora_B, std=0.1)
    base.requires_grad_(False)
    return MSPLoRALinear(base, adapters)


def _output_and_grads(layer: MSPLoRALinear, x: torch.Tensor) -> list[torch.Tensor]:
    x = x.clone().requires_grad_()
    y = layer(x)
    (y * torch.linspace(-1, 1, y.shape[-1])).sum().backward()
    grads = [x.grad] + [p.grad.clone() for a in layer.adapters for p in (a.lora_A, a.lora_B)]
    for adapter in layer.adapters:
        adapter.zero_grad()
    return [y.detach(), *grads]


@pytest.mark.parametrize("kind", ["linear", "conv1d"])
def test_folded_layer_equals_unfolded(kind, monkeypatch):
    from transformers.pytorch_utils import Conv1D

    base = nn.Linear(48, 96) if kind == "linear" else Conv1D(96, 48)
    if kind == "conv1d":
        nn.init.normal_(base.weight, std=0.1)
    layer = _layer(base, 48, 96)
    x = torch.randn(4, 16, 48)  # 64 rows: enough to fold

    calls = []
    monkeypatch.setattr(layers_module, "folded_linear", lambda *args: calls.append(1) or folded_linear(*args))
    folded = _output_and_grads(layer, x)
    assert calls, "64 rows of a 48 x 96 map should take the folded path"

    layer.fold = False
    unfolded = _output_and_grads(layer, x)
    assert len(calls) == 1
    for got, expected in zip(folded, unfolded):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_fold_decision():
    layer = _layer(nn.Linear(64, 64), 64, 64)
    lora_A = torch.cat([a.lora_A for a in layer.adapters])
    many, few = torch.randn(40, 64), torch.randn(2, 64)
    # Folding pays off from rows >= in * out / (in + out) = 32 here.
    assert layer._can_fold(many, lora_A)
    assert not layer._can_fold(few, lora_A)
    assert not layer._can_fold(many.double(), lora_A)  # another dtype than the weight
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not layer._can_fold(many, lora_A)

    with_dropout = MSPLoRALinear(nn.Linear(64, 64).requires_grad_(False), list(layer.adapters), dropout=0.1)
    assert not with_dropout.train()._can_fold(many, lora_A)
    assert with_dropout.eval()._can_fold(many, lora_A)

    layer.base_layer.weight.requires_grad_(True)
    assert not layer._can_fold(many, lora_A)  # the fold computes no gradient for the base weight
    layer.base_layer.weight.requires_grad_(False)

    layer.fold = False
    assert not layer._can_fold(many, lora_A)


@pytest.mark.parametrize("name", ["bert", "gpt2", "llama"])
def test_model_gradients_same_both_paths(name):
    arch = ARCHITECTURES[name]
    model = get_msplora_model(build(name), MSPLoRAConfig(target_modules=arch.targets, mid_groups=2))
    randomize_adapters(model)
    ids = torch.randint(3, 128, (4, 16), generator=torch.Generator().manual_seed(0))  # 64 rows: folded

    def loss_and_grads():
        model.zero_grad()
        loss = model(input_ids=ids, labels=ids if name != "bert" else torch.tensor([0, 1, 1, 0])).loss
        loss.backward()
        return [loss.detach()] + [p.grad.clone() for p in model.adapters.parameters()]

    folded = loss_and_grads()
    for _, layer in model.msplora_layers():
        layer.fold = False
    unfolded = loss_and_grads()
    for got, expected in zip(folded, unfolded):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)
