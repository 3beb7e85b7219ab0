"""Fixtures for the workbench tests: a real engine store in tmp_path, filled like a worker fills it."""

import os

# Set before transformers and gradio are imported: both read these once, at import.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from msplora.budget import budget_from_config  # noqa: E402
from msplora.engine import Engine, RunSpec  # noqa: E402
from msplora.presets import preset_config  # noqa: E402


@pytest.fixture
def engine(tmp_path):
    """An Engine over an empty store in tmp_path; tests submit with start_worker=False."""
    return Engine(tmp_path / "runs")


def _record_run(engine, spec, *, status="completed", steps=20, accuracy=0.8, error=None):
    """Queue `spec` and write the rows a worker writes: progress, metrics, spectra, budget, final status.

    The values are synthetic (seeded), so tests know exactly what the store holds.
    """
    run_id = engine.submit(spec, start_worker=False)
    store = engine.store
    store.claim_next(worker_pid=os.getpid(), device="cpu")
    rng = np.random.default_rng(0)

    rows = []
    for step in range(1, steps + 1):
        rows.append((step, "train", "loss", 1.0 / step + 0.01 * rng.random()))
        rows.append((step, "train", "learning_rate", 1e-3 * (1 - step / steps)))
    rows.append((steps, "eval", "eval_loss", 0.4))
    rows.append((steps, "eval", "eval_accuracy", accuracy))
    store.add_metrics(run_id, rows)

    if spec.method == "msplora":
        config = spec.msplora_config()
        budget = budget_from_config(preset_config("minilm-l6"), config).to_dict()
    else:
        budget = {"total": 73728, "by_level": {"lora": 73728}, "lora_equivalent": 73728}
    store.set_budget(run_id, budget)
    for step in (10, 20):
        store.add_spectra(run_id, step, {
            "adapters": [{"name": "query/global/0", "level": "global", "role": "query", "stack": "encoder.layer",
                          "group": 0, "blocks": [0, 1, 2, 3, 4, 5], "singular_values": [0.1 * step, 0.05 * step]}],
            "levels": {"global": {"effective_rank": 1.8, "energy": 1.0}},
            "redundancy": {"mid": 0.3},
        })

    store.update_progress(run_id, steps, steps, elapsed_s=12.0, eta_s=None)
    if status != "running":
        store.finish(run_id, status, error)
    return run_id


def _tiny_spec(**overrides):
    fields = dict(model="minilm-l6", dataset="movie-sentences", max_steps=20, eval_steps=10, spectra_steps=10)
    fields.update(overrides)
    return RunSpec(**fields)


@pytest.fixture
def record_run():
    """The `_record_run` helper: fill the store with one run's rows."""
    return _record_run


@pytest.fixture
def tiny_spec():
    """The `_tiny_spec` helper: a 20-step MiniLM spec with overrides."""
    return _tiny_spec
