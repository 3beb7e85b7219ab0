"""Trainer callbacks that stream a run into the store and handle stop requests.

`StoreCallback` writes every Trainer log (training loss, learning rate,
evaluation metrics) as metric rows and adds system metrics (throughput, elapsed
time, ETA, peak memory). It stores a spectra snapshot every `spectra_steps`
steps. When the run is cancelled or the worker is asked to stop, it sets
`control.should_training_stop` and `control.should_save` at the next step end,
so Trainer checkpoints that step before it stops, and raises RunStopped to
abandon an evaluation in progress. A non-finite training loss raises FloatingPointError, which fails
the run.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import torch
from transformers import TrainerCallback

from .store import RunStore

logger = logging.getLogger(__name__)

CANCEL_CHECK_INTERVAL_S = 0.5
PROGRESS_INTERVAL_S = 1.0
# Summary keys the Trainer logs once at the end of train(); stored as kind "system".
_SUMMARY_KEYS = ("train_runtime", "train_samples_per_second", "train_steps_per_second", "total_flos", "train_loss")


class RunStopped(Exception):
    """Raised inside an evaluation to abandon it when the run is cancelled or the worker stops."""


class StoreCallback(TrainerCallback):
    """Streams metrics and spectra of one run into the store, and stops it on request.

    After training, `stop_reason` is None (ran to the end), "cancelled" (a cancel
    request) or "interrupted" (the worker is stopping).
    """

    def __init__(
        self,
        store: RunStore,
        run_id: str,
        *,
        samples_per_step: int,
        spectra_steps: int,
        spectra_fn: Callable[[], dict[str, Any]] | None,
        stop_event: threading.Event,
        elapsed_before_s: float = 0.0,
    ):
        self.store = store
        self.run_id = run_id
        self.samples_per_step = samples_per_step  # batch size x gradient accumulation
        self.spectra_steps = spectra_steps
        self.spectra_fn = spectra_fn
        self.stop_event = stop_event
        self.elapsed_before_s = elapsed_before_s  # time spent before a resume
        self.stop_reason: str | None = None
        self._last_spectra_step: int | None = None

    # ---- Trainer events ----

    def on_train_begin(self, args, state, control, **kwargs):
        self._start_time = time.monotonic()
        self._start_step = state.global_step
        self._last_log = (self._start_time, state.global_step)
        self._last_cancel_check = 0.0
        self._last_progress = 0.0
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self._write_progress(state, force=True)
        self._record_spectra(state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        reason = self._stop_requested()
        if reason is not None:
            self._stop(control, reason, state.global_step)
            # Checkpoint this step so a resume continues here. The evaluation due at this
            # step is skipped, because Trainer evaluates before it saves and a stop
            # request abandons an evaluation.
            control.should_save = True
            control.should_evaluate = False
        if state.global_step % self.spectra_steps == 0:
            self._record_spectra(state.global_step)
        self._write_progress(state)

    def on_prediction_step(self, args, state, control, **kwargs):
        # control.should_training_stop does not end an evaluation, so a long one is abandoned
        reason = self._stop_requested()
        if reason is not None:
            self._stop(control, reason, state.global_step)
            raise RunStopped(reason)

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        step = state.global_step
        rows = []
        for key, value in logs.items():
            if not isinstance(value, (int, float)):
                continue
            rows.append((step, *_kind_and_name(key), value))
        if "loss" in logs:
            rows += self._system_rows(state)
        self.store.add_metrics(self.run_id, rows)
        self._write_progress(state, force=True)

        # NOTE: the loss is seen only at logging steps, so a diverged run trains up to
        # logging_steps - 1 more steps (or fails earlier, at a spectra snapshot).
        loss = logs.get("loss")
        if loss is not None and not math.isfinite(loss):
            raise FloatingPointError(
                f"training loss is {loss} at step {step}; lower learning_rate "
                "(or check the data for extreme labels)"
            )

    def on_train_end(self, args, state, control, **kwargs):
        self._record_spectra(state.global_step)
        self._write_progress(state, force=True)

    # ---- helpers ----

    def _stop_requested(self) -> str | None:
        """Return "interrupted" when the worker stops, "cancelled" on a cancel request, else None."""
        if self.stop_event.is_set():
            return "interrupted"
        now = time.monotonic()
        if now - self._last_cancel_check >= CANCEL_CHECK_INTERVAL_S:
            self._last_cancel_check = now
            if self.store.cancel_requested(self.run_id):
                return "cancelled"
        return None

    def _stop(self, control, reason: str, step: int) -> None:
        if self.stop_reason is None:
            logger.info("run %s: stop requested (%s) at step %d", self.run_id, reason, step)
            self.stop_reason = reason
        control.should_training_stop = True

    def _record_spectra(self, step: int) -> None:
        if self.spectra_fn is None or self._last_spectra_step == step:
            return
        try:
            spectra = self.spectra_fn()
        except torch.linalg.LinAlgError as exc:  # the SVD meets NaN or inf adapter weights
            raise FloatingPointError(
                f"adapter weights are not finite at step {step} (training diverged); lower learning_rate"
            ) from exc
        self.store.add_spectra(self.run_id, step, spectra)
        self._last_spectra_step = step

    def _system_rows(self, state) -> list[tuple[int, str, str, float]]:
        """Throughput since the previous training log, elapsed time, ETA and peak memory."""
        now = time.monotonic()
        last_time, last_step = self._last_log
        self._last_log = (now, state.global_step)
        rows = [
            (state.global_step, "system", "elapsed_s", self._elapsed_s()),
            (state.global_step, "system", "peak_memory_mb", peak_memory_mb()),
        ]
        if now > last_time and state.global_step > last_step:
            samples = (state.global_step - last_step) * self.samples_per_step
            rows.append((state.global_step, "system", "samples_per_s", samples / (now - last_time)))
        eta = self._eta_s(state)
        if eta is not None:
            rows.append((state.global_step, "system", "eta_s", eta))
        return rows

    def _write_progress(self, state, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_progress < PROGRESS_INTERVAL_S:
            return
        self._last_progress = now
        self.store.update_progress(
            self.run_id, state.global_step, state.max_steps or None, self._elapsed_s(), self._eta_s(state)
        )

    def _elapsed_s(self) -> float:
        return self.elapsed_before_s + time.monotonic() - self._start_time

    def _eta_s(self, state) -> float | None:
        done = state.global_step - self._start_step
        if done <= 0 or not state.max_steps:
            return None
        seconds_per_step = (time.monotonic() - self._start_time) / done
        return max(state.max_steps - state.global_step, 0) * seconds_per_step


def peak_memory_mb() -> float:
    """Peak memory in MiB: CUDA max allocated when CUDA is in use, else the process's peak RSS."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return torch.cuda.max_memory_allocated() / 2**20
    try:
        import resource
    except ImportError:  # Windows has no resource module; report the current RSS instead
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is in KiB on Linux and in bytes on macOS
    if sys.platform == "darwin":
        return peak / 2**20
    return peak / 2**10


def _kind_and_name(key: str) -> tuple[str, str]:
    """Map a Trainer log key to (kind, name): eval_accuracy -> ("eval", "accuracy")."""
    if key.startswith("eval_"):
        return "eval", key[len("eval_"):]
    if key in _SUMMARY_KEYS:
        return "system", key
    return "train", key
