"""Task registry: base_task name -> Task instance (inspect_ai-style discovery by name)."""

from __future__ import annotations

import difflib
import importlib

from reasonscape.errors import InputError
from reasonscape.tasks.base import Task

#: Every shipped task, by the module that defines it. Imported lazily so `--help` stays fast.
TASK_MODULES: dict[str, str] = {
    name: f"reasonscape.tasks.{name}"
    for name in ("arithmetic", "boolean", "brackets", "objects", "shuffle", "sort", "dates",
                 "letters", "movies", "sequence", "shapes", "cars", "tables")
}

_instances: dict[str, Task] = {}


def task_names() -> list[str]:
    return list(TASK_MODULES)


def unknown_task_message(name: str) -> str:
    """`unknown task 'x'` with the close names, or the whole list when none is close."""
    close = difflib.get_close_matches(name, TASK_MODULES, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else f" (known: {', '.join(TASK_MODULES)})"
    return f"unknown task '{name}'{hint}"


def get_task(name: str) -> Task:
    """The Task registered under `name`; an unknown name is an InputError that suggests close ones."""
    if name in _instances:
        return _instances[name]
    module = TASK_MODULES.get(name)
    if module is None:
        raise InputError(unknown_task_message(name))
    mod = importlib.import_module(module)
    task = mod.TASK
    _instances[name] = task
    return task
