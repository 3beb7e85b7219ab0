"""Block stacks, roles and grouping, on every supported architecture."""

import pytest
import torch
from torch import nn

from msplora import LevelConfig, MSPLoRAConfig, build_layout, find_block_stacks, split_groups

from .tiny_models import ARCHITECTURES, build


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_stacks_found_from_module_tree(name):
    arch = ARCHITECTURES[name]
    stacks = find_block_stacks(build(name))
    assert {path: len(blocks) for path, blocks in stacks.items()} == arch.blocks


@pytest.mark.parametrize(
    "count, groups, sizes",
    [
        (5, 3, [2, 2, 1]),
        (6, 3, [2, 2, 2]),
        (28, 3, [10, 9, 9]),  # numpy.array_split: larger groups first
        (32, 3, [11, 11, 10]),
        (12, 5, [3, 3, 2, 2, 2]),
        (3, 3, [1, 1, 1]),
    ],
)
def test_groups_contiguous_and_even(count, groups, sizes):
    split = split_groups(count, LevelConfig("mid", groups, 4, 8))
    assert [len(g) for g in split] == sizes
    assert [p for g in split for p in g] == list(range(count))


def test_explicit_boundaries_override_rule():
    split = split_groups(6, LevelConfig("mid", 3, 4, 8, boundaries=(1, 5)))
    assert split == [[0], [1, 2, 3, 4], [5]]


def test_boundary_out_of_range_raises():
    with pytest.raises(ValueError, match="must be below 6"):
        split_groups(6, LevelConfig("mid", 3, 4, 8, boundaries=(2, 6)))


def test_more_groups_than_blocks_raises():
    with pytest.raises(ValueError, match="only 5 adapted blocks"):
        build_layout(build("bert"), MSPLoRAConfig(target_modules=["query"], mid_groups=6))


def test_roles_and_block_assignment_bert():
    layout = build_layout(build("bert"), MSPLoRAConfig(target_modules=["query", "value"]))
    roles = sorted({t.role for t in layout.targets})
    assert roles == ["bert.encoder.layer.*.attention.self.query", "bert.encoder.layer.*.attention.self.value"]
    by_key = layout.by_key()
    keys = layout.assignments["bert.encoder.layer.3.attention.self.query"]
    # Block 3 of 5 is in mid group 1 (groups 0-1, 2-3, 4).
    assert [by_key[k].level for k in keys] == ["global", "mid", "layer"]
    assert by_key[keys[0]].blocks == (0, 1, 2, 3, 4)
    assert by_key[keys[1]].blocks == (2, 3)
    assert by_key[keys[2]].blocks == (3,)


def test_t5_has_a_pyramid_per_stack():
    layout = build_layout(build("t5"), MSPLoRAConfig(target_modules=["q", "v"], mid_groups=2))
    stacks = {r.stack for r in layout.adapters}
    assert stacks == {"encoder.block", "decoder.block"}
    global_blocks = {r.role: r.blocks for r in layout.adapters if r.level == "global"}
    assert global_blocks["encoder.block.*.layer.0.SelfAttention.q"] == (0, 1, 2)
    assert global_blocks["decoder.block.*.layer.1.EncDecAttention.q"] == (0, 1)


def test_roles_with_different_shapes_never_share():
    # Llama q_proj is 32 -> 32 but v_proj is 32 -> 16 (2 KV heads of 8): separate roles, separate adapters.
    layout = build_layout(build("llama"), MSPLoRAConfig(target_modules=["q_proj", "v_proj"]))
    shapes = {(r.role.rsplit(".", 1)[-1], r.in_features, r.out_features) for r in layout.adapters}
    assert shapes == {("q_proj", 32, 32), ("v_proj", 32, 16)}


def test_regex_targets_whole_path():
    layout = build_layout(build("bert"), MSPLoRAConfig(target_modules=r".*layer\.[0-2]\.attention\.self\.(query|key)"))
    assert len(layout.targets) == 6
    assert {t.block for t in layout.targets} == {0, 1, 2}


def test_layers_to_transform_groups_adapted_blocks():
    config = MSPLoRAConfig(target_modules=["query"], layers_to_transform=[1, 2, 4], mid_groups=2)
    layout = build_layout(build("bert"), config)
    mids = [r.blocks for r in layout.adapters if r.level == "mid"]
    assert mids == [(1, 2), (4,)]


def test_target_matching_nothing_lists_names():
    with pytest.raises(ValueError, match="matched no module") as err:
        build_layout(build("bert"), MSPLoRAConfig(target_modules=["q_proj"]))
    assert "attention.self.query" in str(err.value)


def test_misspelt_target_among_valid_raises():
    with pytest.raises(ValueError, match=r"target_modules \['valeu'\] matched no module") as err:
        build_layout(build("bert"), MSPLoRAConfig(target_modules=["query", "valeu"]))
    assert "attention.self.value" in str(err.value)


def test_target_outside_stacks_raises():
    # "dense" also matches bert.pooler.dense, which is outside the block stack.
    with pytest.raises(ValueError, match="outside every block stack") as err:
        build_layout(build("bert"), MSPLoRAConfig(target_modules=["dense"]))
    assert "bert.pooler.dense" in str(err.value)


def test_model_without_stack_raises():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match="No block stack found"):
        build_layout(model, MSPLoRAConfig(target_modules=["0"]))


def test_missing_block_index_raises():
    with pytest.raises(ValueError, match=r"blocks \[7\] do not exist"):
        build_layout(build("bert"), MSPLoRAConfig(target_modules=["query"], layers_to_transform=[0, 7]))


def test_non_linear_target_raises():
    with pytest.raises(ValueError, match="not linear maps"):
        build_layout(build("bert"), MSPLoRAConfig(target_modules=["attention.output.LayerNorm"]))


def test_layout_on_meta_device_matches_real():
    config = MSPLoRAConfig(target_modules=["q_proj", "v_proj"])
    real = build_layout(build("llama"), config)
    with torch.device("meta"):
        meta_model = ARCHITECTURES["llama"].build()
    meta = build_layout(meta_model, config)
    assert [(r.key, r.blocks, r.params) for r in meta.adapters] == [(r.key, r.blocks, r.params) for r in real.adapters]
