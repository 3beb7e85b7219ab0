"""The faults of the authors' published code (peft 0.5.0 fork, peft/tuners/msplora.py), each shown absent here.

1. Blocks that share a level must apply the shared adapter, not only the first block.
2. merge must change the base weights.
3. Mid groups for 28 and 32 blocks must follow the contiguous, even split.
4. The block index must come from the block stack, not from the first number in the path.
5. Alphas must stay with their levels when levels are given in another rank order.
"""

import torch
from torch import nn
from transformers import BertConfig, BertModel

from msplora import LevelConfig, MSPLoRAConfig, get_msplora_model
from msplora.layout import build_layout

from .tiny_models import build, output_of, randomize_adapters, ARCHITECTURES


def test_shared_adapters_act_in_every_block():
    model = get_msplora_model(build("bert"), MSPLoRAConfig(target_modules=["query"], mid_groups=2))
    with torch.no_grad():
        for record in model.layout():
            if record.level == "global":
                model.adapters[record.key].lora_B.normal_()
    # Only the global adapter is non-zero, so every block's update must equal it.
    global_update = next(model.adapters[r.key] for r in model.layout() if r.level == "global").get_delta_weight()
    layers = list(model.msplora_layers())
    assert len(layers) == 5
    x = torch.randn(3, 32)
    for _, layer in layers:
        torch.testing.assert_close(layer.get_delta_weight(), global_update)
        torch.testing.assert_close(layer(x) - layer.base_layer(x), x @ global_update.T, rtol=1e-4, atol=1e-5)


def test_mid_adapter_acts_in_every_block_of_its_group():
    model = get_msplora_model(build("bert"), MSPLoRAConfig(target_modules=["query"], mid_groups=2))
    second_group = next(r for r in model.layout() if r.level == "mid" and r.group == 1)
    layers = dict(model.msplora_layers())
    for block in second_group.blocks:
        layer = layers[f"bert.encoder.layer.{block}.attention.self.query"]
        assert any(a is model.adapters[second_group.key] for a in layer.adapters)


def test_merge_changes_base_weights():
    arch = ARCHITECTURES["bert"]
    model = get_msplora_model(build("bert"), MSPLoRAConfig(target_modules=["query"]))
    randomize_adapters(model)
    before = [layer.base_layer.weight.clone() for _, layer in model.msplora_layers()]
    expected = output_of(model, arch.inputs())
    model.merge()
    after = [layer.base_layer.weight for _, layer in model.msplora_layers()]
    assert all(not torch.equal(b, a) for b, a in zip(before, after))
    torch.testing.assert_close(output_of(model, arch.inputs()), expected, rtol=1e-5, atol=1e-5)


def _deep_bert(blocks):
    return BertModel(BertConfig(vocab_size=32, hidden_size=8, num_hidden_layers=blocks, num_attention_heads=1,
                                intermediate_size=8), add_pooling_layer=False)


def test_mid_groups_for_28_and_32_blocks():
    for blocks, sizes in [(28, [10, 9, 9]), (32, [11, 11, 10])]:
        layout = build_layout(_deep_bert(blocks), MSPLoRAConfig(target_modules=["query"]))
        mids = [r for r in layout.adapters if r.level == "mid"]
        assert [len(r.blocks) for r in mids] == sizes
        # Every block applies the mid adapter of its own group.
        for record in mids:
            for block in record.blocks:
                assert record.key in layout.assignments[f"encoder.layer.{block}.attention.self.query"]


class _Wrapper(nn.Module):
    """A model whose block paths have a number before the block index: stage2.encoder.layer.N."""

    def __init__(self):
        super().__init__()
        self.stage2 = _deep_bert(4)


def test_digit_before_block_index():
    layout = build_layout(_Wrapper(), MSPLoRAConfig(target_modules=["query"], mid_groups=2))
    assert layout.stacks == {"stage2.encoder.layer": 4}
    assert sorted(t.block for t in layout.targets) == [0, 1, 2, 3]
    layer_adapters = [r for r in layout.adapters if r.level == "layer"]
    assert [r.blocks for r in layer_adapters] == [(0,), (1,), (2,), (3,)]


def test_alphas_stay_with_their_levels():
    # Levels listed with ascending ranks and distinct alphas: each keeps its own alpha.
    levels = [LevelConfig("layer", None, 2, 3.0), LevelConfig("mid", 2, 4, 20.0), LevelConfig("global", 1, 8, 64.0)]
    model = get_msplora_model(build("bert"), MSPLoRAConfig(target_modules=["query"], levels=levels))
    scalings = {r.level: model.adapters[r.key].scaling for r in model.layout()}
    assert scalings == {"layer": 3.0 / 2, "mid": 20.0 / 4, "global": 64.0 / 8}
    ranks = {r.level: r.rank for r in model.layout()}
    assert ranks == {"layer": 2, "mid": 4, "global": 8}
