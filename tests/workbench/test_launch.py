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
        ({"rank": 8.5}, "Rank \\(global level\\) must be a whole number"),
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
    assert choices == ["query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense"]
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


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"max_steps": 0}, "Steps must be at least 1"),
        ({"batch_size": 0}, "Batch size must be at least 1"),
        ({"rank_decay": 0.5}, "Rank decay must be at least 1"),
        ({"rank": 0}, "Rank (global level) must be at least 1"),
        ({"eval_steps": None}, "Evaluate every (steps) is empty"),
    ],
)
def test_preview_names_number_field(overrides, message):
    result = launch.preview(form(**overrides))
    assert result.error.startswith(message)
    assert not result.can_launch


@pytest.mark.parametrize(
    ("overrides", "label", "library_message"),
    [
        ({"target_modules": []}, "Target modules", "target_modules=[] is empty"),
        ({"levels": []}, "Levels on", "levels=() is empty"),
        ({"learning_rate": -1.0}, "Learning rate", "learning_rate=-1.0 is out of range"),
    ],
)
def test_preview_prefixes_field_label(overrides, label, library_message):
    error = launch.preview(form(**overrides)).error
    assert error.startswith(f"{label}: {library_message}")


def test_preview_missing_model_folder_first(tmp_path):
    # The layout empties the targets of an unreadable model, so the preview gets no targets as well.
    missing = tmp_path / "nonexistent-model"
    result = launch.preview(form(model=str(missing), target_modules=[]))
    assert result.error.startswith(f"Model folder '{missing}' not found")
    assert "Bundled models: minilm-l6" in result.error
    assert "target_modules" not in result.error
    assert not result.can_launch


def test_target_choices_missing_folder_lists_bundled(tmp_path):
    _, _, error = launch.target_choices(str(tmp_path / "nowhere"))
    assert "Bundled models: minilm-l6" in error


def test_preview_empty_dataset_blocks_launch():
    result = launch.preview(form(dataset=None))
    assert result.error.startswith("Dataset is empty")
    assert not result.can_launch


def _gradio_upload(tmp_path, name, content: bytes):
    # Gradio keeps each upload in a folder named by the file's SHA-256.
    folder = tmp_path / "042657eecc51f6b2aa0f1c55493cb7e8ad6f26b38a35f7cdc1d0cf4b2c55493c"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_bytes(content)
    return path


def test_receive_upload_rejects_latin1(tmp_path):
    uploads = tmp_path / "uploads"
    source = _gradio_upload(tmp_path, "reviews.csv", b"caf\xe9,label\nbon,1\n")
    received = launch.receive_upload(source, uploads_dir=uploads)
    assert not received.accepted
    assert received.columns == []
    # "caf" is 3 bytes, so the latin-1 e-acute (0xe9) sits at position 3.
    assert received.message == (
        "The file 'reviews.csv' is not valid UTF-8 (byte 0xe9 at position 3); save it as UTF-8 and upload again."
    )
    assert list(uploads.iterdir()) == []


def test_receive_upload_short_name(tmp_path):
    source = _gradio_upload(tmp_path, "nolabel.csv", b"sentence,note\ngood,x\n")
    received = launch.receive_upload(source, uploads_dir=tmp_path / "uploads")
    assert received.accepted
    assert received.path.name == "042657ee-nolabel.csv"
    assert received.columns == ["sentence", "note"]


def test_preview_explains_missing_label_column(tmp_path):
    source = _gradio_upload(tmp_path, "nolabel.csv", b"sentence,note\ngood,x\nbad,y\n")
    stored = launch.receive_upload(source, uploads_dir=tmp_path / "uploads").path
    result = launch.preview(form(dataset=str(stored)))
    assert result.error.startswith("Label column: Could not find a label column among ['sentence', 'note']")
    assert not result.can_launch
    assert launch.preview(form(dataset=str(stored), label_column="note")).error == ""


def test_submit_rejects_missing_label_column(engine, tmp_path):
    source = _gradio_upload(tmp_path, "nolabel.csv", b"sentence,note\ngood,x\n")
    stored = launch.receive_upload(source, uploads_dir=tmp_path / "uploads").path
    message, run_id = launch.submit(engine, form(dataset=str(stored)))
    assert run_id is None
    assert message.startswith("**Not launched.** Label column:")
    assert engine.runs() == []


def test_field_error_maps_engine_column_error():
    error = ValueError("The label column 'stars' is not in the data; its columns are ['text'].")
    assert launch.field_error(error).startswith("Label column: The label column 'stars'")


def test_msplora_only_controls():
    assert launch.msplora_only("msplora")
    assert not launch.msplora_only("lora")
    assert set(launch.MSPLORA_ONLY_FIELDS) <= set(launch.FORM_FIELDS)
