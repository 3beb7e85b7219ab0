"""The `msplora` command line, called in-process through `main(argv)`."""

import json

import pytest
from transformers import BertConfig

from msplora.cli import main
from msplora.engine import Engine
from tests.engine.conftest import make_spec, tiny_csv, tiny_model_dir  # noqa: F401 - fixtures


def test_budget_for_preset(capsys):
    assert main(["budget", "--model", "minilm-l6", "--targets", "query", "value"]) == 0
    out = capsys.readouterr().out
    # r x (384 + 384) per adapter, 2 roles: global 1 x 8, mid 3 groups x 4, layer 6 blocks x 2
    assert "12,288" in out
    assert out.count("18,432") == 2
    assert "49,152" in out
    # LoRA r=8 on 6 blocks x 2 roles: 12 x 8 x 768
    assert "73,728" in out
    assert "0.667" in out


def test_budget_from_config_json(tmp_path, capsys):
    path = tmp_path / "config.json"
    config = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    path.write_text(json.dumps(config.to_dict()))
    assert main(["budget", "--config-json", str(path), "--rank", "4", "--groups", "2"]) == 0
    out = capsys.readouterr().out
    # 2 roles x 4 x 64 (global) = 512; LoRA r=4 on 4 targets: 4 x 4 x 64 = 1,024
    assert "512" in out
    assert "1,024" in out


def test_budget_unknown_preset_fails(capsys):
    assert main(["budget", "--model", "no-such-model"]) == 1
    assert "no-such-model" in capsys.readouterr().err


def test_assets_lists_registry(capsys):
    assert main(["assets"]) == 0
    out = capsys.readouterr().out
    assert "minilm-l6" in out
    assert "movie-sentences" in out


def test_unknown_run_fails_cleanly(tmp_path, capsys):
    assert main(["show", "nope", "--store", str(tmp_path)]) == 1
    assert "not found" in capsys.readouterr().err


def test_missing_spec_file(tmp_path, capsys):
    assert main(["train", str(tmp_path / "missing.yaml"), "--store", str(tmp_path)]) == 1
    assert "not found" in capsys.readouterr().err


def test_invalid_spec_file(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("method: adalora\n")
    assert main(["train", str(path), "--store", str(tmp_path)]) == 2
    assert "method='adalora' is invalid" in capsys.readouterr().err


def test_invalid_yaml_names_line(tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text("model: minilm-l6\nrank: 8\n  max_steps: 10\n")  # line 3 is indented under a scalar
    assert main(["train", str(path), "--store", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: invalid YAML in {path}, line 3: mapping values are not allowed here")
    assert "Traceback" not in err


def test_train_rejects_bad_data_before_queueing(tmp_path, make_spec, capsys):
    spec_path = tmp_path / "spec.yaml"
    make_spec(label_column="no_such_column").to_yaml(spec_path)
    store = tmp_path / "runs"
    assert main(["train", str(spec_path), "--store", str(store)]) == 2
    captured = capsys.readouterr()
    assert "'no_such_column' is not in the data" in captured.err
    assert "Traceback" not in captured.err
    assert captured.out == ""
    assert Engine(store).runs() == []


def test_train_without_wait_hints_show(tmp_path, make_spec, capsys):
    store = tmp_path / "runs"
    spec_path = tmp_path / "spec.yaml"
    make_spec().to_yaml(spec_path)
    try:
        assert main(["train", str(spec_path), "--store", str(store)]) == 0
        captured = capsys.readouterr()
        run_id = captured.out.strip()
        assert Engine(store).status(run_id).id == run_id  # stdout contains the id alone
        assert f"msplora show {run_id}" in captured.err
    finally:
        Engine(store).stop_workers(timeout=30)


def test_resume_without_checkpoint_says_restart(tmp_path, make_spec, capsys):
    store = tmp_path / "runs"
    engine = Engine(store)
    run_id = engine.submit(make_spec(), start_worker=False)
    engine.cancel(run_id)  # cancelled while queued: no step ran, no checkpoint
    try:
        assert main(["resume", run_id, "--store", str(store)]) == 0
        assert "restarts from step 0" in capsys.readouterr().out
    finally:
        engine.stop_workers(timeout=30)


def test_cancel_unknown_run_hints_runs(tmp_path, capsys):
    assert main(["cancel", "nope", "--store", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "not found" in err
    assert "list runs with `msplora runs`" in err


class _ClosedPipe:
    """A stdout whose reader has gone, as after `msplora runs | head`."""

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        raise BrokenPipeError(32, "Broken pipe")


def test_closed_pipe_is_quiet(tmp_path, make_spec, monkeypatch, capsys):
    store = tmp_path / "runs"
    run_id = Engine(store).submit(make_spec(), start_worker=False)
    monkeypatch.setattr("sys.stdout", _ClosedPipe())
    assert main(["runs", "--store", str(store)]) == 141
    assert main(["show", run_id, "--store", str(store)]) == 141
    assert capsys.readouterr().err == ""


def test_budget_default_targets_fit_llama(capsys):
    assert main(["budget", "--model", "llama-2-70b"]) == 0
    out = capsys.readouterr().out
    assert "targets: q_proj v_proj" in out
    # Llama-2-70b (hidden 8192, 80 blocks, 8 key/value heads of 128): LoRA r=8 on q_proj (8192 -> 8192)
    # and v_proj (8192 -> 1024) is 80 x 8 x ((8192 + 8192) + (8192 + 1024)) parameters
    assert "16,384,000" in out


def test_budget_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["budget", "--help"])
    out = capsys.readouterr().out
    assert "(default: 8)" in out
    assert "(default: 2.0)" in out
    assert "(default: 3)" in out
    assert "query and" in out


def test_train_wait_runs_show(tmp_path, make_spec, capsys):
    store = tmp_path / "runs"
    spec_path = tmp_path / "spec.yaml"
    make_spec(name="cli-run").to_yaml(spec_path)
    try:
        assert main(["train", str(spec_path), "--wait", "--timeout", "240", "--store", str(store)]) == 0
        run_id = capsys.readouterr().out.split()[0]

        assert main(["runs", "--store", str(store)]) == 0
        listing = capsys.readouterr().out
        assert run_id in listing
        assert "completed" in listing

        assert main(["show", run_id, "--store", str(store)]) == 0
        shown = capsys.readouterr().out
        assert "status:   completed" in shown
        assert "accuracy" in shown
        assert "adapter:" in shown
        assert "\nmetrics_csv: " in shown  # a space after the longest file name

        assert main(["resume", run_id, "--store", str(store)]) == 1
        assert "only interrupted, cancelled or failed" in capsys.readouterr().err
    finally:
        Engine(store).stop_workers(timeout=30)
