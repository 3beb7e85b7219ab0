"""Executors: what turns a queued run id into a running fine-tune.

The interface is three calls on run ids (submit, poll, cancel), so that the
queue in the store stays the single source of truth and another executor can
take over dispatch without changing `Engine`.

`LocalExecutor` makes sure a worker process serves the store. A worker is
live when its heartbeat row is fresh and its pid exists on this host. A file
lock around the check-and-start keeps two submitters from starting two workers.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Protocol

import filelock
import psutil

from .store import RunStore

logger = logging.getLogger(__name__)

# A worker whose heartbeat is older than this is dead or hung. Workers beat every
# HEARTBEAT_INTERVAL_S; the spawner writes the first beat, which must cover the
# worker's start-up (importing torch and transformers takes seconds on a busy CPU).
HEARTBEAT_INTERVAL_S = 2.0
HEARTBEAT_STALE_S = 60.0
SPAWN_LOCK_NAME = "worker-spawn.lock"
WORKER_LOG_NAME = "worker.log"


class Executor(Protocol):
    """Dispatches queued runs. The store keeps the queue; executors only act on run ids."""

    # TODO: a Ray executor that hands queued run ids to a Ray cluster (one task per run,
    # reporting into the same store) for workshops and sweeps larger than one machine.

    def submit(self, run_id: str) -> None:
        """Make sure the queued run will be picked up."""

    def poll(self, run_id: str) -> str:
        """Return the run's status."""

    def cancel(self, run_id: str) -> None:
        """Request that the run stop; a queued run is cancelled at once."""


class LocalExecutor:
    """Runs the queue in worker processes on this machine, starting one when none is live.

    NOTE: the auto-started worker runs every run, one at a time, on the best device. To
    use a second GPU, start another worker yourself with `CUDA_VISIBLE_DEVICES` set, e.g.
    `CUDA_VISIBLE_DEVICES=1 msplora worker --device cuda`; workers share the queue safely.
    """

    def __init__(self, store: RunStore, *, idle_exit_s: float | None = 600.0):
        self.store = store
        self.idle_exit_s = idle_exit_s  # an auto-started worker exits after this long with an empty queue

    def submit(self, run_id: str) -> None:
        self.ensure_worker()

    def poll(self, run_id: str) -> str:
        return self.store.get_run(run_id)["status"]

    def cancel(self, run_id: str) -> None:
        self.store.request_cancel(run_id)

    def live_workers(self) -> list[int]:
        """Return the pids of workers with a fresh heartbeat and a live process on this host."""
        return live_worker_pids(self.store)

    def ensure_worker(self) -> int:
        """Return the pid of a live worker, starting a detached one if there is none."""
        lock = filelock.FileLock(str(self.store.root / SPAWN_LOCK_NAME), timeout=60)
        with lock:
            live = self.live_workers()
            if live:
                return live[0]
            pid = start_worker(self.store.root, idle_exit_s=self.idle_exit_s)
            # the first beat, written before the lock is released, marks the worker live
            self.store.heartbeat(pid, device=None)
            logger.info("started worker pid %d for store %s", pid, self.store.root)
            return pid

    def stop_workers(self, timeout: float = 30.0) -> list[int]:
        """Send SIGTERM to every live worker and wait for them to exit; return their pids.

        A worker that is running a fine-tune stops it at the next step and marks
        it interrupted, so `Engine.resume` can continue it later.
        """
        pids = self.live_workers()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        deadline = time.monotonic() + timeout
        for pid in pids:
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if pid_alive(pid):
                logger.warning("worker pid %d did not exit within %.0f s of SIGTERM", pid, timeout)
        return pids


def start_worker(store_root: Path, *, idle_exit_s: float | None = None) -> int:
    """Start `python -m msplora.engine.worker` in its own session, detached from the caller."""
    command = [sys.executable, "-m", "msplora.engine.worker", "--store", str(store_root)]
    if idle_exit_s is not None:
        command += ["--idle-exit", str(idle_exit_s)]
    with open(Path(store_root) / WORKER_LOG_NAME, "ab") as log_file:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives the submitter and its terminal's signals
            close_fds=True,
        )
    return process.pid


def live_worker_pids(store: RunStore) -> list[int]:
    """Return pids of workers whose heartbeat is fresh and whose process is alive here."""
    now = time.time()
    hostname = socket.gethostname()
    live = []
    for worker in store.workers():
        fresh = now - worker["heartbeat_at"] < HEARTBEAT_STALE_S
        if worker["hostname"] == hostname and fresh and pid_alive(worker["pid"]):
            live.append(worker["pid"])
    return live


def interrupt_orphaned_runs(store: RunStore) -> list[str]:
    """Mark runs left `running` by a dead worker as interrupted; return their ids.

    A worker on this host is dead when its process is gone. A worker on another
    host is dead when its heartbeat is older than HEARTBEAT_STALE_S (60 s), since
    its pid cannot be checked from here. A run whose worker has no row at all is
    orphaned too, because a worker writes its row before it claims a run and
    deletes it only on exit. The cost is one query plus one process lookup per
    running run.

    NOTE: a hung worker on this host whose process still exists keeps its run
    `running`; stop it with `Engine.stop_workers` or kill it.
    """
    hostname = socket.gethostname()
    now = time.time()
    interrupted = []
    for run in store.running_runs():
        pid = run["worker_pid"]
        if run["hostname"] is None:
            dead = True
        elif run["hostname"] == hostname:
            dead = pid is None or not pid_alive(pid)
        else:
            dead = now - run["heartbeat_at"] > HEARTBEAT_STALE_S
        if not dead:
            continue
        error = (
            f"the worker process (pid {pid}) stopped during the run at step {run['step']} (killed or crashed); "
            f"resume it with `msplora resume {run['id']}` or the app's Resume run button: it continues from its "
            "last checkpoint, or restarts from step 0 when none was saved"
        )
        if store.interrupt_run(run["id"], pid, error):
            logger.warning("run %s was left running by dead worker pid %s; marked interrupted", run["id"], pid)
            interrupted.append(run["id"])
    return interrupted


def pid_alive(pid: int) -> bool:
    """Return True for a running process; a zombie (exited, not yet reaped) counts as dead."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
