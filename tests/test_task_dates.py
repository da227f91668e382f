"""Dates task: every prompt is read back (scenario -> today, question -> offset) and recomputed with datetime."""

from __future__ import annotations

import random
import re
from datetime import date, datetime, timedelta

import pytest

from reasonscape.errors import InputError
from reasonscape.scoring import CORRECT, INCORRECT, INVALID, grade
from reasonscape.tasks.base import generate_tests
from reasonscape.tasks.registry import get_task

TASK = get_task("dates")

POINTS = [
    {"tier": 1, "date_format": "iso"},
    {"tier": 2, "date_format": "us"},
    {"tier": 2, "date_format": "uk"},
    {"tier": 3, "date_format": "mixed"},
    {"tier": 3, "date_format": "long_uk"},
    {"tier": 4, "date_format": "weekday"},
    {"tier": 4, "date_format": "long"},
]
FORMATS = {"iso": ["%Y-%m-%d"], "us": ["%m/%d/%Y"], "uk": ["%d/%m/%Y"], "long": ["%B %d, %Y"],
           "long_uk": ["%d %B %Y"], "weekday": ["%A, %B %d, %Y"],
           "mixed": ["%Y-%m-%d", "%B %d, %Y", "%d %B %Y", "%A, %B %d, %Y", "%b %d, %Y"]}


def read_date(text: str, fmt: str) -> date:
    for pattern in FORMATS[fmt]:
        try:
            parsed = datetime.strptime(text, pattern).date()
        except ValueError:
            continue
        if "%A" in pattern:  # strptime ignores a contradicting weekday: check it
            assert text.split(",")[0] == parsed.strftime("%A"), text
        return parsed
    raise AssertionError(f"unreadable date {text!r} as {fmt}")


