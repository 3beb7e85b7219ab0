"""Spectra from the r x r cores against a dense SVD, effective rank, and overlap between blocks."""

import math

import pytest
import torch
from peft import LoraConfig, get_peft_model

from msplora import MSPLoRAConfig, effective_rank, get_msplora_model, peft_lora_spectra, spectrum_of_factors
from msplora.analysis import update_cosine

from .tiny_models import build, randomize_adapters


@pytest.mark.parametrize("out_features, in_features, rank", [(32, 32, 8), (96, 32, 4), (16, 64, 2), (4, 64, 8)])
def test_core_spectrum_equals_dense_svd(out_features, in_features, rank):
    generator = torch.Generator().manual_seed(0)
    lora_A = torch.randn(rank, in_features, generator=generator)
    lora_B = torch.randn(out_features, rank, generator=generator)
    dense = torch.linalg.svdvals(2.5 * lora_B.double() @ lora_A.double())  # golden value: dense SVD
    core = spectrum_of_factors(lora_A, lora_B, 2.5)
    torch.testing.assert_close(core, dense[: core.numel()], rtol=1e-9, atol=1e-9)


def test_model_spectra_equal_dense_svd():
    model = get_msplora_model(build("bert"), MSPLoRAConfig(target_modules=["query", "value"]))
    randomize_adapters(model)
    spectra = model.level_spectra()
    for item in spectra.adapters:
        adapter = model.adapters[item.key]
        dense = torch.linalg.svdvals(adapter.get_delta_weight().double().detach())[: item.rank]
        torch.testing.assert_close(torch.tensor(item.singular_values, dtype=torch.float64), dense, rtol=1e-5, atol=1e-7)

    layers = dict(model.msplora_layers())
    for block in spectra.blocks:
        path = block.role.replace("*", str(block.block))
        dense = torch.linalg.svdvals(layers[path].get_delta_weight().double().detach())[:14]
        torch.testing.assert_close(torch.tensor(block.singular_values, dtype=torch.float64), dense, rtol=1e-5, atol=1e-7)


def test_level_summaries():
    model = get_msplora_model(build("bert"), MSPLoRAConfig(target_modules=["query", "value"]))
    randomize_adapters(model)
    levels = model.level_spectra().levels
    assert set(levels) == {"global", "mid", "layer"}
    assert math.isclose(sum(s.energy_share for s in levels.values()), 1.0)
    assert levels["global"].adapters == 2
    assert levels["layer"].adapters == 10
    assert 1.0 <= levels["global"].effective_rank <= 8.0
    assert levels["global"].redundancy is None  # one adapter per role: nothing to compare
    assert 0.0 <= levels["layer"].redundancy <= 1.0


def test_fresh_spectra_are_zero_and_json_ready():
    model = get_msplora_model(build("bert"), MSPLoRAConfig(target_modules=["query"]))
    data = model.level_spectra().to_dict()
    assert all(v == 0.0 for a in data["adapters"] for v in a["singular_values"])
    assert data["block_overlap"] is None
    assert data["levels"]["layer"]["effective_rank"] == 0.0


def test_effective_rank_values():
    # exp(entropy) of a uniform spectrum of k values is k; one non-zero value gives 1.
    assert effective_rank([1.0, 1.0, 1.0, 1.0]) == pytest.approx(4.0)
    assert effective_rank([3.0, 0.0, 0.0]) == pytest.approx(1.0)
    assert effective_rank([0.0, 0.0]) == 0.0


def test_update_cosine_equals_dense():
    generator = torch.Generator().manual_seed(3)
    a1, b1 = torch.randn(4, 20, generator=generator), torch.randn(12, 4, generator=generator)
    a2, b2 = torch.randn(2, 20, generator=generator), torch.randn(12, 2, generator=generator)
    u1, u2 = b1 @ a1, b2 @ a2
    dense = float((u1 * u2).sum() / (u1.norm() * u2.norm()))
    assert update_cosine((a1, b1), (a2, b2)) == pytest.approx(dense, rel=1e-5)


def test_shared_levels_raise_block_overlap():
    # Global-only: every block applies the same update, so the overlap is exactly 1.
    tied = get_msplora_model(build("bert"), MSPLoRAConfig.tied_lora(["query"], rank=4))
    randomize_adapters(tied)
    assert tied.level_spectra().block_overlap == pytest.approx(1.0)
    # Independent random per-block adapters are nearly orthogonal.
    lora = get_msplora_model(build("bert"), MSPLoRAConfig.lora(["query"], rank=4))
    randomize_adapters(lora)
    assert abs(lora.level_spectra().block_overlap) < 0.3


def test_peft_lora_spectra():
    peft_model = get_peft_model(build("bert"), LoraConfig(r=4, lora_alpha=8, target_modules=["query"]))
    with torch.no_grad():
        for module in peft_model.modules():
            if hasattr(module, "lora_B") and "default" in getattr(module, "lora_B", {}):
                module.lora_B["default"].weight.normal_(0, 0.1)
    spectra = peft_lora_spectra(peft_model)
    assert len(spectra.adapters) == 5
    assert {a.level for a in spectra.adapters} == {"lora"}
    assert spectra.adapters[0].role.endswith("encoder.layer.*.attention.self.query")
    layer = peft_model.base_model.model.bert.encoder.layer[0].attention.self.query
    dense = torch.linalg.svdvals(layer.get_delta_weight("default").double().detach())[:4]
    torch.testing.assert_close(torch.tensor(spectra.adapters[0].singular_values, dtype=torch.float64), dense, rtol=1e-5, atol=1e-7)
