"""The run store: one SQLite database (WAL mode) plus one folder per run.

Several processes (the app, notebooks, the CLI, workers) open the same store
at once. Each operation opens its own short-lived connection and a short
transaction, so writers wait on the busy timeout and never see a half-written
row. Layout of a store folder:

    engine.db            runs, metrics, spectra, budgets, workers
    <run id>/spec.yaml   config snapshot
    <run id>/run.log     the run's log
    <run id>/adapter/    final adapter (save_pretrained); peft/ for an MSPLoRA export
    <run id>/checkpoints/checkpoint-<step>/   Trainer checkpoints for resume

Times are Unix seconds (float).
"""

from __future__ import annotations

import json
import re
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

STATUSES = ("queued", "running", "completed", "failed", "cancelled", "interrupted")
FINISHED = ("completed", "failed", "cancelled", "interrupted")
DB_NAME = "engine.db"
CHECKPOINTS_DIR = "checkpoints"  # inside a run folder; Trainer writes checkpoint-<step>/ here
BUSY_TIMEOUT_S = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    queue_pos INTEGER NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    spec TEXT NOT NULL,
    error TEXT,
    device TEXT,
    worker_pid INTEGER,
    step INTEGER NOT NULL DEFAULT 0,
    max_steps INTEGER,
    elapsed_s REAL,
    eta_s REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    resume INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS runs_queue ON runs (status, queue_pos);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    value REAL,
    time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS metrics_run ON metrics (run_id, step);
