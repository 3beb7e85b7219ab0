"""The GLUE tasks used in the MSPLoRA paper, with their standard columns and metrics.

Columns and metrics follow the GLUE benchmark (Wang et al., ICLR 2019): Matthews
correlation for CoLA, F1 and accuracy for MRPC, Pearson and Spearman correlation
for STS-B, and accuracy for the others. Loading them needs hub access.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GLUE_TASKS", "GlueTask", "glue_task"]


@dataclass(frozen=True)
class GlueTask:
    """One GLUE task: where it is on the hub, its columns and its metrics (primary first)."""

    name: str
    text_column: str
    text_pair_column: str | None
    task: str  # "classification" or "regression"
    metric_names: tuple[str, ...]
    hub_path: str = "nyu-mll/glue"

    @property
    def hub_config(self) -> str:
        """The configuration name of this task in the hub dataset."""
        return self.name


GLUE_TASKS: dict[str, GlueTask] = {
    task.name: task
    for task in (
        GlueTask("sst2", "sentence", None, "classification", ("accuracy",)),
        GlueTask("mrpc", "sentence1", "sentence2", "classification", ("f1", "accuracy")),
        GlueTask("cola", "sentence", None, "classification", ("matthews_correlation",)),
        GlueTask("qnli", "question", "sentence", "classification", ("accuracy",)),
        GlueTask("rte", "sentence1", "sentence2", "classification", ("accuracy",)),
        GlueTask("stsb", "sentence1", "sentence2", "regression", ("pearson", "spearmanr")),
    )
}


def glue_task(name: str) -> GlueTask | None:
    """Return the GLUE task that `name` ("glue/sst2" or "sst2") names, else None."""
    key = name.lower()
    for prefix in ("glue/", "nyu-mll/glue/", "glue:"):
        if key.startswith(prefix):
            key = key[len(prefix) :]
            break
    return GLUE_TASKS.get(key)
