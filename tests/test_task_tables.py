"""Tables task: an independent solver parses the rendered table (each format) and the question text,
then recomputes filter + aggregate with the standard library."""

from __future__ import annotations

import csv
import io
import json
import random
import re
import statistics
from collections import Counter
from decimal import Decimal

import pytest

from reasonscape.errors import InputError
from reasonscape.scoring import grade
from reasonscape.tasks.base import generate_tests
from reasonscape.tasks.registry import get_task

TASK = get_task("tables")
FORMATS = ("csv", "markdown", "fixed_width", "json")
OPERATIONS = ("count", "sum", "mode", "median", "min", "max", "first", "last")


def parse_table(fmt: str, text: str) -> tuple[list[str], list[list[str]]]:
    """(header, rows of cell text) read back from one rendering."""
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(text)))
        return rows[0], rows[1:]
    if fmt == "markdown":
        lines = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in text.splitlines()]
        assert all(set(c) <= {"-"} for c in lines[1])
        return lines[0], lines[2:]
    if fmt == "fixed_width":
        lines = text.splitlines()
        assert set(lines[1]) <= {"-", " "}
        return lines[0].split(), [ln.split() for ln in lines[2:]]
    data = json.loads(text, parse_float=str, parse_int=str)
    header = list(data[0])
    return header, [[str(r[h]) for h in header] for r in data]


def canon(d: Decimal) -> str:
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return "0" if s == "-0" else s


def condition(text: str, header: list[str]):
    """(column index, predicate over the cell text) of one rendered filter condition."""
    if m := re.fullmatch(r'(\w+) is not "(\w+)"', text):
        return header.index(m[1]), lambda v, x=m[2]: v != x
    if m := re.fullmatch(r'(\w+) is "(\w+)"', text):
        return header.index(m[1]), lambda v, x=m[2]: v == x
    if m := re.fullmatch(r"(\w+) is in the range (-?[\d.]+) to (-?[\d.]+) \(inclusive\)", text):
        lo, hi = Decimal(m[2]), Decimal(m[3])
        return header.index(m[1]), lambda v: lo <= Decimal(v) <= hi
    m = re.fullmatch(r"(\w+) is (greater than|less than|at least|at most) (-?[\d.]+)", text)
    assert m, text
    t = Decimal(m[3])
    test = {"greater than": t.__lt__, "less than": t.__gt__, "at least": t.__le__, "at most": t.__ge__}[m[2]]
    return header.index(m[1]), lambda v: test(Decimal(v))


def filtered(question: str) -> tuple[list[str], list[list[str]], str]:
    """(header, rows that pass every condition, question sentence after the table)."""
    fmt_word = re.match(r"Here is a table in (\S+) format with (\d+) rows?:", question)
    fmt = {"CSV": "csv", "Markdown": "markdown", "fixed-width": "fixed_width", "JSON": "json"}[fmt_word[1]]
    _, table, tail = question.split("\n\n")
    header, rows = parse_table(fmt, table)
    assert len(rows) == int(fmt_word[2])
    assert all(len(r) == len(header) for r in rows)
    scope = re.match(r"Consider only the rows where (.+?)\. (?=What|How)", tail)
    conds = [condition(c, header) for c in scope[1].split(" and ")] if scope else []
    if not scope:
        assert tail.startswith("Consider all rows of the table.")
    keep = [r for r in rows if all(test(r[i]) for i, test in conds)]
    assert keep, "a filter matched no row"
    return header, keep, tail


def solve(question: str) -> str:
    header, keep, tail = filtered(question)
    if "How many" in tail:
        return str(len(keep))
    if m := re.search(r"What is the (id|label) of the (first|last) of these rows", tail):
        return (keep[0] if m[2] == "first" else keep[-1])[0].lower()
    m = re.search(r"What is the (sum|smallest value|largest value|median|most common value) of (\w+)", tail)
    col = [r[header.index(m[2])] for r in keep]
    if m[1] == "most common value":
        counts = Counter(col)
        top = max(counts.values())
        return min(v for v, c in counts.items() if c == top).lower()
    nums = [Decimal(v) for v in col]
    agg = {"sum": sum, "smallest value": min, "largest value": max,
           "median": lambda xs: statistics.median(sorted(xs))}[m[1]]
    return canon(agg(nums))


POINTS = [
    {"num_rows": n, "format": f, "operation": op, "filter_complexity": fc, "num_columns": nc, "row_ids": ids}
    for n, f, op, fc, nc, ids in [
        (1, "csv", "count", 0, 2, "numeric"), (1, "json", "median", 1, 2, "label"),
        (2, "markdown", "median", 1, 3, "mixed"), (15, "fixed_width", "mode", 2, 5, "label"),
        (25, "json", "sum", 3, 6, "numeric"), (40, "csv", "min", 2, 4, "mixed"),
        (40, "markdown", "max", 4, 12, "mixed"), (60, "fixed_width", "first", 1, 8, "label"),
        (60, "json", "last", 2, 7, "numeric"), (120, "csv", "median", 2, 5, "mixed"),
        (30, "markdown", "count", 3, 9, "label"), (300, "fixed_width", "sum", 1, 10, "mixed"),
    ]
]


