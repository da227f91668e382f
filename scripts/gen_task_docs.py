"""Write docs/tasks.md from the task registry (params models, descriptions, difficulty docstrings).

    python scripts/gen_task_docs.py          # rewrite docs/tasks.md
    python scripts/gen_task_docs.py --check  # exit 1 if it is out of date (tests run this)
"""

from __future__ import annotations

import inspect
import sys
import typing
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reasonscape.tasks.base import Task, field_bounds, generate_tests  # noqa: E402
from reasonscape.tasks.registry import get_task, task_names  # noqa: E402

HEADER = """# The tasks

Thirteen generators, one module each under `reasonscape/tasks/` (this page is generated from them by
`scripts/gen_task_docs.py`). Every task has a pydantic params model (unknown or out-of-range params are
one-line errors naming task, field and allowed range), a generator drawing one test per call from the
point's seeded RNG, a parser mapping a model's answer to the canonical form of the reference, a guess
chance, and a nominal difficulty used by the simulated model.

Params are typed strictly: an `int` param takes only a YAML/JSON integer (not `true`, `"3"` or `2.5`),
a `float` param takes a number (an integer such as `1` is fine; nan and inf are not), a `bool` param
only `true`/`false`. Every value in a param's allowed range is valid on its own; rules across params are
listed under each task as *joint constraints* (a task without any accepts every combination of
allowed values). Breaking one is a one-line error naming the task, the fields, their values and the
rule. `tests/test_task_extremes.py` generates every task at every combination of its params' extremes.

Answers are written between `<answer>` and `</answer>`; the grader also accepts `\\boxed{}` (with
balanced braces), an `Answer:` line (with the block below it for multi-line answers), code fences and
inline code, value statements ("the expression evaluates to X") or the last line (see
`reasonscape/scoring.py`), ignores `<think>` blocks, and judges hedged or multiple answers invalid. A
reply cut by the token limit is read only up to its last whole clause, and only answers the model marked
count there. `tests/golden/` holds the labelled extraction set the grader must agree with (>= 99% per
task). `r12` = arithmetic, boolean, brackets, objects, shuffle, sort, dates,
letters, sequence, shapes, cars, tables; `m12x` has movies instead of tables.
"""


def _allowed(task: Task, name: str) -> tuple[str, str]:
    ann = task.Params.model_fields[name].annotation
    if typing.get_origin(ann) is typing.Literal:
        return "choice", ", ".join(map(str, typing.get_args(ann)))
    typ = getattr(ann, "__name__", str(ann))
    lo, hi = field_bounds(task.Params, name)
    if lo is not None or hi is not None:
        return typ, f"{'' if lo is None else lo}..{'' if hi is None else hi}"
    return typ, "true/false" if typ == "bool" else ""


def _section(task: Task) -> list[str]:
    sample = generate_tests(task, task.Params().model_dump(mode="json"), 1, 1)[0]
    g = sample.guess_chance
    guess = "0 (write-in)" if g == 0 else ("1/2" if g == 0.5 else "1/k (one of k listed choices)")
    lines = [f"## {task.name}", "", " ".join(task.description.split()), "",
             f"*Answer format:* {task.answer_format}  ", f"*Guess chance:* {guess}."
             + (f" *Calibrated param:* `{task.calibrated_param}` (resolved from `target_tokens`)."
                if task.calibrated_param else ""), "",
             "| param | type | allowed | default |", "|---|---|---|---|"]
    for name, field in task.Params.model_fields.items():
        typ, allowed = _allowed(task, name)
        desc = f" — {field.description}" if field.description else ""
        lines.append(f"| `{name}` | {typ} | {allowed} | {field.default}{desc} |")
    constraints = task.Params.constraints
    lines += ["", "*Joint constraints:*" + ("" if constraints else " none.")]
    lines += [f"- `{', '.join(c.fields)}`: {c.rule}" for c in constraints]
    doc = inspect.getdoc(type(task).difficulty)
    if doc and type(task).difficulty is not Task.difficulty:
        lines += ["", "*Difficulty (the simulated model's axis):* " + " ".join(doc.split())]
    return lines + [""]


def render() -> str:
    out = [HEADER]
    for name in task_names():
        out += _section(get_task(name))
    return "\n".join(out)


def main() -> None:
    path = ROOT / "docs" / "tasks.md"
    text = render()
    if "--check" in sys.argv:
        if not path.exists() or path.read_text() != text:
            print(f"{path} is out of date: run python scripts/gen_task_docs.py", file=sys.stderr)
            sys.exit(1)
        return
    path.write_text(text)


if __name__ == "__main__":
    main()
