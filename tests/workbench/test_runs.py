"""Tests for workbench.runs: the run table, one run's view, stop/resume and downloads, on a real store."""

import zipfile

from workbench import runs


def test_runs_table_lists_every_run(engine, record_run, tiny_spec):
    first = record_run(engine, tiny_spec(name="first"))
    second = record_run(engine, tiny_spec(name="second", method="lora"), status="running")
    table = runs.runs_table(engine)
    assert list(table.columns) == runs.RUN_COLUMNS
    assert set(table["id"]) == {first, second}
    row = table.set_index("id").loc[first]
    assert row["status"] == "completed"
    assert row["progress"] == "100%"
    assert row["step"] == "20/20"
    assert table.set_index("id").loc[second, "method"] == "lora"


def test_runs_table_empty_store(engine):
    table = runs.runs_table(engine)
    assert table.empty
    assert list(table.columns) == runs.RUN_COLUMNS


def test_run_view_charts_from_store(engine, record_run, tiny_spec):
    run_id = record_run(engine, tiny_spec(name="charted"), accuracy=0.75)
    view = runs.run_view(engine, run_id, smoothing=0.5, log_y=True)
    assert "charted" in view.summary
    assert "accuracy 0.75" in view.summary
    assert [trace.name for trace in view.loss.data] == ["train loss", "train loss (smoothed 0.5)", "eval loss"]
    assert len(view.loss.data[0].x) == 20
    assert view.loss.layout.yaxis.type == "log"
    assert [trace.name for trace in view.eval_metrics.data] == ["accuracy"]
    assert len(view.learning_rate.data[0].x) == 20
    # Budget of MSPLoRA 8/4/2 on MiniLM query and value: global 2 * 8 * 768 (formula r * (in + out)).
    assert {trace.name: trace.y[0] for trace in view.budget.data}["global"] == 12288
    assert "step 20" in view.spectra.layout.title.text
    assert list(view.redundancy.data[0].y) == [0.3, 0.3]


def test_run_view_shows_failure_error(engine, record_run, tiny_spec):
    run_id = record_run(engine, tiny_spec(), status="failed", error="RuntimeError: loss is nan at step 3")
    view = runs.run_view(engine, run_id)
    assert "failed" in view.summary
    assert "RuntimeError: loss is nan at step 3" in view.summary


def test_run_view_without_selection(engine):
    view = runs.run_view(engine, None)
    assert view.summary == "Select a run in the table."
    unknown = runs.run_view(engine, "no-such-run")
    assert "not found" in unknown.summary


def test_stop_queued_run_cancels(engine, tiny_spec):
    run_id = engine.submit(tiny_spec(), start_worker=False)
    message = runs.stop_run(engine, run_id)
    assert "Asked run" in message
    assert engine.status(run_id).status == "cancelled"


def test_resume_cancelled_run_requeues(engine, tiny_spec):
    run_id = engine.submit(tiny_spec(), start_worker=False)
    runs.stop_run(engine, run_id)
    engine.executor.submit = lambda run_id: None  # no worker in unit tests
    message = runs.resume_run(engine, run_id)
    assert "Queued run" in message
    assert "restarts from step 0" in message  # it never trained, so it has no checkpoint
    assert engine.status(run_id).status == "queued"

    (engine.store.run_dir(run_id) / "checkpoints" / "checkpoint-20").mkdir(parents=True)
    runs.stop_run(engine, run_id)
    assert "checkpoint at step 20" in runs.resume_run(engine, run_id)


def test_stop_without_selection(engine):
    assert runs.stop_run(engine, None) == "Select a run first."
    assert runs.resume_run(engine, "") == "Select a run first."


def test_artifact_files_zip_folders(engine, tmp_path, record_run, tiny_spec):
    run_id = record_run(engine, tiny_spec())
    adapter = engine.store.run_dir(run_id) / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    files = runs.artifact_files(engine, run_id, tmp_path / "downloads")
    names = sorted(path.rsplit("/", 1)[-1] for path in files)
    assert names == [f"{run_id}-adapter.zip", f"{run_id}-spec.yaml"]
    archive = next(path for path in files if path.endswith(".zip"))
    assert zipfile.ZipFile(archive).namelist() == ["adapter_config.json"]


def test_view_signature_changes_with_rows(engine, record_run, tiny_spec):
    run_id = record_run(engine, tiny_spec(), status="running")
    before = runs.view_signature(engine, run_id)
    assert before == runs.view_signature(engine, run_id)
    engine.store.add_metrics(run_id, [(21, "train", "loss", 0.1)])
    after = runs.view_signature(engine, run_id)
    assert after != before
    engine.store.finish(run_id, "completed")
    assert runs.view_signature(engine, run_id) != after
    assert runs.view_signature(engine, None) == ""


def test_run_view_log_strips_ansi_codes(engine, record_run, tiny_spec, monkeypatch):
    run_id = record_run(engine, tiny_spec(name="coloured"))
    # transformers prints its load report in bold, as ESC[1m ... ESC[0m.
    coloured = "\x1b[1mBertForSequenceClassification LOAD REPORT\x1b[0m\n\x1b[31mmissing\x1b[0m keys"
    monkeypatch.setattr(engine, "log", lambda _run_id: coloured)
    view = runs.run_view(engine, run_id)
    assert view.log == "BertForSequenceClassification LOAD REPORT\nmissing keys"
