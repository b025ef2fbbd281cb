"""Tasks: what a run trains on, by name (`task.name`). See kdgan.tasks.base.Task."""

from kdgan.registry import TASKS
from kdgan.tasks.base import Task


def build_task(cfg) -> Task:
    """The config's task, with its data loaded."""
    return TASKS.get(cfg.task.name, "task.name").from_config(cfg)


__all__ = ["TASKS", "Task", "build_task"]
