"""Task registry: base_task name -> Task instance (inspect_ai-style discovery by name).

Two kinds of names: the shipped generators (`arithmetic`, ...) and task *families* named
`<family>:<name>`, whose module builds the Task on demand: `items:<source>` (an external item file
declared by the config's `source:` block) and `gym:<generator>` (a reasoning-gym generator).
"""

from __future__ import annotations

import difflib
import importlib
import re
from pathlib import Path
from typing import Any

from reasonscape.errors import InputError
from reasonscape.tasks.base import Task

#: Every shipped task, by the module that defines it. Imported lazily so `--help` stays fast.
TASK_MODULES: dict[str, str] = {
    name: f"reasonscape.tasks.{name}"
    for name in ("arithmetic", "boolean", "brackets", "objects", "shuffle", "sort", "dates",
                 "letters", "movies", "sequence", "shapes", "cars", "tables")
}

#: Task families: `<family>:<name>` is resolved by the module's `resolve(name) -> Task`.
TASK_FAMILIES: dict[str, str] = {
    "items": "reasonscape.tasks.items",
    "gym": "reasonscape.tasks.gym",
}

#: The part after `<family>:` (it becomes part of file names and point ids, so it stays tame).
_MEMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

_instances: dict[str, Task] = {}


def task_names() -> list[str]:
    """The shipped generators (families are open-ended and not listed)."""
    return list(TASK_MODULES)


def split_family(name: str) -> tuple[str, str] | None:
    """(family, member) of a `<family>:<member>` name, or None for a plain name."""
    if not isinstance(name, str) or ":" not in name:
        return None
    family, _, member = name.partition(":")
    return family, member


def is_task_name(name: str) -> bool:
    """True when `name` is a shipped task or a well-formed member of a known family."""
    if name in TASK_MODULES:
        return True
    parts = split_family(name)
    return parts is not None and parts[0] in TASK_FAMILIES and bool(_MEMBER.match(parts[1]))


def unknown_task_message(name: str) -> str:
    """`unknown task 'x'` with the close names, or the whole list when none is close."""
    parts = split_family(name)
    if parts is not None:
        family, member = parts
        if family not in TASK_FAMILIES:
            return (f"unknown task family '{family}' in '{name}' "
                    f"(families: {', '.join(f + ':<name>' for f in TASK_FAMILIES)})")
        return (f"task '{name}': '{member}' is not a valid {family} name "
                "(letters, digits, '_', '.', '-'; at most 64)")
    close = difflib.get_close_matches(name, TASK_MODULES, n=3)
    known = ", ".join([*TASK_MODULES, *(f + ":<name>" for f in TASK_FAMILIES)])
    hint = f" (did you mean {', '.join(close)}?)" if close else f" (known: {known})"
    return f"unknown task '{name}'{hint}"


def get_task(name: str) -> Task:
    """The Task registered under `name`; an unknown name is an InputError that suggests close ones."""
    task = _instances.get(name)
    if task is not None:
        return task
    module = TASK_MODULES.get(name)
    if module is not None:
        task = importlib.import_module(module).TASK
        _instances[name] = task
        return task
    if not is_task_name(name):
        raise InputError(unknown_task_message(name))
    family, member = split_family(name)  # type: ignore[misc]
    # Families cache (or rebind) their own instances: an items source can be re-declared by a config.
    return importlib.import_module(TASK_FAMILIES[family]).resolve(member)


def bind_task_source(name: str, source: dict[str, Any] | None, base_dir: Path, where: str) -> None:
    """Hand a config task entry's `source:` block to its family (items files need one; others refuse it).

    `where` prefixes error messages (file and key path); relative paths in `source` are relative to
    `base_dir` (the config file's folder).
    """
    parts = split_family(name)
    family = parts[0] if parts else None
    binder = None
    if family is not None:
        binder = getattr(importlib.import_module(TASK_FAMILIES[family]), "bind", None)
    if binder is None:
        if source is not None:
            raise InputError(f"{where}.source: task '{name}' takes no source (only items:<name> tasks do)")
        return
    binder(parts[1], source, base_dir, where)  # type: ignore[index]
