"""The worker process: takes queued runs from a store, one at a time, and runs them.

    python -m msplora.engine.worker --store runs [--device cpu] [--idle-exit 600]

On start it marks runs left `running` by a dead worker as interrupted. While
it lives, a thread refreshes its heartbeat row. SIGTERM or SIGINT stops the
current run at the next training step (marked interrupted, so it can resume)
and ends the worker.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import socket
import threading
import time
import traceback
from pathlib import Path

from .executor import HEARTBEAT_INTERVAL_S, interrupt_orphaned_runs, pid_alive
from .store import RunStore

logger = logging.getLogger("msplora.engine.worker")  # also when run as __main__

POLL_INTERVAL_S = 0.5


class Worker:
    """Serves one store: claims the oldest queued run, runs it, records the outcome, repeats."""

    def __init__(self, store: RunStore, *, device: str | None = None, idle_exit_s: float | None = None):
        self.store = store
        self.device = device  # None: each run picks CUDA, then MPS, then CPU
        self.idle_exit_s = idle_exit_s
        self.pid = os.getpid()
        self.stop_event = threading.Event()

    def serve(self) -> None:
        """Run queued runs until stopped, or until idle for `idle_exit_s` seconds."""
        self.store.heartbeat(self.pid, self.device)
        self._remove_dead_workers()
        beat = threading.Thread(target=self._beat, name="heartbeat", daemon=True)
        beat.start()
        logger.info("worker pid %d serving store %s", self.pid, self.store.root)
        try:
            idle_since = time.monotonic()
            while not self.stop_event.is_set():
                self._mark_dead_runs()
                run = self.store.claim_next(self.pid, self.device or "auto")
                if run is None:
                    if self.idle_exit_s is not None and time.monotonic() - idle_since > self.idle_exit_s:
                        logger.info("worker pid %d exits after %.0f s with an empty queue", self.pid, self.idle_exit_s)
                        break
                    self.stop_event.wait(POLL_INTERVAL_S)
                    continue
                self.execute(run)
                idle_since = time.monotonic()
        finally:
            self.stop_event.set()
            self.store.remove_worker(self.pid)
            logger.info("worker pid %d stopped", self.pid)

    def execute(self, run: dict) -> str:
        """Run one claimed run and record its final status; every exception marks it failed."""
        from .training import execute_run  # imports torch and transformers

        run_id = run["id"]
        log_handler = _attach_run_log(self.store.run_dir(run_id) / "run.log")
        logger.info("run %s started on worker pid %d", run_id, self.pid)
        try:
            status, error = execute_run(self.store, run, device=self.device, stop_event=self.stop_event)
        except BaseException as exc:  # noqa: BLE001 - a failed run must never take the queue down
            status, error = "failed", _error_text(exc)
            logger.error("run %s failed: %s\n%s", run_id, error, traceback.format_exc())
            if isinstance(exc, KeyboardInterrupt):
                self.stop_event.set()
        try:
            self.store.finish(run_id, status, error)
            logger.info("run %s finished: %s%s", run_id, status, f" ({error})" if error else "")
        finally:
            _detach_run_log(log_handler)
            _free_memory()
        return status

    def stop(self, *_signal_args) -> None:
        """Stop after the current step (signal handler)."""
        self.stop_event.set()

    def _beat(self) -> None:
        while not self.stop_event.wait(HEARTBEAT_INTERVAL_S):
            try:
                self.store.heartbeat(self.pid, self.device)
            except Exception:  # noqa: BLE001 - a busy store skips one beat, the next one retries
                logger.warning("worker pid %d failed to write its heartbeat", self.pid, exc_info=True)

    def _remove_dead_workers(self) -> None:
        """Delete the rows of workers on this host whose process is gone (killed, crashed)."""
        hostname = socket.gethostname()
        for worker in self.store.workers():
            if worker["hostname"] == hostname and not pid_alive(worker["pid"]):
                self.store.remove_worker(worker["pid"])
                logger.info("removed the row of dead worker pid %d", worker["pid"])

    def _mark_dead_runs(self) -> None:
        interrupt_orphaned_runs(self.store)  # logs each run it marks


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point of `python -m msplora.engine.worker`."""
    parser = argparse.ArgumentParser(prog="python -m msplora.engine.worker", description=__doc__.split("\n")[0])
    parser.add_argument("--store", default=os.environ.get("MSPLORA_RUNS_DIR", "runs"), help="store folder")
    parser.add_argument("--device", choices=("cpu", "cuda", "mps"), default=None, help="device for every run")
    parser.add_argument(
        "--idle-exit", type=float, default=None, help="exit after this many seconds with an empty queue"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    run_worker(Path(args.store), device=args.device, idle_exit_s=args.idle_exit)


def run_worker(store_dir: Path, *, device: str | None = None, idle_exit_s: float | None = None) -> None:
    """Serve `store_dir` in this process until SIGTERM/SIGINT or the idle timeout."""
    worker = Worker(RunStore(store_dir), device=device, idle_exit_s=idle_exit_s)
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    worker.serve()


def _attach_run_log(path: Path) -> logging.Handler:
    """Copy log records of this process (msplora, transformers) into the run's log file."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    handler.setLevel(logging.INFO)
    for name in ("", "transformers"):  # transformers' logger does not propagate to the root
        logging.getLogger(name).addHandler(handler)
    return handler


def _detach_run_log(handler: logging.Handler) -> None:
    for name in ("", "transformers"):
        logging.getLogger(name).removeHandler(handler)
    handler.close()


def _error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    if type(exc).__name__ == "OutOfMemoryError":
        text += " (out of memory: lower batch_size or max_length, or raise gradient_accumulation_steps)"
    return text


def _free_memory() -> None:
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


if __name__ == "__main__":
    main()
