"""Every task generates at every combination of its params' documented extremes, in bounded time.

The extremes are read from the params models themselves (the same source docs/tasks.md is generated
from): the lowest and highest value of every numeric range, every choice of a `Literal` and both values
of a `bool`. A combination that breaks a documented joint constraint must be rejected with the one-line
error that names the task, the fields, their values and the rule; every other combination must
generate well-formed tests. A per-task time bound makes a hang fail instead of blocking CI.
"""

from __future__ import annotations

import itertools
import json
import math
import time
import typing
from pathlib import Path
from typing import Any

import pytest

from reasonscape.errors import InputError
from reasonscape.tasks.base import Task, TaskParams, field_bounds, generate_tests
from reasonscape.tasks.registry import get_task, task_names

#: Tests drawn per combination.
TESTS_PER_POINT = 64


def count_for(name: str, point: dict[str, Any]) -> int:
    """64, except 5,000-row tables (2 each: the file must stay near a minute on one core, and every
    combination is still generated)."""
    return 2 if name == "tables" and point["num_rows"] > 1000 else TESTS_PER_POINT


def field_extremes(params: type[TaskParams], name: str) -> list[Any]:
    """The documented extremes of one field: range ends, every Literal choice, both booleans."""
    info = params.model_fields[name]
    ann = info.annotation
    if typing.get_origin(ann) is typing.Literal:
        return list(typing.get_args(ann))
    if ann is bool or ann == "bool":
        return [False, True]
    lo, hi = field_bounds(params, name)
    assert lo is not None and hi is not None, f"{params.__name__}.{name} has no documented range"
    if ann is float or ann == "float":
        lo, hi = float(lo), float(hi)
    return [lo] if lo == hi else [lo, hi]


def extreme_points(task: Task) -> list[dict[str, Any]]:
    """Every combination of every field's extremes (the full cross product)."""
    names = list(task.Params.model_fields)
    values = [field_extremes(task.Params, n) for n in names]
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]


def check_rejection(task: Task, point: dict[str, Any], exc: InputError) -> str:
    """A rejected extreme combination must break a documented joint constraint, said in one line."""
    msg = str(exc)
    assert "\n" not in msg, msg
    assert msg.startswith(f"{task.name}: "), msg
    broken = [c for c in task.Params.constraints if f"breaks the joint constraint '{c.rule}'" in msg]
    assert broken, f"{task.name} {point}: rejected without naming a documented joint constraint: {msg}"
    for field in broken[0].fields:
        assert f"{field} = {point[field]!r}" in msg, msg
    return broken[0].rule


def check_tests(task: Task, point: dict[str, Any], count: int) -> int:
    """Generate up to `count` tests of a point and check each is well formed; returns how many."""
    tests = generate_tests(task, point, global_seed=19, stop=count)
    assert 1 <= len(tests) <= count  # fewer only when the point has fewer distinct questions
    for t in tests:
        assert isinstance(t.question, str) and t.question.strip(), (task.name, point)
        assert isinstance(t.reference, str) and t.reference, (task.name, point, t.question[:200])
        meta = t.meta if task.answer_needs_meta else None
        parsed = task.parse_answer(t.reference, meta) if meta is not None else task.parse_answer(t.reference)
        assert parsed == t.reference, (task.name, point, t.reference[:200], parsed)
        assert isinstance(t.guess_chance, float | int) and math.isfinite(t.guess_chance)
        assert 0.0 <= t.guess_chance <= 1.0, (task.name, point, t.guess_chance)
        json.dumps(t.meta, allow_nan=False)  # meta must be strict JSON (no nan/inf, no odd types)
    return len(tests)


@pytest.mark.timeout(60, method="signal")
@pytest.mark.parametrize("name", task_names())
def test_every_combination_of_extremes_generates_or_names_its_joint_constraint(name: str) -> None:
    task = get_task(name)
    cpu = time.process_time()
    generated = tests = 0
    rejected: dict[str, int] = {}
    for point in extreme_points(task):
        try:
            task.validate(point)
        except InputError as exc:
            rule = check_rejection(task, point, exc)
            rejected[rule] = rejected.get(rule, 0) + 1
            continue
        tests += check_tests(task, point, count_for(name, point))
        generated += 1
    assert generated > 0
    # every declared joint constraint binds somewhere among the extremes, so each one was exercised
    assert set(rejected) == {c.rule for c in task.Params.constraints}, rejected
    print(f"{name}: {generated} points generated ({tests} tests), {sum(rejected.values())} rejected "
          f"by joint constraints, {time.process_time() - cpu:.2f} s CPU")  # for the record, not asserted


def test_all_thirteen_tasks_are_covered() -> None:
    assert len(task_names()) == 13
    for name in task_names():
        assert extreme_points(get_task(name)), name


def test_docs_state_every_joint_constraint() -> None:
    """docs/tasks.md (generated) must carry each rule exactly as the validation error quotes it."""
    docs = (Path(__file__).resolve().parent.parent / "docs" / "tasks.md").read_text()
    for name in task_names():
        section = docs.split(f"## {name}\n", 1)[1].split("\n## ", 1)[0]
        for c in get_task(name).Params.constraints:
            assert f"- `{', '.join(c.fields)}`: {c.rule}" in section, (name, c.rule)
