"""Tests for workbench.launch: the form, its preview, spec text, submit and uploads."""

import pandas as pd
import pytest

from workbench import launch
from workbench.launch import LaunchForm


def form(**overrides):
    values = dict(target_modules=["query", "value"])
    values.update(overrides)
    return LaunchForm(**values)


def test_form_fields_match_controls_order():
    assert launch.FORM_FIELDS[:4] == ("model", "dataset", "task", "method")
    assert LaunchForm.from_values(*[getattr(LaunchForm(), name) for name in launch.FORM_FIELDS]) == LaunchForm()


def test_build_spec_converts_gradio_floats():
    spec = launch.build_spec(form(rank=16.0, mid_groups=2.0, group_boundaries="2, 4", name=" my run "))
    assert spec.rank == 16
    assert isinstance(spec.rank, int)
    assert spec.group_boundaries == [2, 4]
    assert spec.name == "my run"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"rank": 8.5}, "rank=8.5 is invalid"),
        ({"group_boundaries": "2, x"}, "Invalid group boundaries"),
        ({"rank": 2, "rank_decay": 4.0}, "rank would be 2/4.0\\^1 < 1"),
        ({"target_modules": []}, "target_modules"),
        ({"learning_rate": 0.0}, "learning_rate"),
    ],
)
def test_build_spec_rejects_invalid(overrides, message):
    with pytest.raises(ValueError, match=message):
        launch.build_spec(form(**overrides))


def test_preview_minilm_pyramid_and_budget():
    result = launch.preview(form())
    assert result.error == ""
    assert result.can_launch
    levels = {trace.name: len(trace.x) for trace in result.pyramid.data}
    # MiniLM-L6 has 6 blocks: 1 global bar, 3 mid groups, 6 per-block bars.
    assert levels == {"global": 1, "mid": 3, "layer": 6}
    heights = {trace.name: trace.y[0] for trace in result.budget.data}
    # Formula r * (in + out), hidden 384, roles query and value, 6 blocks.
    assert heights["global"] == 2 * 8 * 768
    assert heights["LoRA"] == 2 * 6 * 8 * 768
    assert "Estimate per step" in result.estimate
    assert "6 blocks" in result.estimate


def test_preview_explains_too_many_groups():
    result = launch.preview(form(mid_groups=9))
    assert "only 6 adapted blocks" in result.error
    assert not result.can_launch


def test_preview_explains_unknown_target():
    result = launch.preview(form(target_modules=["q_proj"]))
    assert "matched no module" in result.error


def test_preview_lora_single_level():
    result = launch.preview(form(method="lora"))
    assert [trace.name for trace in result.pyramid.data] == ["layer"]
    assert [trace.name for trace in result.budget.data] == ["lora"]
    # Formula r * (in + out): rank 8, hidden 384, roles query and value, 6 blocks.
    assert result.budget.data[0].y[0] == 2 * 6 * 8 * 768


def test_spec_text_yaml_and_command():
    text, command = launch.spec_text(form(rank=4))
    assert "rank: 4" in text
    assert command == "msplora train spec.yaml --wait"
    invalid, no_command = launch.spec_text(form(rank=0))
    assert invalid.startswith("# Invalid settings")
    assert no_command == ""


def test_submit_queues_run(engine, monkeypatch):
    monkeypatch.setattr(engine, "submit", lambda spec, _submit=engine.submit: _submit(spec, start_worker=False))
    message, run_id = launch.submit(engine, form(name="queued-run"))
    assert run_id is not None
    assert "Queued run" in message
    status = engine.status(run_id)
    assert status.status == "queued"
    assert status.spec.name == "queued-run"


def test_submit_rejects_without_queueing(engine):
    message, run_id = launch.submit(engine, form(mid_groups=9))
    assert run_id is None
    assert message.startswith("**Not launched.**")
    assert engine.runs() == []


def test_target_choices_minilm():
    choices, defaults, error = launch.target_choices("minilm-l6")
    assert choices == ["query", "key", "value", "dense"]
    assert defaults == ["query", "value"]
    assert error == ""


def test_target_choices_missing_folder(tmp_path):
    choices, defaults, error = launch.target_choices(str(tmp_path / "nowhere"))
    assert choices == []
    assert "not found" in error


def test_target_choices_hub_id_offline():
    # HF_HUB_OFFLINE=1 is set in conftest, so the hub path fails at once with the offline advice.
    choices, defaults, error = launch.target_choices("someone/Model-1.5B")
    assert choices == []
    assert "Without hub access" in error


def test_target_choices_local_folder(tmp_path):
    from transformers import BertConfig

    config = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    config.save_pretrained(tmp_path)
    choices, defaults, error = launch.target_choices(str(tmp_path))
    assert error == ""
    assert defaults == ["query", "value"]


def test_store_upload_copies_into_cache(tmp_path):
    source_dir = tmp_path / "gradio-tmp-1234"
    source_dir.mkdir()
    source = source_dir / "data.csv"
    pd.DataFrame({"sentence": ["good", "bad"], "label": [1, 0]}).to_csv(source, index=False)
    uploads = tmp_path / "cache" / "uploads"

    stored = launch.store_upload(source, uploads_dir=uploads)
    assert stored.parent == uploads
    assert stored.read_bytes() == source.read_bytes()
    assert launch.file_columns(stored) == ["sentence", "label"]


def test_store_upload_rejects_other_types(tmp_path):
    source = tmp_path / "notes.txt"
    source.write_text("hello")
    with pytest.raises(ValueError, match="Unsupported file type '.txt'"):
        launch.store_upload(source, uploads_dir=tmp_path / "uploads")


def test_file_columns_jsonl_and_parquet(tmp_path):
    frame = pd.DataFrame({"text": ["a", "b"], "score": [0.5, -1.0]})
    frame.to_json(tmp_path / "data.jsonl", orient="records", lines=True)
    frame.to_parquet(tmp_path / "data.parquet")
    assert launch.file_columns(tmp_path / "data.jsonl") == ["text", "score"]
    assert launch.file_columns(tmp_path / "data.parquet") == ["text", "score"]
