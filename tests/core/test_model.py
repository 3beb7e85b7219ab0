"""MSPLoRAModel on every architecture: outputs, merging, shared gradients, dtypes and PEFT parity."""

import copy

import pytest
import torch
from peft import LoraConfig, get_peft_model

from msplora import LevelConfig, MSPLoRAConfig, get_msplora_model
from msplora.layers import LowRankAdapter

from .tiny_models import ARCHITECTURES, build, output_of, randomize_adapters


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_fresh_model_equals_base(name):
    arch = ARCHITECTURES[name]
    base = build(name)
    inputs = arch.inputs()
    expected = output_of(base, inputs)
    model = get_msplora_model(base, MSPLoRAConfig(target_modules=arch.targets, mid_groups=2))
    assert torch.equal(output_of(model, inputs), expected)


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_merge_equals_unmerged(name):
    arch = ARCHITECTURES[name]
    base = build(name)
    inputs = arch.inputs()
    original = {k: v.clone() for k, v in base.state_dict().items()}
    model = get_msplora_model(base, MSPLoRAConfig(target_modules=arch.targets, mid_groups=2))
    randomize_adapters(model)
    unmerged = output_of(model, inputs)
    assert not torch.allclose(unmerged, output_of(build(name), inputs))  # the update is not zero

    model.merge()
    assert model.merged
    torch.testing.assert_close(output_of(model, inputs), unmerged, rtol=1e-5, atol=1e-5)

    model.unmerge()
    restored = {k.replace(".base_layer", ""): v for k, v in model.base_model.state_dict().items()}
    for key, value in original.items():
        torch.testing.assert_close(restored[key], value, rtol=0, atol=1e-6)


def test_merge_and_unload_returns_plain_model():
    arch = ARCHITECTURES["gpt2"]
    model = get_msplora_model(build("gpt2"), MSPLoRAConfig(target_modules=arch.targets, mid_groups=2))
    randomize_adapters(model)
    expected = output_of(model, arch.inputs())
    plain = model.merge_and_unload()
    assert type(plain.transformer.h[0].attn.c_attn).__name__ == "Conv1D"
    torch.testing.assert_close(output_of(plain, arch.inputs()), expected, rtol=1e-5, atol=1e-5)


def test_shared_adapters_stored_once():
    model = get_msplora_model(build("bert"), MSPLoRAConfig(target_modules=["query", "value"]))
    keys = [k for k in model.state_dict() if ".lora_" in k]
    # 2 roles x (1 global + 3 mid + 5 layer) adapters x (lora_A, lora_B) = 36 tensors.
    assert len(keys) == 36
    assert all(k.startswith("adapters.") for k in keys)
    params = [p for p in model.parameters() if p.requires_grad]
    assert len(params) == 36
    assert len({id(p) for p in params}) == 36


def test_budget_exact_counts_bert():
    model = get_msplora_model(build("bert"), MSPLoRAConfig(target_modules=["query", "value"], modules_to_save=["classifier"]))
    budget = model.budget()
    # Each role maps 32 -> 32, so an adapter of rank r has r * (32 + 32) = 64 r parameters.
    # global: 2 roles x 1 adapter x 64*8 = 1024; mid: 2 x 3 x 64*4 = 1536; layer: 2 x 5 x 64*2 = 1280.
    assert budget.by_level == {"global": 1024, "mid": 1536, "layer": 1280}
    assert budget.total == 3840
    assert budget.lora_equivalent == 10 * 64 * 8  # 10 targets at rank 8
    # BERT's classifier head is Linear(32, 2): 32 * 2 + 2 = 66.
    assert budget.head == 66
    assert budget.bytes == (3840 + 66) * 4
    trainable, _ = model.get_nb_trainable_parameters()
    assert trainable == budget.total + budget.head


def test_budget_exact_counts_llama_kv_heads():
    model = get_msplora_model(build("llama"), MSPLoRAConfig(target_modules=["q_proj", "v_proj"]))
    # q_proj: 32 -> 32 (64 per rank); v_proj: 32 -> 16 (48 per rank); 4 blocks in 3 mid groups (2, 1, 1).
    # global 8*(64+48) = 896; mid 3*4*(64+48) = 1344; layer 4*2*(64+48) = 896.
    assert model.budget().by_level == {"global": 896, "mid": 1344, "layer": 896}
    assert model.budget().lora_equivalent == 4 * 8 * (64 + 48)


def test_shared_gradient_is_sum_over_blocks():
    arch = ARCHITECTURES["bert"]
    inputs = {**arch.inputs(), "labels": torch.tensor([0, 1])}
    model = get_msplora_model(build("bert"), MSPLoRAConfig(target_modules=["query"], mid_groups=2))
    randomize_adapters(model)
    global_key = next(r.key for r in model.layout() if r.level == "global")
    shared = model.adapters[global_key]
    model(**inputs).loss.backward()
    shared_grad = shared.lora_A.grad.clone()

    # Give every block its own copy of the global adapter, then add up the copies' gradients.
    model.zero_grad()
    copies = []
    for _, layer in model.msplora_layers():
        clone = copy.deepcopy(shared)
        copies.append(clone)
        layer._set_adapters([clone if a is shared else a for a in layer.adapters])
    model(**inputs).loss.backward()
    summed = sum(c.lora_A.grad for c in copies)
    assert len(copies) == 5
    torch.testing.assert_close(summed, shared_grad, rtol=1e-5, atol=1e-7)


