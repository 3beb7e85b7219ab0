"""The SQLite run store: queue order, status changes, metrics, and several writing processes."""

import math
import multiprocessing

import pytest

from msplora.engine.store import RunStore


def _add(store, name):
    return store.add_run({"name": name}, name, max_steps=10)


def test_claim_is_fifo(tmp_path):
    store = RunStore(tmp_path)
    ids = [_add(store, f"run{i}") for i in range(3)]
    claimed = [store.claim_next(worker_pid=1, device="cpu")["id"] for _ in range(3)]
    assert claimed == ids
    assert store.claim_next(worker_pid=1, device="cpu") is None


def test_store_uses_wal(tmp_path):
    store = RunStore(tmp_path)
    with store._connect() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_cancel_queued_run_is_immediate(tmp_path):
    store = RunStore(tmp_path)
    run_id = _add(store, "a")
    assert store.request_cancel(run_id) == "cancelled"
    assert store.get_run(run_id)["status"] == "cancelled"
    assert store.claim_next(1, "cpu") is None


def test_cancel_running_run_sets_flag(tmp_path):
    store = RunStore(tmp_path)
    run_id = _add(store, "a")
    store.claim_next(1, "cpu")
    assert not store.cancel_requested(run_id)
    assert store.request_cancel(run_id) == "running"
    assert store.cancel_requested(run_id)


def test_dead_worker_runs_marked_interrupted(tmp_path):
    store = RunStore(tmp_path)
    mine, theirs = _add(store, "mine"), _add(store, "theirs")
    store.claim_next(worker_pid=100, device="cpu")
    store.claim_next(worker_pid=200, device="cpu")
    assert store.mark_interrupted(live_pids=[100]) == [theirs]
    assert store.get_run(mine)["status"] == "running"
    assert store.get_run(theirs)["status"] == "interrupted"


def test_requeue_goes_to_back_with_resume_flag(tmp_path):
    store = RunStore(tmp_path)
    first = _add(store, "first")
    store.claim_next(1, "cpu")
    store.finish(first, "interrupted")
    second = _add(store, "second")
    store.requeue(first)
    assert store.get_run(first)["resume"] == 1
    assert store.claim_next(1, "cpu")["id"] == second
    assert store.claim_next(1, "cpu")["id"] == first


def test_requeue_rejects_completed(tmp_path):
    store = RunStore(tmp_path)
    run_id = _add(store, "a")
    store.claim_next(1, "cpu")
    store.finish(run_id, "completed")
    with pytest.raises(ValueError, match="only interrupted, cancelled or failed"):
        store.requeue(run_id)


def test_unknown_run_raises_key_error(tmp_path):
    with pytest.raises(KeyError, match="not found"):
        RunStore(tmp_path).get_run("nope")


def test_metrics_spectra_budget_round_trip(tmp_path):
    store = RunStore(tmp_path)
    run_id = _add(store, "a")
    store.add_metrics(run_id, [(1, "train", "loss", 0.5), (1, "train", "grad_norm", math.nan)])
    store.add_spectra(run_id, 5, {"adapters": [{"singular_values": [1.0, 0.5]}]})
    store.set_budget(run_id, {"total": 12, "by_level": {"global": 12}})
    rows = store.metrics(run_id)
    assert [(r["step"], r["kind"], r["name"]) for r in rows] == [(1, "train", "loss"), (1, "train", "grad_norm")]
    assert rows[0]["value"] == 0.5
    assert rows[1]["value"] is None  # SQLite stores NaN as NULL
    assert store.spectra(run_id) == [{"step": 5, "spectra": {"adapters": [{"singular_values": [1.0, 0.5]}]}}]
    assert store.budget(run_id)["total"] == 12


def _submit_many(root, tag, count):
    store = RunStore(root)
    for i in range(count):
        store.add_run({"tag": tag, "i": i}, f"{tag}-{i}", max_steps=1)
        store.add_metrics("none", [(i, "train", "loss", float(i))])


def test_concurrent_writers_lose_nothing(tmp_path):
    context = multiprocessing.get_context("fork")  # the child only needs sqlite3; fork skips re-importing torch
    processes = [context.Process(target=_submit_many, args=(tmp_path, f"p{p}", 25)) for p in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    store = RunStore(tmp_path)
    runs = store.list_runs()
    assert len(runs) == 100
    assert len({run["queue_pos"] for run in runs}) == 100  # every run has its own queue position
    assert len(store.metrics("none")) == 100


def test_orphaned_runs_interrupted_by_host(tmp_path):
    import os
    import socket
    import subprocess
    import sys
    import time

    from msplora.engine.executor import HEARTBEAT_STALE_S, interrupt_orphaned_runs

    store = RunStore(tmp_path)
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    exited.wait()  # a pid of this host that no longer runs
    cases = {
        "alive_here": (os.getpid(), socket.gethostname(), 0.0),
        "dead_here": (exited.pid, socket.gethostname(), 0.0),
        "fresh_elsewhere": (exited.pid + 1_000_000, "other-host", 0.0),
        "stale_elsewhere": (exited.pid + 2_000_000, "other-host", HEARTBEAT_STALE_S + 1),
        "no_worker_row": (exited.pid + 3_000_000, None, 0.0),
    }
    ids = {}
    for name, (pid, hostname, age_s) in cases.items():
        ids[name] = _add(store, name)
        store.claim_next(worker_pid=pid, device="cpu")
        if hostname is not None:
            with store._transaction() as conn:
                conn.execute(
                    "INSERT OR REPLACE INTO workers (pid, hostname, device, started_at, heartbeat_at) "
                    "VALUES (?, ?, 'cpu', ?, ?)",
                    (pid, hostname, time.time() - age_s, time.time() - age_s),
                )

    interrupted = interrupt_orphaned_runs(store)
    assert sorted(interrupted) == sorted(ids[name] for name in ("dead_here", "stale_elsewhere", "no_worker_row"))
    assert store.get_run(ids["alive_here"])["status"] == "running"
    assert store.get_run(ids["fresh_elsewhere"])["status"] == "running"
    dead = store.get_run(ids["dead_here"])
    assert dead["status"] == "interrupted"
    assert f"pid {exited.pid}" in dead["error"]
    assert f"msplora resume {ids['dead_here']}" in dead["error"]
    assert interrupt_orphaned_runs(store) == []  # a second look changes nothing