@pytest.mark.parametrize("point", POINTS, ids=lambda p: f"{p['format']}-{p['operation']}-{p['num_rows']}")
def test_answers_match_independent_solver_for_every_format(point: dict) -> None:
    for t in generate_tests(TASK, point, global_seed=17, stop=17):
        assert solve(t.question) == t.reference, t.question[-300:]
        assert TASK.parse_answer(t.reference) == t.reference
        assert t.meta["format"] == point["format"] and t.meta["operation"] == point["operation"]
        assert t.guess_chance == 0.0


@pytest.mark.parametrize("op", OPERATIONS)
def test_every_operation_in_every_format(op: str) -> None:
    for fmt in FORMATS:
        point = {"num_rows": 12, "format": fmt, "operation": op, "filter_complexity": 2}
        for t in generate_tests(TASK, point, global_seed=23, stop=3):
            assert solve(t.question) == t.reference


def test_longer_table_extends_shorter_one_for_the_same_seed() -> None:
    for fmt in FORMATS:
        a = TASK.generate(random.Random(5), TASK.validate({"num_rows": 30, "format": fmt}))
        b = TASK.generate(random.Random(5), TASK.validate({"num_rows": 31, "format": fmt}))
        ta, tb = a.question.split("\n\n")[1], b.question.split("\n\n")[1]
        if fmt == "csv":
            assert tb.startswith(ta + "\n")
        assert len(b.question) > len(a.question)


def test_question_length_grows_with_num_rows() -> None:
    means = []
    for n in (1, 2, 5, 10, 50, 100, 400):
        qs = generate_tests(TASK, {"num_rows": n, "format": "markdown"}, global_seed=1, stop=20)
        means.append(sum(len(t.question) for t in qs) / len(qs))
    assert means == sorted(means)


def test_mode_tie_goes_to_alphabetically_first_value() -> None:
    ties = 0
    for t in generate_tests(TASK, {"num_rows": 6, "operation": "mode", "filter_complexity": 1}, 3, 60):
        assert "comes first alphabetically" in t.question
        assert solve(t.question) == t.reference
        header, keep, _ = filtered(t.question)
        counts = Counter(r[header.index(t.meta["column"])] for r in keep).most_common()
        ties += len(counts) > 1 and counts[0][1] == counts[1][1]
    assert ties >= 5


@pytest.mark.parametrize(("completion", "reference", "status"), [
    ("<answer>1234.5</answer>", "1234.5", "correct"),
    ("<answer>1,234.50</answer>", "1234.5", "correct"),
    ("<answer>$1234.50</answer>", "1234.5", "correct"),
    ("The sum is **1234.5**.", "1234.5", "correct"),
    ("<answer>-7</answer>", "-7", "correct"),
    ("<answer>12.0</answer>", "12", "correct"),
    ("<answer>North</answer>", "north", "correct"),
    ("<answer>\"north\"</answer>", "north", "correct"),
    ("Answer: KX-482", "kx-482", "correct"),
    ("<answer>1234.6</answer>", "1234.5", "incorrect"),
    ("<answer>South</answer>", "north", "incorrect"),
    ("<answer>North or South</answer>", "north", "invalid"),
    ("<answer>North, South</answer>", "north", "invalid"),
    ("<answer>1234.5 or 1234.6</answer>", "1234.5", "invalid"),
    ("<answer></answer>", "north", "invalid"),
    ("<answer>north (maybe east)</answer>", "north", "invalid"),
])
def test_grading(completion: str, reference: str, status: str) -> None:
    assert grade(TASK, completion, reference).status == status


def test_invalid_params_name_task_and_field() -> None:
    with pytest.raises(InputError, match=r"tables.*num_rows"):
        TASK.validate({"num_rows": 0})
    with pytest.raises(InputError, match=r"tables.*num_rows"):
        TASK.validate({"num_rows": 5001})
    with pytest.raises(InputError, match=r"tables.*format"):
        TASK.validate({"format": "xml"})
    with pytest.raises(InputError, match=r"tables.*operation"):
        TASK.validate({"operation": "average"})
    with pytest.raises(InputError, match=r"tables.*filter_complexity"):
        TASK.validate({"num_columns": 2, "filter_complexity": 2})


def test_calibrated_param_is_num_rows() -> None:
    assert TASK.calibrated_param == "num_rows"
    assert "num_rows" in TASK.Params.model_fields


def test_wrong_answer_is_wrong_and_parseable() -> None:
    rng = random.Random(0)
    for op in OPERATIONS:
        for t in generate_tests(TASK, {"operation": op}, global_seed=2, stop=10):
            w = TASK.wrong_answer(rng, t)
            assert w != t.reference and TASK.parse_answer(w) == w


def test_difficulty_grows_with_rows_and_operation() -> None:
    d = [TASK.difficulty(TASK.validate(p)) for p in (
        {"num_rows": 5, "num_columns": 2, "filter_complexity": 0, "operation": "first", "format": "markdown"},
        {},
        {"num_rows": 440, "operation": "median", "filter_complexity": 2},
        {"num_rows": 5000, "num_columns": 12, "operation": "median", "filter_complexity": 4, "format": "json"})]
    assert 0.1 < d[0] < d[1] < d[2] < d[3] < 3.5