CREATE TABLE IF NOT EXISTS spectra (
    run_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    spectra TEXT NOT NULL,
    time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS spectra_run ON spectra (run_id, step);
CREATE TABLE IF NOT EXISTS budgets (
    run_id TEXT PRIMARY KEY,
    budget TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS workers (
    pid INTEGER PRIMARY KEY,
    hostname TEXT NOT NULL,
    device TEXT,
    started_at REAL NOT NULL,
    heartbeat_at REAL NOT NULL
);
"""


class RunStore:
    """Runs, their metrics, spectra and budgets in `root/engine.db`, files in `root/<run id>/`."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.db_path = self.root / DB_NAME
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)

    # ---- runs and the queue ----

    def add_run(self, spec: dict[str, Any], name: str, max_steps: int | None) -> str:
        """Insert a queued run at the end of the queue; return its id."""
        run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO runs (id, queue_pos, name, status, spec, max_steps, created_at) "
                "VALUES (?, (SELECT COALESCE(MAX(queue_pos), 0) + 1 FROM runs), ?, 'queued', ?, ?, ?)",
                (run_id, name, json.dumps(spec), max_steps, time.time()),
            )
        self.run_dir(run_id).mkdir(parents=True, exist_ok=True)
        return run_id

    def run_dir(self, run_id: str) -> Path:
        """Return the folder of one run (created by `add_run`)."""
        return self.root / run_id

    def get_run(self, run_id: str) -> dict[str, Any]:
        """Return one run's row as a dict; raise KeyError when the id is unknown."""
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise KeyError(f"run {run_id!r} not found in {self.root}; list runs with `msplora runs`")
        return dict(row)

    def list_runs(self) -> list[dict[str, Any]]:
        """Return every run, newest first."""
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM runs ORDER BY created_at DESC, queue_pos DESC").fetchall()
        return [dict(row) for row in rows]

    def claim_next(self, worker_pid: int, device: str) -> dict[str, Any] | None:
        """Mark the first queued run (FIFO) as running for this worker and return it."""
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT * FROM runs WHERE status = 'queued' ORDER BY queue_pos LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE runs SET status = 'running', worker_pid = ?, device = ?, error = NULL, "
                "started_at = COALESCE(started_at, ?), finished_at = NULL WHERE id = ?",
                (worker_pid, device, time.time(), row["id"]),
            )
        return self.get_run(row["id"])

    def update_progress(
        self, run_id: str, step: int, max_steps: int | None, elapsed_s: float, eta_s: float | None
    ) -> None:
        """Store the current step, step total, elapsed time and ETA of a running run."""
        with self._transaction() as conn:
            conn.execute(
                "UPDATE runs SET step = ?, max_steps = COALESCE(?, max_steps), elapsed_s = ?, eta_s = ? "
                "WHERE id = ?",
                (step, max_steps, elapsed_s, eta_s, run_id),
            )

    def set_device(self, run_id: str, device: str) -> None:
        """Record the device a run actually trains on (the claim records the worker's request)."""
        with self._transaction() as conn:
            conn.execute("UPDATE runs SET device = ? WHERE id = ?", (device, run_id))

    def finish(self, run_id: str, status: str, error: str | None = None) -> None:
        """Set a finished status (completed, failed, cancelled, interrupted) and the error text."""
        if status not in FINISHED:
            raise ValueError(f"status={status!r} is not a finished status; use one of {FINISHED}")
        with self._transaction() as conn:
            conn.execute(
                "UPDATE runs SET status = ?, error = ?, finished_at = ?, eta_s = NULL, "
                "cancel_requested = 0, resume = 0 WHERE id = ?",
                (status, error, time.time(), run_id),
            )

    def request_cancel(self, run_id: str) -> str:
        """Cancel a queued run at once, or flag a running one for its worker; return the status."""
        with self._transaction() as conn:
            row = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise KeyError(f"run {run_id!r} not found in {self.root}; list runs with `msplora runs`")
            if row["status"] == "queued":
                conn.execute(
                    "UPDATE runs SET status = 'cancelled', finished_at = ? WHERE id = ?",
                    (time.time(), run_id),
                )
                return "cancelled"
            if row["status"] == "running":
                conn.execute("UPDATE runs SET cancel_requested = 1 WHERE id = ?", (run_id,))
            return row["status"]

    def cancel_requested(self, run_id: str) -> bool:
        """Return True when a cancel was requested for this run."""
        with self._connect() as conn:
            row = conn.execute("SELECT cancel_requested FROM runs WHERE id = ?", (run_id,)).fetchone()
        return bool(row and row["cancel_requested"])

    def requeue(self, run_id: str) -> None:
        """Queue a finished run again at the end of the queue, to resume from its last checkpoint if any."""
        with self._transaction() as conn:
            row = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise KeyError(f"run {run_id!r} not found in {self.root}; list runs with `msplora runs`")
            if row["status"] in ("queued", "running", "completed"):
                raise ValueError(
                    f"run {run_id} is {row['status']}; only interrupted, cancelled or failed runs can resume"
                )
            conn.execute(
                "UPDATE runs SET status = 'queued', resume = 1, error = NULL, finished_at = NULL, "
                "cancel_requested = 0, worker_pid = NULL, "
                "queue_pos = (SELECT MAX(queue_pos) + 1 FROM runs) WHERE id = ?",
                (run_id,),
            )

    def mark_interrupted(self, live_pids: Iterable[int]) -> list[str]:
        """Mark runs left `running` by a worker that is no longer alive as interrupted."""
        live = set(live_pids)
        with self._transaction() as conn:
            rows = conn.execute("SELECT id, worker_pid FROM runs WHERE status = 'running'").fetchall()
            dead = [row["id"] for row in rows if row["worker_pid"] not in live]
            for run_id in dead:
                conn.execute(
                    "UPDATE runs SET status = 'interrupted', finished_at = ?, eta_s = NULL, "
                    "error = 'the worker process stopped during the run; resume it to continue' WHERE id = ?",
                    (time.time(), run_id),
                )
        return dead

    def running_runs(self) -> list[dict[str, Any]]:
        """Return the running runs with their worker's row: id, worker_pid, hostname, heartbeat_at, step.

        `hostname` and `heartbeat_at` are None when the worker has no row (it exited
        or another worker removed it as dead).
        """
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT runs.id, runs.worker_pid, runs.step, workers.hostname, workers.heartbeat_at "
                "FROM runs LEFT JOIN workers ON workers.pid = runs.worker_pid WHERE runs.status = 'running'"
            ).fetchall()
        return [dict(row) for row in rows]

    def interrupt_run(self, run_id: str, worker_pid: int | None, error: str) -> bool:
        """Mark a run interrupted if it is still running on `worker_pid`; return True when it was."""
        with self._transaction() as conn:
            cursor = conn.execute(
                "UPDATE runs SET status = 'interrupted', finished_at = ?, eta_s = NULL, error = ? "
                "WHERE id = ? AND status = 'running' AND worker_pid IS ?",
                (time.time(), error, run_id, worker_pid),
            )
        return cursor.rowcount > 0

    # ---- metrics, spectra, budgets ----

    def add_metrics(self, run_id: str, rows: Iterable[tuple[int, str, str, float]]) -> None:
        """Append metric rows (step, kind, name, value) stamped with the current time."""
        now = time.time()
        values = [(run_id, int(step), kind, name, _as_float(value), now) for step, kind, name, value in rows]
        if not values:
            return
        with self._transaction() as conn:
            conn.executemany(
                "INSERT INTO metrics (run_id, step, kind, name, value, time) VALUES (?, ?, ?, ?, ?, ?)", values
            )

    def metrics(self, run_id: str) -> list[dict[str, Any]]:
        """Return a run's metric rows in insertion order (step, kind, name, value, time)."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT step, kind, name, value, time FROM metrics WHERE run_id = ? ORDER BY rowid", (run_id,)
            ).fetchall()
        return [dict(row) for row in rows]

    def add_spectra(self, run_id: str, step: int, spectra: dict[str, Any]) -> None:
        """Append one spectra snapshot (a JSON-able dict) for a step."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO spectra (run_id, step, spectra, time) VALUES (?, ?, ?, ?)",
                (run_id, int(step), json.dumps(spectra), time.time()),
            )

    def spectra(self, run_id: str) -> list[dict[str, Any]]:
        """Return a run's spectra snapshots as [{"step", "spectra"}], in step order."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT step, spectra FROM spectra WHERE run_id = ? ORDER BY step, rowid", (run_id,)
            ).fetchall()
        return [{"step": row["step"], "spectra": json.loads(row["spectra"])} for row in rows]

    def set_budget(self, run_id: str, budget: dict[str, Any]) -> None:
        """Store the parameter budget recorded at the start of a run."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO budgets (run_id, budget) VALUES (?, ?)", (run_id, json.dumps(budget))
            )

    def budget(self, run_id: str) -> dict[str, Any] | None:
        """Return the run's budget dict, or None before the run has started."""
        with self._connect() as conn:
            row = conn.execute("SELECT budget FROM budgets WHERE run_id = ?", (run_id,)).fetchone()
        return json.loads(row["budget"]) if row else None

    # ---- workers ----

    def heartbeat(self, pid: int, device: str | None) -> None:
        """Insert or refresh a worker's heartbeat row."""
        now = time.time()
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO workers (pid, hostname, device, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(pid) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, "
                "device = COALESCE(excluded.device, device)",
                (pid, socket.gethostname(), device, now, now),
            )

    def remove_worker(self, pid: int) -> None:
        """Delete a worker's row (on clean exit, or when found dead)."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM workers WHERE pid = ?", (pid,))

    def workers(self) -> list[dict[str, Any]]:
        """Return every worker row, live or stale."""
        with self._connect() as conn:
            return [dict(row) for row in conn.execute("SELECT * FROM workers ORDER BY started_at").fetchall()]

    # ---- connections ----

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.db_path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """Open a write transaction; BEGIN IMMEDIATE takes the write lock up front."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")


def last_checkpoint_step(folder: Path) -> int | None:
    """Return the highest <step> of the checkpoint-<step> folders in `folder`, or None when there are none.

    Matches the folders transformers' `get_last_checkpoint` picks from.
    """
    if not folder.is_dir():
        return None
    steps = [
        int(match.group(1))
        for path in folder.iterdir()
        if path.is_dir() and (match := re.fullmatch(r"checkpoint-(\d+)", path.name))
    ]
    return max(steps) if steps else None


def _as_float(value: Any) -> float | None:
    """Convert a metric value to float; None stays None (SQLite also stores NaN as NULL)."""
    if value is None:
        return None
    return float(value)
