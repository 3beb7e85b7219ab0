"""The shared engine: run specs, the run queue and store, worker processes.

    from msplora.engine import Engine, RunSpec
    engine = Engine()                                  # ./runs, or $MSPLORA_RUNS_DIR
    run_id = engine.submit(RunSpec(method="msplora", max_steps=200))
    engine.wait(run_id)
"""

from .engine import Engine, RunStatus
from .spec import RunSpec
from .store import RunStore

__all__ = ["Engine", "RunSpec", "RunStatus", "RunStore"]
