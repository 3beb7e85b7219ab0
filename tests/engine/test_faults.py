"""Runs that go wrong: cancel, crash, non-finite loss, a killed worker, and resume."""

import os
import signal
import time

import pytest


def _wait_for(predicate, timeout, interval=0.05):
    """Poll `predicate` until it returns a true value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout} s")


def _cancel_promptly(engine, run_id, wait_timeout):
    """Cancel `run_id`, wait for it to end, and check that it ended cancelled within 10 s of the request."""
    requested = time.monotonic()
    engine.cancel(run_id)
    status = engine.wait(run_id, timeout=wait_timeout)
    assert status.status == "cancelled"
    assert time.monotonic() - requested < 10
    return status


def test_cancel_stops_within_seconds(engine, make_spec):
    run_id = engine.submit(make_spec(max_steps=5000, save_steps=5000))
    _wait_for(lambda: engine.status(run_id).step >= 3, timeout=120)

    status = _cancel_promptly(engine, run_id, wait_timeout=30)
    assert status.step < 5000
    adapter = engine.artifacts(run_id)["adapter"]
    assert (adapter / "adapter_model.safetensors").exists()
    assert (adapter / "msplora_config.json").exists()


def test_cancel_queued_run(engine, make_spec):
    run_id = engine.submit(make_spec(), start_worker=False)
    engine.cancel(run_id)
    assert engine.status(run_id).status == "cancelled"


def test_failures_recorded_and_queue_continues(engine, make_spec, tmp_path, tiny_csv):
    # Every label is 1: the header passes the check before queueing, and the worker's
    # full read finds a single class.
    rows = tiny_csv.read_text().splitlines()
    one_class = tmp_path / "one_class.csv"
    one_class.write_text("\n".join([rows[0]] + [row[:-1] + "1" for row in rows[1:]]) + "\n")
    crash = engine.submit(make_spec(dataset=str(one_class)))
    diverge = engine.submit(make_spec(max_steps=10, learning_rate=1e30, logging_steps=1))
    healthy = engine.submit(make_spec())

    assert engine.wait(healthy, timeout=240).status == "completed"
    crashed = engine.status(crash)
    assert crashed.status == "failed"
    assert "single class" in crashed.error
    assert "single class" in engine.log(crash)

    diverged = engine.status(diverge)
    assert diverged.status == "failed"
    assert "not finite" in diverged.error or "training loss is nan" in diverged.error
    assert diverged.error.split(":")[0] in engine.log(diverge)


def test_killed_worker_run_resumes_from_checkpoint(engine, make_spec):
    run_id = engine.submit(make_spec(max_steps=40, save_steps=10, logging_steps=5, eval_steps=1000))
    checkpoints = engine.store.run_dir(run_id) / "checkpoints"
    _wait_for(lambda: engine.status(run_id).step >= 12, timeout=180)
    assert any(checkpoints.glob("checkpoint-*"))

    pid = engine.workers()[0]
    os.kill(pid, signal.SIGKILL)
    _wait_for(lambda: not engine.workers(), timeout=30)

    # reading the status notices the dead worker; no new worker is started for that
    killed = _wait_for(lambda: (s := engine.status(run_id)).status == "interrupted" and s, timeout=5)
    assert engine.workers() == []
    assert f"pid {pid}" in killed.error
    assert f"msplora resume {run_id}" in killed.error
    killed_at = killed.step

    engine.resume(run_id)  # starts a fresh worker, which removes the dead worker's row
    _wait_for(lambda: pid not in [worker["pid"] for worker in engine.store.workers()], timeout=120)
    status = engine.wait(run_id, timeout=240)
    assert status.status == "completed", status.error
    assert status.step == 40
    log = engine.log(run_id)
    assert "resuming from" in log
    assert "checkpoint-" in log
    resumed_from = int(log.split("checkpoint-")[-1].split()[0])
    assert 10 <= resumed_from <= killed_at
    losses = engine.metrics(run_id).query("kind == 'train' and name == 'loss'")
    assert losses.step.max() == 40


def test_cancel_abandons_long_evaluation(engine, make_spec, tmp_path, tiny_csv):
    # 40 copies of the 120 sentences, 80% of them in the eval split: 3,840 eval examples,
    # hundreds of prediction steps, so the evaluation at step 1 is still running at cancel.
    rows = tiny_csv.read_text().splitlines()
    big_csv = tmp_path / "big.csv"
    big_csv.write_text("\n".join([rows[0]] + rows[1:] * 40) + "\n")
    run_id = engine.submit(
        make_spec(dataset=str(big_csv), eval_fraction=0.8, max_steps=2, eval_steps=1, logging_steps=1)
    )
    _wait_for(lambda: engine.status(run_id).step >= 1, timeout=120)

    _cancel_promptly(engine, run_id, wait_timeout=60)
    assert engine.metrics(run_id).query("kind == 'eval'").empty  # the evaluation never finished
    assert "evaluation abandoned" in engine.log(run_id)


def test_cancel_before_first_checkpoint_resumes(engine, make_spec):
    # save_steps is above max_steps, so only the stop itself can leave a checkpoint. 400 steps leave
    # the cancel (progress is written every second, cancel read every half second) ample time to land
    # even on an idle machine, where this tiny model trains tens of steps per second.
    run_id = engine.submit(make_spec(max_steps=400, save_steps=1000, logging_steps=10, eval_steps=1000))
    _wait_for(lambda: engine.status(run_id).step >= 5, timeout=180)
    engine.cancel(run_id)
    cancelled = engine.wait(run_id, timeout=30)
    assert cancelled.status == "cancelled"
    stopped_at = cancelled.step
    assert 5 <= stopped_at < 400
    assert engine.checkpoint_step(run_id) == stopped_at
    assert (engine.store.run_dir(run_id) / "checkpoints" / f"checkpoint-{stopped_at}").is_dir()

    engine.resume(run_id)
    status = engine.wait(run_id, timeout=600)
    assert status.status == "completed", status.error
    assert status.step == 400
    assert f"resuming from {engine.store.run_dir(run_id) / 'checkpoints' / f'checkpoint-{stopped_at}'}" in engine.log(
        run_id
    )
    # a restart from step 0 would log steps 10, 20, ... a second time
    loss_steps = list(engine.metrics(run_id).query("kind == 'train' and name == 'loss'").step)
    assert loss_steps == sorted(set(loss_steps))
    assert loss_steps[-1] == 400
