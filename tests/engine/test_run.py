"""Real runs through a real worker process: metrics, spectra, budget, artifacts."""

import pytest


def test_msplora_run_completes_with_metrics(engine, make_spec):
    run_id = engine.submit(make_spec())
    status = engine.wait(run_id, timeout=180)
    assert status.status == "completed", engine.log(run_id)
    assert status.device == "cpu"  # the device the run trained on, not the worker's "auto"
    assert status.step == 6
    assert status.progress == 1.0

    metrics = engine.metrics(run_id)
    train_loss = metrics[(metrics.kind == "train") & (metrics.name == "loss")]
    assert list(train_loss.step) == [2, 4, 6]  # logging_steps=2 over max_steps=6
    assert {"accuracy", "loss"} <= set(metrics[metrics.kind == "eval"].name)
    assert {"samples_per_s", "elapsed_s", "peak_memory_mb"} <= set(metrics[metrics.kind == "system"].name)

    budget = engine.budget(run_id)
    # Ranks 4/2/1 on query and value (32 x 32, so r x 64 per adapter) of 2 blocks in 2 mid groups.
    # global: 2 roles x 4 x 64; mid: 2 roles x 2 groups x 2 x 64; layer: 2 roles x 2 blocks x 1 x 64.
    assert budget["by_level"] == {"global": 512, "mid": 512, "layer": 256}

    spectra = engine.spectra(run_id)
    assert [s["step"] for s in spectra] == [0, 3, 6]  # start, every spectra_steps=3
    assert {a["level"] for a in spectra[-1]["spectra"]["adapters"]} == {"global", "mid", "layer"}

    artifacts = engine.artifacts(run_id)
    assert {"adapter", "peft", "metrics_csv", "spec", "log"} <= set(artifacts)


def test_queue_runs_fifo_lora_and_staged(engine, make_spec):
    ids = [
        engine.submit(make_spec(name="first")),
        engine.submit(make_spec(name="lora", method="lora")),
        engine.submit(make_spec(name="staged", staged=True)),
    ]
    statuses = [engine.wait(run_id, timeout=240) for run_id in ids]
    assert [s.status for s in statuses] == ["completed"] * 3, [s.error for s in statuses]
    started = [s.started_at for s in statuses]
    assert started == sorted(started)
    assert [run.id for run in engine.runs()] == ids[::-1]  # newest first

    lora_budget = engine.budget(ids[1])
    # PEFT LoRA r=4 on query and value (32 x 32) of 2 blocks: 4 targets x 4 x (32 + 32)
    assert lora_budget["by_level"] == {"lora": 1024}
    assert lora_budget["head"] > 0  # the classifier is trained in full
    lora_spectra = engine.spectra(ids[1])[-1]["spectra"]
    assert len(lora_spectra["adapters"]) == 4
    assert max(lora_spectra["adapters"][0]["singular_values"]) > 0  # B moved away from zero
    assert "adapter" in engine.artifacts(ids[1])

    staged_log = engine.log(ids[2])
    assert "trains the global level" in staged_log
    assert "trains the layer level" in staged_log


def _submit_from_process(store_dir, spec_dict, count, queue):
    from msplora.engine import Engine

    engine = Engine(store_dir)
    queue.put([engine.submit(spec_dict) for _ in range(count)])


def test_two_processes_submit_at_once(tmp_path, make_spec):
    import multiprocessing

    from msplora.engine import Engine

    store_dir = tmp_path / "runs"
    spec = make_spec(max_steps=1000, save_steps=1000).to_dict()
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    processes = [context.Process(target=_submit_from_process, args=(store_dir, spec, 3, queue)) for _ in range(2)]
    for process in processes:
        process.start()
    submitted = [run_id for _ in processes for run_id in queue.get(timeout=120)]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0

    engine = Engine(store_dir)
    try:
        assert sorted(run.id for run in engine.runs()) == sorted(submitted)
        assert len(set(submitted)) == 6
        assert len(engine.workers()) == 1  # the spawn lock let only one submitter start a worker
    finally:
        engine.stop_workers(timeout=30)
    assert {run.status for run in engine.runs()} <= {"queued", "interrupted"}  # none left running
