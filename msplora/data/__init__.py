"""Datasets to tokenized, seeded train and eval splits, with clear errors for unusable data.

    from msplora.data import load_task_data
    data = load_task_data("movie-sentences", "classification", tokenizer)
"""

from .columns import Columns
from .errors import DataError
from .glue import GLUE_TASKS, GlueTask
from .task_data import PROBLEM_TYPES, TASKS, TaskData, default_metric_names, load_task_data
from .tokenize import IGNORE_INDEX

__all__ = [
    "GLUE_TASKS",
    "IGNORE_INDEX",
    "PROBLEM_TYPES",
    "TASKS",
    "Columns",
    "DataError",
    "GlueTask",
    "TaskData",
    "default_metric_names",
    "load_task_data",
]
