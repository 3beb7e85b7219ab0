"""MSPLoRAConfig: level ranks, the general form, serialisation and every invalid value."""

import re

import pytest

from msplora import LevelConfig, MSPLoRAConfig


def test_default_pyramid_ranks():
    config = MSPLoRAConfig(target_modules=["query", "value"])
    assert config.level_ranks == (8, 4, 2)
    assert config.level_names == ("global", "mid", "layer")
    assert config.total_rank == 14


def test_ranks_round_down():
    # 10 / 3 = 3.33 -> 3 and 10 / 9 = 1.11 -> 1 (rank, rank/decay, rank/decay**2, floored).
    assert MSPLoRAConfig(rank=10, rank_decay=3).level_ranks == (10, 3, 1)
    assert MSPLoRAConfig(rank=8, rank_decay=1).level_ranks == (8, 8, 8)


def test_scalings_are_alpha_over_rank():
    config = MSPLoRAConfig(alpha=16)
    assert [lv.scaling for lv in config.levels] == [2.0, 4.0, 8.0]


def test_alpha_per_level():
    config = MSPLoRAConfig(alpha=[8, 4, 2])
    assert [lv.alpha for lv in config.levels] == [8.0, 4.0, 2.0]


def test_disabled_level_keeps_positional_rank():
    config = MSPLoRAConfig(enabled_levels=("global", "layer"))
    assert config.level_names == ("global", "layer")
    assert config.level_ranks == (8, 2)


def test_lora_and_tied_lora_are_one_level():
    lora = MSPLoRAConfig.lora(["query"], rank=4, alpha=8)
    assert lora.level_names == ("layer",)
    assert lora.levels[0].per_block
    tied = MSPLoRAConfig.tied_lora(["query"], rank=4)
    assert tied.levels[0].groups == 1


def test_dict_round_trip():
    config = MSPLoRAConfig(target_modules=["q", "v"], rank=16, rank_decay=2, mid_groups=4, alpha=[32, 16, 8],
                           group_boundaries=[3, 6], modules_to_save=["classifier"], staged=True)
    again = MSPLoRAConfig.from_dict(config.to_dict())
    assert again.levels == config.levels
    assert again.to_dict() == config.to_dict()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"rank": 4, "rank_decay": 3}, "layer level's rank would be 4/3^2"),
        ({"rank": 0}, "Invalid rank=0"),
        ({"rank_decay": 0.5}, "rank_decay=0.5"),
        ({"mid_groups": 0}, "mid_groups=0"),
        ({"alpha": [16, 8]}, "exactly 3 values"),
        ({"alpha": -1}, "alpha=-1"),
        ({"dropout": 1.0}, "dropout=1.0"),
        ({"group_boundaries": [4, 2]}, "strictly increasing"),
        ({"group_boundaries": [0, 2]}, "strictly increasing"),
        ({"target_modules": []}, "target_modules=[]"),
        ({"target_modules": "query("}, "regex"),
        ({"enabled_levels": ("global", "top")}, "enabled_levels"),
        ({"layers_to_transform": [-1]}, "layers_to_transform"),
    ],
)
def test_invalid_values_raise(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        MSPLoRAConfig(**kwargs)


def test_invalid_level_values_raise():
    with pytest.raises(ValueError, match="rank >= 1"):
        LevelConfig("layer", None, 0, 8)
    with pytest.raises(ValueError, match="groups"):
        LevelConfig("mid", 0, 4, 8)
    with pytest.raises(ValueError, match="duplicate level names"):
        MSPLoRAConfig(levels=[LevelConfig("a", 1, 4, 8), LevelConfig("a", None, 2, 8)])


def test_unknown_field_in_dict_raises():
    with pytest.raises(ValueError, match="Unknown MSPLoRAConfig fields"):
        MSPLoRAConfig.from_dict({"target_modules": ["q"], "lora_r": 8})
