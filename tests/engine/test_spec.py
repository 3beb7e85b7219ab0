"""RunSpec validation and its YAML round trip."""

import pytest

from msplora.engine import RunSpec


def test_defaults_validate():
    spec = RunSpec()
    assert spec.method == "msplora"
    assert spec.levels == ("global", "mid", "layer")


def test_yaml_round_trip(tmp_path):
    spec = RunSpec(method="lora", rank=4, target_modules=["query", "key"], max_steps=7, name="baseline")
    path = tmp_path / "spec.yaml"
    text = spec.to_yaml(path)
    assert RunSpec.from_yaml(text) == spec
    assert RunSpec.from_yaml(path) == spec
    assert RunSpec.from_yaml(str(path)) == spec
    assert RunSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(
    ("field", "value", "fix"),
    [
        ("method", "adalora", "use one of"),
        ("task", "tagging", "use one of"),
        ("learning_rate", 0.0, "use a value in"),
        ("learning_rate", float("nan"), "finite number"),
        ("batch_size", 0, "integer >= 1"),
        ("batch_size", 2.5, "integer >= 1"),
        ("dropout", 1.0, "use a value in"),
        ("warmup_ratio", -0.1, "use a value in"),
        ("eval_fraction", 0.0, "use a value in"),
        ("lr_scheduler", "cyclic", "use one of"),
        ("device", "tpu", "use one of"),
        ("levels", ("global", "block"), "use one of"),
        ("target_modules", [], "name at least one module"),
        ("seed", -1, "integer >= 0"),
        ("model", "", "asset name"),
    ],
)
def test_invalid_field_names_value_and_fix(field, value, fix):
    with pytest.raises(ValueError) as error:
        RunSpec(**{field: value})
    message = str(error.value)
    assert field in message
    assert fix in message


def test_steps_and_epochs_exclusive():
    with pytest.raises(ValueError, match="max_steps=200 and num_epochs=1"):
        RunSpec(num_epochs=1)
    with pytest.raises(ValueError, match="set one of them"):
        RunSpec(max_steps=None, num_epochs=None)
    assert RunSpec(max_steps=None, num_epochs=2).num_epochs == 2


def test_msplora_config_errors_at_creation():
    # rank 8 with decay 16 gives the mid level rank 0 (8 // 16), which MSPLoRAConfig rejects
    with pytest.raises(ValueError, match="rank"):
        RunSpec(rank=8, rank_decay=16.0)


def test_lora_rejects_msplora_only_settings():
    with pytest.raises(ValueError, match="staged=True needs method='msplora'"):
        RunSpec(method="lora", staged=True)


def test_unknown_yaml_key_lists_valid_fields():
    with pytest.raises(ValueError, match="unknown RunSpec field.*'ranks'"):
        RunSpec.from_yaml("ranks: 8\n")


def test_yaml_not_a_mapping():
    with pytest.raises(ValueError, match="must be a mapping"):
        RunSpec.from_yaml("- a\n- b\n")


def test_comma_separated_targets():
    assert RunSpec(target_modules="query, value").target_modules == ["query", "value"]


def test_levels_subset_reaches_config():
    config = RunSpec(levels=("global", "layer")).msplora_config()
    assert config.level_names == ("global", "layer")