def shift_months(d: date, months: int) -> date:
    total = d.year * 12 + d.month - 1 + months
    return date(total // 12, total % 12 + 1, d.day)


def last_day(year: int, month: int) -> date:
    return shift_months(date(year, month, 1), 1) - timedelta(days=1)


MONTH_NUMBERS = {datetime(2000, m, 1).strftime("%B"): m for m in range(1, 13)}


def read_today(scenario: str, fmt: str) -> date:
    """Today's date implied by the scenario sentence(s)."""
    d = r"(.+?)"
    rules: list[tuple[str, object]] = [
        (r"Today is the last day of (\w+) (\d{4})\.", lambda m: last_day(int(m[2]), MONTH_NUMBERS[m[1]])),
        (r"Today is the first day of (\w+) (\d{4})\.", lambda m: date(int(m[2]), MONTH_NUMBERS[m[1]], 1)),
        (rf"Today is {d}\.", lambda m: read_date(m[1], fmt)),
        (rf"I just checked my calendar: today's date is {d}\.", lambda m: read_date(m[1], fmt)),
        (rf"I am writing today's diary entry, dated {d}\.", lambda m: read_date(m[1], fmt)),
        (rf"Yesterday was {d}\.", lambda m: read_date(m[1], fmt) + timedelta(days=1)),
        (rf"Tomorrow is {d}\.", lambda m: read_date(m[1], fmt) - timedelta(days=1)),
        (rf"(\d+) days ago it was {d}\.", lambda m: read_date(m[2], fmt) + timedelta(days=int(m[1]))),
        (rf"My dentist appointment is on {d}, which is (\d+) days from today\.",
         lambda m: read_date(m[1], fmt) - timedelta(days=int(m[2]))),
        (rf"My flight was scheduled for {d}, but it was delayed by (\d+) days and finally left today\.",
         lambda m: read_date(m[1], fmt) + timedelta(days=int(m[2]))),
        (r"There are (\d+) days left until New Year's Day (\d{4})\.",
         lambda m: date(int(m[2]), 1, 1) - timedelta(days=int(m[1]))),
        (rf"Exactly (\d+) weeks ago, on {d}, I started my new job\.",
         lambda m: read_date(m[2], fmt) + timedelta(weeks=int(m[1]))),
        (rf"The team meeting was planned for {d}, but it was moved (\d+) days earlier, to today\.",
         lambda m: read_date(m[1], fmt) - timedelta(days=int(m[2]))),
        (rf"I was born on {d}, and today is my (\d+)(?:st|nd|rd|th) birthday\.",
         lambda m: shift_months(read_date(m[1], fmt), 12 * int(m[2]))),
        (rf"We got married on {d}, and today is our (\d+)(?:st|nd|rd|th) wedding anniversary\.",
         lambda m: shift_months(read_date(m[1], fmt), 12 * int(m[2]))),
    ]
    for pattern, rule in rules:
        m = re.fullmatch(pattern, scenario)
        if m:
            return rule(m)
    raise AssertionError(f"unknown scenario {scenario!r}")


def apply_question(today: date, question: str) -> date:
    if question == "What is the date tomorrow?":
        return today + timedelta(days=1)
    if question == "What was the date yesterday?":
        return today - timedelta(days=1)
    m = re.fullmatch(r"What (?:is|was) the date (one|\d+) (day|week|month|year)s? (from today|ago)\?", question)
    assert m, question
    n = 1 if m[1] == "one" else int(m[1])
    n = n if m[3] == "from today" else -n
    if m[2] == "day":
        return today + timedelta(days=n)
    if m[2] == "week":
        return today + timedelta(days=7 * n)
    return shift_months(today, n if m[2] == "month" else 12 * n)


def solve(text: str, fmt: str) -> tuple[date, date]:
    lines = text.split("\n")
    if len(lines) == 2:
        note = {"Dates are written as MM/DD/YYYY.": "us", "Dates are written as DD/MM/YYYY.": "uk"}[lines[1]]
        assert note == fmt
    scenario, question = re.fullmatch(r"(.+) (What (?:is|was) the date .+\?)", lines[0]).groups()
    today = read_today(scenario, fmt)
    return today, apply_question(today, question)


@pytest.mark.parametrize("point", POINTS)
def test_reference_matches_datetime_recomputation(point: dict) -> None:
    p = TASK.validate(point)
    for t in generate_tests(TASK, point, global_seed=19, stop=30):
        fmt = "mixed" if p.date_format == "mixed" else p.date_format
        today, answer = solve(t.question, fmt)
        assert t.reference == answer.isoformat()
        assert t.guess_chance == 0.0
        assert TASK.parse_answer(t.reference) == t.reference
        if p.tier == 1:
            assert (answer.year, answer.month) == (today.year, today.month)
            assert abs((answer - today).days) <= 7
        if t.meta["unit"] in ("months", "years"):
            assert today.day <= 28


def test_tiers_reach_their_calendar_features() -> None:
    t2 = generate_tests(TASK, {"tier": 2}, global_seed=1, stop=200)
    assert any(t.meta["crosses_year"] for t in t2) and all(t.meta["unit"] in ("days", "weeks") for t in t2)
    t3 = generate_tests(TASK, {"tier": 3}, global_seed=1, stop=200)
    assert {t.meta["unit"] for t in t3} == {"days", "weeks", "months", "years"}
    assert len({t.meta["scenario"] for t in t3}) == 15
    t4 = generate_tests(TASK, {"tier": 4}, global_seed=1, stop=300)
    # spans over the February of 1900 or 2100 (century years that are not leap years) occur at tier 4
    centuries = (date(1900, 2, 28), date(2100, 2, 28))
    spans = [sorted(solve(t.question, "long")) for t in t4]
    assert any(lo <= c <= hi for lo, hi in spans for c in centuries)


@pytest.mark.parametrize("completion,status", [
    ("<answer>2024-03-05</answer>", CORRECT),
    ("<answer>2024/3/5</answer>", CORRECT),
    ("<answer>March 5, 2024</answer>", CORRECT),
    ("<answer>Tuesday, March 5th, 2024</answer>", CORRECT),
    ("<answer>5 March 2024</answer>", CORRECT),
    ("<answer>the 5th of March, 2024</answer>", CORRECT),
    ("The date will be **Mar 5 2024**.", CORRECT),
    ("Final answer: 2024-03-05", CORRECT),
    ("<answer>2024-03-06</answer>", INCORRECT),
    ("<answer>March 6, 2024</answer>", INCORRECT),
    ("<answer>03/05/2024</answer>", INVALID),  # day/month order ambiguous
    ("<answer>2024-02-30</answer>", INVALID),
    ("<answer>2024-03-05 or 2024-03-06</answer>", INVALID),
    ("<answer>March 5</answer>", INVALID),
    ("<answer>next Tuesday</answer>", INVALID),
    ("<answer></answer>", INVALID),
])
def test_grading(completion: str, status: str) -> None:
    assert grade(TASK, completion, "2024-03-05").status == status


def test_wrong_answer_differs_and_parses() -> None:
    rng = random.Random(0)
    for t in generate_tests(TASK, {"tier": 3}, global_seed=4, stop=50):
        wrong = TASK.wrong_answer(rng, t)
        assert wrong != t.reference and TASK.parse_answer(wrong) == wrong


@pytest.mark.parametrize("bad,field", [
    ({"tier": 0}, "tier"),
    ({"tier": 5}, "tier"),
    ({"date_format": "julian"}, "date_format"),
    ({"format": "iso"}, "format"),
])
def test_invalid_params_name_task_and_field(bad: dict, field: str) -> None:
    with pytest.raises(InputError) as err:
        TASK.validate(bad)
    assert "dates" in str(err.value) and field in str(err.value)


def test_difficulty_is_monotone_in_tier() -> None:
    d = [TASK.difficulty(TASK.validate({"tier": t})) for t in (1, 2, 3, 4)]
    assert d == sorted(d) and 0.2 <= d[0] <= 0.3
    assert TASK.difficulty(TASK.validate({"date_format": "uk"})) > TASK.difficulty(TASK.validate({}))
