"""Dates: work out today's date from a short scenario, then the date at an offset from it.

Each test has a scenario that states or implies today ("Yesterday was ...", "There are 40 days left
until New Year's Day 2025", "today is my 30th birthday") and a question for the date some days, weeks,
months or years before or after today. Solving needs month lengths, leap years (including the century
rule at tier 4) and year rollover.

`tier` sets the difficulty: 1 = today stated outright, offsets of at most a week inside one month;
2 = today implied by a nearby date, offsets of days and weeks across month and year ends; 3 = adds
month and year offsets, longer implied gaps and birthday/anniversary scenarios; 4 = offsets of
hundreds to thousands of days and decades, over 1890-2110. `date_format` sets how dates in the prompt
are written; the answer is always YYYY-MM-DD. Month and year offsets are only asked from days 1-28,
so "the same day N months later" always exists.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from pydantic import Field

from reasonscape.tasks.answers import unwrap_answer
from reasonscape.tasks.base import Task, TaskParams, TestCase

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DateFormat = Literal["iso", "us", "uk", "long", "long_uk", "weekday", "mixed"]
#: Formats "mixed" draws from (one per test): only unambiguous ones, so no reading note is needed.
_MIXED = ("iso", "long", "long_uk", "weekday", "short")
_NOTES = {"us": "Dates are written as MM/DD/YYYY.", "uk": "Dates are written as DD/MM/YYYY."}


@dataclass(frozen=True, slots=True)
class _Tier:
    years: tuple[int, int]           # range of today's year
    units: tuple[str, ...]           # offset units the question may use
    ranges: dict[str, tuple[int, int]]  # magnitude range per unit
    gap: int                         # largest implied gap (days) between the stated date and today


TIERS: dict[int, _Tier] = {
    1: _Tier((2000, 2030), ("days", "weeks"), {"days": (1, 7), "weeks": (1, 1)}, 0),
    2: _Tier((1990, 2040), ("days", "weeks"), {"days": (1, 45), "weeks": (1, 6)}, 10),
    3: _Tier((1950, 2050), ("days", "weeks", "months", "years"),
             {"days": (1, 400), "weeks": (1, 30), "months": (1, 24), "years": (1, 10)}, 60),
    4: _Tier((1890, 2110), ("days", "weeks", "months", "years"),
             {"days": (100, 3000), "weeks": (10, 200), "months": (12, 120), "years": (10, 60)}, 400),
}

#: (name, lowest tier, template). {date} is the stated date, {n} a count of days or weeks.
_SCENARIOS: tuple[tuple[str, int, str], ...] = (
    ("simple_date_statement", 1, "Today is {date}."),
    ("calendar_check", 1, "I just checked my calendar: today's date is {date}."),
    ("diary_entry", 1, "I am writing today's diary entry, dated {date}."),
    ("yesterday_was", 2, "Yesterday was {date}."),
    ("tomorrow_is", 2, "Tomorrow is {date}."),
    ("days_ago", 2, "{n} days ago it was {date}."),
    ("days_until_appointment", 2, "My dentist appointment is on {date}, which is {n} days from today."),
    ("flight_delayed", 2, "My flight was scheduled for {date}, but it was delayed by {n} days and finally "
                          "left today."),
    ("countdown_to_new_year", 2, "There are {n} days left until New Year's Day {year}."),
    ("last_day_of_month", 2, "Today is the last day of {month} {year}."),
    ("first_day_of_month", 2, "Today is the first day of {month} {year}."),
    ("weeks_ago_new_job", 3, "Exactly {n} weeks ago, on {date}, I started my new job."),
    ("meeting_moved_earlier", 3, "The team meeting was planned for {date}, but it was moved {n} days "
                                 "earlier, to today."),
    ("birthday", 3, "I was born on {date}, and today is my {nth} birthday."),
    ("wedding_anniversary", 3, "We got married on {date}, and today is our {nth} wedding anniversary."),
)
_TODAY_STATED = frozenset(s[0] for s in _SCENARIOS if s[1] == 1)
_SCENARIOS_BY_TIER = {t: tuple(s for s in _SCENARIOS if s[1] <= t) for t in TIERS}


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def add_months(d: date, months: int) -> date:
    """Same day of the month `months` later (callers keep d.day <= 28, so it always exists)."""
    y, m = divmod(d.year * 12 + d.month - 1 + months, 12)
    return d.replace(year=y, month=m + 1)


def _last_day(year: int, month: int) -> date:
    return add_months(date(year, month, 1), 1) - timedelta(days=1)


def render_date(d: date, fmt: str) -> str:
    if fmt == "iso":
        return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"
    if fmt == "us":
        return f"{d.month:02d}/{d.day:02d}/{d.year:04d}"
    if fmt == "uk":
        return f"{d.day:02d}/{d.month:02d}/{d.year:04d}"
    if fmt == "long":
        return f"{MONTHS[d.month - 1]} {d.day}, {d.year}"
    if fmt == "long_uk":
        return f"{d.day} {MONTHS[d.month - 1]} {d.year}"
    if fmt == "weekday":
        return f"{WEEKDAYS[d.weekday()]}, {MONTHS[d.month - 1]} {d.day}, {d.year}"
    if fmt == "short":
        return f"{MONTHS[d.month - 1][:3]} {d.day}, {d.year}"
    raise ValueError(f"unknown date format {fmt!r}")


class DatesParams(TaskParams):
    tier: int = Field(2, ge=1, le=4, description="question difficulty tier")
    date_format: DateFormat = Field("long", description="how dates in the prompt are written")


class Dates(Task):
    name = "dates"
    label = "Dates"
    Params = DatesParams
    description = (
        "You will be given a short scenario from which today's date follows, and asked for the date a "
        "number of days, weeks, months or years before or after today. Use the Gregorian calendar "
        "(month lengths, leap years). Moving by months or years keeps the day of the month."
    )
    answer_format = "Write the date as YYYY-MM-DD (for example 2024-03-05) between <answer> and </answer> tags."

    def _today(self, rng: random.Random, tier: int) -> date:
        lo, hi = TIERS[tier].years
        if tier == 1:  # a week either way stays inside the month
            return date(rng.randint(lo, hi), rng.randint(1, 12), rng.randint(8, 21))
        return date.fromordinal(rng.randint(date(lo, 1, 1).toordinal(), date(hi, 12, 31).toordinal()))

    def _scenario(self, rng: random.Random, p: DatesParams, fmt: str) -> tuple[str, date, str, int]:
        """(scenario sentence, today, scenario name, days between the stated date and today)."""
        name, _, template = _SCENARIOS_BY_TIER[p.tier][rng.randrange(len(_SCENARIOS_BY_TIER[p.tier]))]
        gap = TIERS[p.tier].gap
        if name == "countdown_to_new_year":
            lo, hi = TIERS[p.tier].years
            year = rng.randint(lo + 1, hi)
            n = rng.randint(1, 30 if p.tier == 2 else 364)
            return template.format(n=n, year=year), date(year, 1, 1) - timedelta(days=n), name, n
        if name in ("last_day_of_month", "first_day_of_month"):
            lo, hi = TIERS[p.tier].years
            year, month = rng.randint(lo, hi), rng.randint(1, 12)
            today = _last_day(year, month) if name == "last_day_of_month" else date(year, month, 1)
            return template.format(month=MONTHS[month - 1], year=year), today, name, 0
        today = self._today(rng, p.tier)
        if name in ("birthday", "wedding_anniversary"):
            if today.day > 28:  # the stated date must exist every year
                today = today.replace(day=rng.randint(1, 28))
            age = rng.randint(1, 90 if name == "birthday" else 60)
            stated = today.replace(year=today.year - age)
            return template.format(date=render_date(stated, fmt), nth=ordinal(age)), today, name, 0
        if p.tier == 1 or name in _TODAY_STATED:
            return template.format(date=render_date(today, fmt)), today, name, 0
        if name in ("yesterday_was", "tomorrow_is"):
            n = 1
        elif name == "weeks_ago_new_job":
            n = rng.randint(1, max(1, gap // 7))
        elif name == "flight_delayed":
            n = rng.randint(2, min(gap, 14))  # longer delays read as nonsense
        else:
            n = rng.randint(2, gap)
        shift = 7 * n if name == "weeks_ago_new_job" else n
        if name in ("tomorrow_is", "days_until_appointment", "meeting_moved_earlier"):
            shift = -shift  # the stated date lies after today
        stated = today - timedelta(days=shift)
        return template.format(date=render_date(stated, fmt), n=n), today, name, abs(shift)

    def generate(self, rng: random.Random, params: TaskParams) -> TestCase:
        p: DatesParams = params  # type: ignore[assignment]
        fmt = p.date_format if p.date_format != "mixed" else _MIXED[rng.randrange(len(_MIXED))]
        scenario, today, name, gap = self._scenario(rng, p, fmt)
        tier = TIERS[p.tier]
        units = tier.units if today.day <= 28 else ("days", "weeks")
        unit = units[rng.randrange(len(units))]
        lo, hi = tier.ranges[unit]
        amount = rng.randint(lo, hi)
        sign = 1 if rng.random() < 0.5 else -1
        if unit == "days":
            answer = today + timedelta(days=sign * amount)
        elif unit == "weeks":
            answer = today + timedelta(weeks=sign * amount)
        elif unit == "months":
            answer = add_months(today, sign * amount)
        else:
            answer = add_months(today, 12 * sign * amount)
        question = _question(unit, amount, sign)
        note = _NOTES.get(fmt, "")
        text = f"{scenario} {question}" + (f"\n{note}" if note else "")
        return TestCase(
            question=text,
            reference=answer.isoformat(),
            guess_chance=0.0,
            meta={"scenario": name, "unit": unit, "offset": sign * amount, "gap": gap, "format": fmt,
                  "crosses_month": (answer.year, answer.month) != (today.year, today.month),
                  "crosses_year": answer.year != today.year},
        )

    def parse_answer(self, text: str) -> str | None:
        """YYYY-MM-DD of a candidate written unambiguously: '2024-03-05', '2024/3/5', 'March 5, 2024',
        'Tuesday, March 5th, 2024', 'Mar 5 2024', '5 March 2024', 'the 5th of March, 2024'.

        Numeric day/month orders ('03/05/2024') are ambiguous and rejected, as are impossible dates.
        """
        core = _IT_IS.sub("", unwrap_answer(text), count=1).strip()
        m = _ISO.match(core)
        if m:
            y, mo, d = (int(g) for g in m.groups())
        else:
            m = _MONTH_FIRST.match(core)
            if m:
                mon, d, y = m.group(1), int(m.group(2)), int(m.group(3))
            else:
                m = _DAY_FIRST.match(core)
                if not m:  # "The date 12 days ago was March 3, 2024": the date that ends a statement
                    stated = _STATED.match(core)
                    return self.parse_answer(stated.group(1)) if stated else None
                d, mon, y = int(m.group(1)), m.group(2), int(m.group(3))
            mo = _MONTH_NUMBER[mon.lower()[:3]]
        try:
            return date(y, mo, d).isoformat()
        except ValueError:
            return None

    def wrong_answer(self, rng: random.Random, test: TestCase) -> str:
        """Classic slips: off by one day, or the month length / leap day got wrong (a few days off)."""
        d = date.fromisoformat(test.reference)
        delta = rng.choice((-1, 1, -2, 2, 30, -30))
        return (d + timedelta(days=delta)).isoformat()

    def difficulty(self, params: TaskParams) -> float:
        """{1: 0.25, 2: 0.55, 3: 0.9, 4: 1.3}[tier] + {iso 0, long 0, long_uk 0.02, weekday 0.02,
        us 0.08, uk 0.1, mixed 0.05}[date_format].

        The tier sets the calendar work (no boundary, month/year boundaries, month/year arithmetic
        with implied dates, long-range leap-year counting); numeric day/month orders add a reading
        step (DD/MM against the usual MM/DD most of all), mixed formats a little re-parsing.
        """
        p: DatesParams = params  # type: ignore[assignment]
        return _TIER_DIFFICULTY[p.tier] + _FORMAT_DIFFICULTY[p.date_format]


_TIER_DIFFICULTY = {1: 0.25, 2: 0.55, 3: 0.9, 4: 1.3}
_FORMAT_DIFFICULTY = {"iso": 0.0, "long": 0.0, "long_uk": 0.02, "weekday": 0.02, "us": 0.08, "uk": 0.1,
                      "mixed": 0.05}


def _question(unit: str, amount: int, sign: int) -> str:
    if unit == "days" and amount == 1:
        return "What is the date tomorrow?" if sign > 0 else "What was the date yesterday?"
    span = f"{'one' if amount == 1 else amount} {unit[:-1] if amount == 1 else unit}"
    return f"What is the date {span} from today?" if sign > 0 else f"What was the date {span} ago?"


_MONTH_NUMBER = {m[:3].lower(): i for i, m in enumerate(MONTHS, start=1)}
_MONTH_NAME = r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|" \
              r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
_WEEKDAY = r"(?:(?:mon|tues|wednes|thurs|fri|satur|sun)day,?\s+)?"
_ISO = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$")
_MONTH_FIRST = re.compile(rf"^{_WEEKDAY}{_MONTH_NAME}\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})$", re.I)
_DAY_FIRST = re.compile(rf"^{_WEEKDAY}(?:the\s+)?(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH_NAME},?\s+(\d{{4}})$",
                        re.I)
_STATED = re.compile(r"^.*\b(?:is|was|will\s+be|would\s+be|falls\s+on)\s+(\S.*)$", re.I)
_IT_IS = re.compile(r"^(?:it|that|today|the\s+date)\s+(?:is|was|will\s+be|would\s+be)\s+", re.I)


TASK = Dates()
