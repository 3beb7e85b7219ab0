"""Engine: the one way the app, notebooks and the command line run fine-tunes.

    engine = Engine()                       # store in ./runs, or $MSPLORA_RUNS_DIR
    run_id = engine.submit(RunSpec(model="minilm-l6", dataset="movie-sentences", max_steps=200))
    engine.wait(run_id).status              # "completed"
    engine.metrics(run_id)                  # long-format DataFrame: step, kind, name, value, time

Every `Engine` over the same folder, in any process, sees the same queue.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .executor import Executor, LocalExecutor, interrupt_orphaned_runs
from .spec import RunSpec
from .store import CHECKPOINTS_DIR, FINISHED, RunStore, last_checkpoint_step

DEFAULT_STORE_DIR = "runs"
WAIT_POLL_S = 0.5


@dataclass
class RunStatus:
    """A run as the store records it. Times are Unix seconds; progress is step / max_steps."""

    id: str
    name: str
    status: str  # queued, running, completed, failed, cancelled or interrupted
    step: int
    max_steps: int | None
    progress: float
    eta_s: float | None
    elapsed_s: float | None
    error: str | None
    device: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    spec: RunSpec

    @property
    def finished(self) -> bool:
        """True once the run has stopped for good (until resumed)."""
        return self.status in FINISHED


class Engine:
    """Queue runs into a store, start a worker when needed, and read runs back."""

    def __init__(self, store_dir: str | Path | None = None, *, executor: Executor | None = None):
        store_dir = store_dir or os.environ.get("MSPLORA_RUNS_DIR") or DEFAULT_STORE_DIR
        self.store = RunStore(store_dir)
        self.executor = executor or LocalExecutor(self.store)

    @property
    def store_dir(self) -> Path:
        return self.store.root

    def submit(self, spec: RunSpec | dict, *, start_worker: bool = True) -> str:
        """Validate and queue a run; make sure a worker serves the store. Return the run id."""
        if isinstance(spec, dict):
            spec = RunSpec.from_dict(spec)
        spec = RunSpec.from_dict(spec.to_dict())  # validates again, in case fields changed after creation
        from .sources import check_sources  # imports datasets and pandas, which reading runs does not need

        check_sources(spec)  # a missing model or data file, or an unknown column, raises here, not in the worker
        run_id = self.store.add_run(spec.to_dict(), spec.display_name, spec.max_steps)
        spec.to_yaml(self.store.run_dir(run_id) / "spec.yaml")
        if start_worker:
            self.executor.submit(run_id)
        return run_id

    def status(self, run_id: str) -> RunStatus:
        """Return the current status of one run (KeyError for an unknown id).

        A run left `running` by a worker that died is marked interrupted first.
        """
        interrupt_orphaned_runs(self.store)
        return _to_status(self.store.get_run(run_id))

    def runs(self) -> list[RunStatus]:
        """Return every run in the store, newest first; runs of dead workers are marked interrupted first."""
        interrupt_orphaned_runs(self.store)
        return [_to_status(row) for row in self.store.list_runs()]

    def metrics(self, run_id: str, as_frame: bool = True):
        """Return the run's metrics in long format: step, kind (train/eval/system), name, value, time."""
        self.store.get_run(run_id)
        rows = self.store.metrics(run_id)
        if not as_frame:
            return rows
        import pandas as pd

        return pd.DataFrame(rows, columns=["step", "kind", "name", "value", "time"])

    def budget(self, run_id: str) -> dict[str, Any] | None:
        """Return the parameter budget recorded when the run started (None before that)."""
        self.store.get_run(run_id)
        return self.store.budget(run_id)

    def spectra(self, run_id: str) -> list[dict[str, Any]]:
        """Return the spectra snapshots: [{"step": int, "spectra": LevelSpectra.to_dict()}, ...]."""
        self.store.get_run(run_id)
        return self.store.spectra(run_id)

    def log(self, run_id: str) -> str:
        """Return the run's log text ("" before the run starts)."""
        self.store.get_run(run_id)
        path = self.store.run_dir(run_id) / "run.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def cancel(self, run_id: str) -> None:
        """Cancel a queued run, or ask its worker to stop a running one at the next step."""
        self.executor.cancel(run_id)

    def resume(self, run_id: str, *, start_worker: bool = True) -> str:
        """Queue an interrupted, cancelled or failed run again.

        It continues from its last checkpoint, or restarts from step 0 when it has
        none (`checkpoint_step` returns which).
        """
        self.store.requeue(run_id)
        if start_worker:
            self.executor.submit(run_id)
        return run_id

    def checkpoint_step(self, run_id: str) -> int | None:
        """Return the step of the run's last checkpoint, where a resume continues; None when it has none."""
        self.store.get_run(run_id)
        return last_checkpoint_step(self.store.run_dir(run_id) / CHECKPOINTS_DIR)

    def wait(self, run_id: str, timeout: float | None = None) -> RunStatus:
        """Block until the run finishes; raise TimeoutError after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.status(run_id)
            if status.finished:
                return status
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(
                    f"run {run_id} is still {status.status} at step {status.step} after {timeout} s; "
                    "wait longer or check its log with `msplora show`"
                )
            time.sleep(WAIT_POLL_S)

    def artifacts(self, run_id: str) -> dict[str, Path]:
        """Return the run's files that exist: adapter, peft, merged, metrics_csv, spec, log."""
        self.store.get_run(run_id)
        folder = self.store.run_dir(run_id)
        candidates = {
            "adapter": folder / "adapter",
            "peft": folder / "peft",
            "merged": folder / "merged",
            "metrics_csv": folder / "metrics.csv",
            "spec": folder / "spec.yaml",
            "log": folder / "run.log",
        }
        return {name: path for name, path in candidates.items() if path.exists()}

    def workers(self) -> list[int]:
        """Return pids of the live workers serving this store."""
        from .executor import live_worker_pids

        return live_worker_pids(self.store)

    def stop_workers(self, timeout: float = 30.0) -> list[int]:
        """Stop the live workers of this store (a running run becomes interrupted)."""
        return LocalExecutor(self.store).stop_workers(timeout)


def _to_status(row: dict[str, Any]) -> RunStatus:
    max_steps = row["max_steps"]
    progress = min(row["step"] / max_steps, 1.0) if max_steps else 0.0
    if row["status"] == "completed":
        progress = 1.0
    return RunStatus(
        id=row["id"],
        name=row["name"],
        status=row["status"],
        step=row["step"],
        max_steps=max_steps,
        progress=progress,
        eta_s=row["eta_s"],
        elapsed_s=row["elapsed_s"],
        error=row["error"],
        device=row["device"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        spec=RunSpec.from_dict(json.loads(row["spec"])),
    )