def test_dropout_only_on_adapter_input():
    model = get_msplora_model(build("bert"), MSPLoRAConfig(target_modules=["query"], dropout=0.5))
    _, layer = next(model.msplora_layers())
    layer.train()
    x = torch.randn(4, 32)
    # With B = 0 the adapter adds nothing, so in training mode the base path must be untouched by dropout.
    assert torch.equal(layer(x), layer.base_layer(x))

    randomize_adapters(model)
    torch.manual_seed(0)
    first = layer(x)
    torch.manual_seed(1)
    second = layer(x)
    assert not torch.equal(first, second)  # dropout acts on the adapter input
    layer.eval()
    assert torch.equal(layer(x), layer(x))


def test_fp32_adapters_on_bf16_base():
    arch = ARCHITECTURES["llama"]
    base = build("llama").to(torch.bfloat16)
    model = get_msplora_model(base, MSPLoRAConfig(target_modules=arch.targets))
    randomize_adapters(model)
    assert all(p.dtype == torch.float32 for p in model.adapters.parameters())
    inputs = {**arch.inputs(), "labels": arch.inputs()["input_ids"]}
    out = model(**inputs)
    assert out.logits.dtype == torch.bfloat16
    out.loss.backward()
    grads = [p.grad for p in model.adapters.parameters()]
    assert all(g is not None and g.dtype == torch.float32 for g in grads)

    model.merge()
    weight = model.base_model.model.layers[0].self_attn.q_proj.base_layer.weight
    assert weight.dtype == torch.bfloat16


def test_disable_adapter_context():
    arch = ARCHITECTURES["bert"]
    expected = output_of(build("bert"), arch.inputs())
    model = get_msplora_model(build("bert"), MSPLoRAConfig(target_modules=arch.targets))
    randomize_adapters(model)
    with model.disable_adapter():
        assert torch.equal(output_of(model, arch.inputs()), expected)
    assert not torch.equal(output_of(model, arch.inputs()), expected)


def test_modules_to_save_trainable_and_missing_raises():
    model = get_msplora_model(build("bert"), MSPLoRAConfig(target_modules=["query"], modules_to_save=["classifier"]))
    assert all(p.requires_grad for p in model.base_model.classifier.parameters())
    assert not model.base_model.bert.embeddings.word_embeddings.weight.requires_grad
    with pytest.raises(ValueError, match="modules_to_save \\['score'\\] matched no module"):
        get_msplora_model(build("bert"), MSPLoRAConfig(target_modules=["query"], modules_to_save=["score"]))


def test_set_trainable_levels():
    model = get_msplora_model(build("bert"), MSPLoRAConfig(target_modules=["query"]))
    model.set_trainable_levels(["mid"])
    trainable = {r.level for r in model.layout() if model.adapters[r.key].lora_A.requires_grad}
    assert trainable == {"mid"}


@pytest.mark.parametrize("name", ["bert", "gpt2", "llama"])
def test_one_level_equals_peft_lora(name):
    arch = ARCHITECTURES[name]
    inputs = arch.inputs()
    ours = get_msplora_model(build(name), MSPLoRAConfig.lora(arch.targets, rank=4, alpha=8))
    randomize_adapters(ours)
    peft_model = get_peft_model(
        build(name), LoraConfig(r=4, lora_alpha=8, target_modules=arch.targets, fan_in_fan_out=name == "gpt2")
    )

    # Copy our per-block adapters into PEFT's lora_A / lora_B of the same target.
    modules = dict(peft_model.base_model.model.named_modules())
    layout = ours.layout_map
    with torch.no_grad():
        for target in layout.targets:
            (key,) = layout.assignments[target.path]
            modules[target.path].lora_A["default"].weight.copy_(ours.adapters[key].lora_A)
            modules[target.path].lora_B["default"].weight.copy_(ours.adapters[key].lora_B)

    torch.testing.assert_close(output_of(ours, inputs), output_of(peft_model, inputs), rtol=1e-5, atol=1e-6)
    peft_trainable, _ = peft_model.get_nb_trainable_parameters()
    assert ours.budget().total == peft_trainable
    assert ours.get_nb_trainable_parameters()[0] == peft_trainable


def test_levels_computed_as_one_product():
    # The fused layer must equal the sum of the three levels applied one by one.
    model = get_msplora_model(build("bert"), MSPLoRAConfig(target_modules=["query"]))
    randomize_adapters(model)
    _, layer = next(model.msplora_layers())
    x = torch.randn(3, 32)
    expected = layer.base_layer(x) + sum(x @ (a.scaling * a.lora_B @ a.lora_A).T for a in layer.adapters)
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-6)
    assert [a.rank for a in layer.adapters] == [8, 4, 2]
    assert isinstance(layer.adapters[0], LowRankAdapter)


def test_general_levels_form():
    levels = [LevelConfig("global", 1, 4, 8), LevelConfig("pairs", None, 2, 4, boundaries=(2, 4))]
    model = get_msplora_model(build("bert"), MSPLoRAConfig(target_modules=["query"], levels=levels))
    pairs = [r.blocks for r in model.layout() if r.level == "pairs"]
    assert pairs == [(0, 1), (2, 3), (4,)]
