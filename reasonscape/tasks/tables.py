"""Tables: answer a filter-then-aggregate question about a table rendered as CSV, Markdown,
fixed-width text or JSON.

This is the calibrated task: `num_rows` is the coordinate that the config's `target_tokens` is
resolved into, so the question must grow with it and nothing else may depend on it. Every per-test
structural choice (columns, row ids, operation, filter columns and operators) is drawn before the
rows, and the cells come from one stream derived from the test's RNG and read row by row, so for
one seed the table with n+1 rows is the table with n rows plus one row.

Answers are unambiguous by construction: filters are built around an anchor row so at least one row
matches; `mode` ties go to the alphabetically first value (the question says so); the median of an
even count is the mean of the two middle values; `first`/`last` ask for the id of the first/last
matching row in table order. Numbers are canonical decimals without trailing zeros ("12.5").
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from itertools import accumulate
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from reasonscape.tasks.answers import parse_count_sentence
from reasonscape.tasks.base import JointConstraint, Task, TaskParams, TestCase

Format = Literal["csv", "markdown", "fixed_width", "json"]
Operation = Literal["count", "sum", "mode", "median", "min", "max", "first", "last"]

#: Categorical columns: name -> values (single tokens, so every format splits them cleanly).
CATEGORICAL: dict[str, tuple[str, ...]] = {
    "region": ("North", "South", "East", "West", "Central"),
    "department": ("Sales", "Marketing", "Finance", "Legal", "Support", "Research", "Operations"),
    "color": ("red", "blue", "green", "black", "white", "silver", "yellow"),
    "status": ("active", "pending", "closed", "suspended", "archived"),
    "category": ("books", "toys", "garden", "kitchen", "sports", "music", "tools", "beauty"),
    "city": ("Paris", "Tokyo", "Lima", "Cairo", "Oslo", "Delhi", "Sydney", "Toronto", "Madrid"),
    "tier": ("bronze", "silver", "gold", "platinum"),
    "team": ("Falcons", "Tigers", "Sharks", "Wolves", "Bears", "Eagles"),
    "shift": ("morning", "afternoon", "evening", "night"),
    "grade": ("A", "B", "C", "D", "E"),
    "channel": ("online", "store", "phone", "partner"),
    "size": ("small", "medium", "large", "huge"),
}
#: Numeric columns: name -> (low, high, decimals); values are drawn as integers in units of 10^-decimals.
NUMERIC: dict[str, tuple[int, int, int]] = {
    "price": (100, 50000, 2),
    "quantity": (1, 200, 0),
    "age": (18, 80, 0),
    "score": (0, 100, 0),
    "weight_kg": (5, 1200, 1),
    "rating": (10, 50, 1),
    "revenue": (100, 99999, 0),
    "temperature": (-20, 45, 0),
    "distance_km": (1, 9999, 1),
    "units": (0, 5000, 0),
    "discount_pct": (0, 50, 0),
    "duration_min": (1, 240, 0),
}
_CAT_NAMES = tuple(CATEGORICAL)
_NUM_NAMES = tuple(NUMERIC)
_LABEL_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_LABEL_PREFIXES = tuple(a + b for a in _LABEL_LETTERS for b in _LABEL_LETTERS)
_LABEL_SPACE = len(_LABEL_PREFIXES) * 900
_ID_GAPS = (1, 1, 1, 2, 3, 5)
_OP_COST = {"count": 0.1, "first": 0.05, "last": 0.1, "min": 0.1, "max": 0.1, "sum": 0.3, "median": 0.35,
            "mode": 0.3}
_FMT_COST = {"csv": 0.05, "markdown": 0.0, "fixed_width": 0.05, "json": 0.1}
_NUM_OPS = ("gt", "lt", "ge", "le", "between")
_OP_WORDS = {"gt": "is greater than", "lt": "is less than", "ge": "is at least", "le": "is at most"}


#: Printed form of every value of every numeric column, precomputed so rendering is a lookup.
_SHOWN: dict[str, tuple[str, ...]] = {}


#: A column to render: (domain of printed values, index of each row's value) or (cells, None).
Column = tuple[Sequence[str], list[int] | None]


def _draw(seed: int, m: int, n: int) -> list[int]:
    """n integers in 0..m-1 from a stream seeded by `seed` (prefix-stable: the first n of n+1 are the
    n). One bulk draw of 32-bit words instead of n Python-level calls; the modulo bias is below
    m / 2^32, far too small to matter for table contents."""
    words = np.frombuffer(random.Random(seed).randbytes(4 * n), dtype="<u4")
    return (words % m).tolist()


def _draw_rows(seed: int, moduli: list[int], n: int) -> list[list[int]]:
    """Columns of n rows, column j in 0..moduli[j]-1, from one stream read row by row (row i uses
    words i*k .. i*k+k-1), so the first n rows of n+1 are the n rows."""
    k = len(moduli)
    words = np.frombuffer(random.Random(seed).randbytes(4 * n * k), dtype="<u4").reshape(n, k)
    return (words % np.asarray(moduli, dtype=np.uint32)).T.tolist()


def _cells(col: Column, pre: str = "", post: str = "", width: int = 0) -> list[str]:
    """The printed cells of a column as `pre + value + post`, left-justified to `width`. A domain
    smaller than the column is decorated once and looked up; otherwise decoration is inlined."""
    domain, idx = col
    if idx is None:
        idx = list(range(len(domain)))
    elif (pre or post or width) and len(domain) <= len(idx):
        domain = [(pre + x + post).ljust(width) for x in domain]
        pre = post = ""
        width = 0
    if width:
        if not (pre or post):
            return [domain[i].ljust(width) for i in idx]
        return [(pre + domain[i] + post).ljust(width) for i in idx]
    if pre or post:
        return [pre + domain[i] + post for i in idx]
    return [domain[i] for i in idx]


def _widest(col: Column) -> int:
    """Length of the longest printed cell of a column. Numeric domains are sorted by value and
    printed with fixed decimals, so the longest cell is the smallest or the largest value."""
    domain, idx = col
    if idx is None:
        return max(map(len, domain))
    if id(domain) in _NUMERIC_DOMAINS:
        return max(len(domain[min(idx)]), len(domain[max(idx)]))
    return max(len(domain[i]) for i in set(idx))


class TablesParams(TaskParams):
    num_rows: int = Field(20, ge=1, le=5000, description="table rows (the calibrated coordinate)")
    num_columns: int = Field(5, ge=2, le=12, description="data columns besides the row id")
    format: Format = Field("csv", description="how the table is rendered")
    operation: Operation = Field("count", description="what is computed over the filtered rows")
    filter_complexity: int = Field(1, ge=0, le=4, description="number of AND-ed filter conditions")
    row_ids: Literal["numeric", "label", "mixed"] = Field(
        "mixed", description="numeric ids, string labels, or either per test")

    constraints: ClassVar[tuple[JointConstraint, ...]] = (
        JointConstraint(("filter_complexity", "num_columns"),
                        "num_columns >= filter_complexity + 1 (each filter uses its own column and the "
                        "aggregated column is never filtered)",
                        lambda p: p.num_columns >= p.filter_complexity + 1),
    )


def fmt_number(value: int | Fraction, decimals: int = 0) -> str:
    """Canonical decimal text of value * 10^-decimals: exact, no trailing zeros, no exponent."""
    q = Decimal(value.numerator) / Decimal(value.denominator) if isinstance(value, Fraction) else Decimal(value)
    return fmt_number_text(q.scaleb(-decimals))


def _shown(v: int, decimals: int) -> str:
    """How a scaled integer is printed in the table (fixed decimals, like a real export)."""
    if decimals == 0:
        return str(v)
    sign = "-" if v < 0 else ""
    q, r = divmod(abs(v), 10 ** decimals)
    return f"{sign}{q}.{r:0{decimals}d}"


_SHOWN.update({name: tuple(_shown(v, dec) for v in range(lo, hi + 1)) for name, (lo, hi, dec) in NUMERIC.items()})
_NUMERIC_DOMAINS = frozenset(id(d) for d in _SHOWN.values())


class Tables(Task):
    name = "tables"
    label = "Tables"
    Params = TablesParams
    calibrated_param = "num_rows"
    description = (
        "You will be given a table of data followed by a question about it. Use only the rows that "
        "satisfy every stated condition, then compute what is asked."
    )
    answer_format = (
        "Write only the final answer between <answer> and </answer> tags: a number (without units or "
        "thousands separators) or a single value or id exactly as it appears in the table."
    )

    # -- table ------------------------------------------------------------------------------

    def _ids(self, gaps: list[int], start: int, label_seed: int, style: str) -> tuple[list[str], list[str], str]:
        """(shown ids, canonical ids, id column name), prefix-stable in the number of rows."""
        n = len(gaps)
        if style == "numeric":
            ids = [str(v) for v in accumulate((_ID_GAPS[g] for g in gaps), initial=start)][1:]
            return ids, ids, "id"
        # distinct labels "AB-123": distinct indexes into the 24*24*900 label space, in stream order
        want = 2 * n + 16
        while True:
            picked = list(dict.fromkeys(_draw(label_seed, _LABEL_SPACE, want)))[:n]
            if len(picked) == n:
                break
            want *= 2
        out = [f"{_LABEL_PREFIXES[i // 900]}-{100 + i % 900}" for i in picked]
        return out, [x.lower() for x in out], "label"

    def _render(self, fmt: str, header: list[str], cols: list[Column], quoted: list[bool]) -> str:
        """The table text. Cells are decorated column-wise (small domains are decorated once and
        looked up), then each row is a single join: this keeps 5,000-row tables fast."""
        if fmt == "csv":
            cells = [_cells(c) for c in cols]
            return "\n".join([",".join(header)] + [",".join(r) for r in zip(*cells, strict=True)])
        if fmt == "markdown":
            cells = [_cells(c) for c in cols]
            lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
            lines += ["| " + " | ".join(r) + " |" for r in zip(*cells, strict=True)]
            return "\n".join(lines)
        if fmt == "fixed_width":
            widths = [max(len(h), _widest(c)) for h, c in zip(header, cols, strict=True)]
            padded = [_cells(c, width=w) for c, w in zip(cols[:-1], widths, strict=False)]
            lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip(),
                     "  ".join("-" * w for w in widths)]
            lines += ["  ".join(r) for r in zip(*padded, _cells(cols[-1]), strict=True)]
            return "\n".join(lines)
        cells = [_cells(c, f'"{h}": "', '"') if q else _cells(c, f'"{h}": ')
                 for h, c, q in zip(header, cols, quoted, strict=True)]
        return "[\n" + ",\n".join(["  {" + ", ".join(r) + "}" for r in zip(*cells, strict=True)]) + "\n]"

    # -- question ---------------------------------------------------------------------------

    def generate(self, rng: random.Random, params: TaskParams) -> TestCase:
        p: TablesParams = params  # type: ignore[assignment]
        n = p.num_rows
        # structural choices first: they never depend on num_rows
        style = rng.choice(("numeric", "label")) if p.row_ids == "mixed" else p.row_ids
        n_cat = p.num_columns // 2
        cats = rng.sample(_CAT_NAMES, n_cat)
        nums = rng.sample(_NUM_NAMES, p.num_columns - n_cat)
        names = cats + nums
        rng.shuffle(names)
        op = p.operation
        if op == "mode":
            agg = rng.choice(cats)
        elif op in ("sum", "median", "min", "max"):
            agg = rng.choice(nums)
        else:
            agg = None
        filter_cols = rng.sample([c for c in names if c != agg], p.filter_complexity)
        filter_ops = [rng.choice(("eq", "eq", "ne")) if c in CATEGORICAL else rng.choice(_NUM_OPS)
                      for c in filter_cols]
        table_seed, label_seed = rng.getrandbits(64), rng.getrandbits(64)
        id_start = rng.randint(100, 9000)

        # rows: one row-major stream, so a longer table extends a shorter one
        domains = [CATEGORICAL.get(name) or _SHOWN[name] for name in names]
        drawn = _draw_rows(table_seed, [len(_ID_GAPS)] + [len(d) for d in domains], n)
        shown_ids, canon_ids, id_name = self._ids(drawn[0], id_start, label_seed, style)
        values: dict[str, list] = {}
        columns: list[Column] = [(shown_ids, None)]
        for name, domain, idx in zip(names, domains, drawn[1:], strict=True):
            columns.append((domain, idx))
            values[name] = [domain[i] for i in idx] if name in CATEGORICAL else [NUMERIC[name][0] + i for i in idx]
        table = self._render(p.format, [id_name] + names, columns,
                             [style == "label"] + [c in CATEGORICAL for c in names])

        # filters around an anchor row (so at least one row matches)
        anchor = rng.randrange(n)
        conds: list[str] = []
        mask = [True] * n
        for col, kind in zip(filter_cols, filter_ops, strict=True):
            vals = values[col]
            a = vals[anchor]
            if col in CATEGORICAL:
                if kind == "eq":
                    conds.append(f'{col} is "{a}"')
                    mask = [m and v == a for m, v in zip(mask, vals, strict=True)]
                else:
                    other = rng.choice([x for x in CATEGORICAL[col] if x != a])
                    conds.append(f'{col} is not "{other}"')
                    mask = [m and v != other for m, v in zip(mask, vals, strict=True)]
                continue
            dec = NUMERIC[col][2]
            t = vals[rng.randrange(n)]
            if kind == "between":
                u = vals[rng.randrange(n)]
                lo, hi = min(a, t, u), max(a, t, u)
                if lo == hi:
                    lo, hi = lo - 1, hi + 1
                conds.append(f"{col} is in the range {_shown(lo, dec)} to {_shown(hi, dec)} (inclusive)")
                mask = [m and lo <= v <= hi for m, v in zip(mask, vals, strict=True)]
                continue
            if a > t:
                kind = kind if kind in ("gt", "ge") else "gt"
            elif a < t:
                kind = kind if kind in ("lt", "le") else "lt"
            else:
                kind = "ge" if kind in ("gt", "ge") else "le"
            conds.append(f"{col} {_OP_WORDS[kind]} {_shown(t, dec)}")
            test = {"gt": t.__lt__, "lt": t.__gt__, "ge": t.__le__, "le": t.__ge__}[kind]
            mask = [m and test(v) for m, v in zip(mask, vals, strict=True)]
        rows = [i for i in range(n) if mask[i]]

        answer, ask = self._answer(op, agg, rows, values, canon_ids, id_name)
        scope = ("Consider only the rows where " + " and ".join(conds) + "." if conds
                 else "Consider all rows of the table.")
        fmt_name = {"csv": "CSV", "markdown": "Markdown", "fixed_width": "fixed-width", "json": "JSON"}
        question = (f"Here is a table in {fmt_name[p.format]} format with {n} row{'s' if n != 1 else ''}:"
                    f"\n\n{table}\n\n{scope} {ask}")
        return TestCase(
            question=question,
            reference=answer,
            guess_chance=0.0,
            meta={"format": p.format, "operation": op, "column": agg, "filters": conds,
                  "matching_rows": len(rows), "row_ids": style},
        )

    def _answer(self, op: str, agg: str | None, rows: list[int], values: dict[str, list],
                ids: list[str], id_name: str) -> tuple[str, str]:
        """(canonical answer, question sentence) of an operation over the matching rows."""
        if op == "count":
            return str(len(rows)), "How many of these rows are there?"
        if op in ("first", "last"):
            row = rows[0] if op == "first" else rows[-1]
            return ids[row], f"What is the {id_name} of the {op} of these rows, in table order?"
        assert agg is not None
        col = [values[agg][i] for i in rows]
        if op == "mode":
            counts: dict[str, int] = {}
            for v in col:
                counts[v] = counts.get(v, 0) + 1
            top = max(counts.values())
            best = min(v for v, c in counts.items() if c == top)
            return best.lower(), (f"What is the most common value of {agg} among these rows? If several "
                                  "values are equally common, give the one that comes first alphabetically.")
        dec = NUMERIC[agg][2]
        if op == "sum":
            return fmt_number(sum(col), dec), f"What is the sum of {agg} over these rows?"
        if op == "min":
            return fmt_number(min(col), dec), f"What is the smallest value of {agg} among these rows?"
        if op == "max":
            return fmt_number(max(col), dec), f"What is the largest value of {agg} among these rows?"
        col.sort()
        k = len(col)
        med = Fraction(col[k // 2]) if k % 2 else Fraction(col[k // 2 - 1] + col[k // 2], 2)
        return fmt_number(med, dec), (f"What is the median of {agg} among these rows? (With an even number "
                                      "of values, the median is the mean of the two middle values.)")

    # -- answers ----------------------------------------------------------------------------

    def parse_answer(self, text: str) -> str | None:
        """A value or id (see parse_cell), or a count stated in a sentence ("There are 6 rows where ...")."""
        return parse_cell(text) or parse_count_sentence(text)

    def wrong_answer(self, rng: random.Random, test: TestCase) -> str:
        ref = test.reference
        if _NUMBER.match(ref):
            d = Decimal(ref)
            step = Decimal(1) if d == d.to_integral_value() else Decimal("0.5")
            return fmt_number_text(d + step * rng.choice((-2, -1, 1, 2)))
        return ref + "x" if rng.random() < 0.5 else "none"

    def difficulty(self, params: TaskParams) -> float:
        """0.08*log2(num_rows + 1) + 0.03*num_columns + 0.12*filter_complexity + operation cost
        (first 0.05, count/last/min/max 0.1, sum/mode 0.3, median 0.35) + format cost (markdown 0,
        csv/fixed_width 0.05, json 0.1).

        The default point (20 rows, 5 columns, count, one filter, csv) is about 0.77; 440 rows of the
        same is about 1.12 and 5000 rows about 1.40.
        """
        p: TablesParams = params  # type: ignore[assignment]
        return (0.08 * math.log2(p.num_rows + 1) + 0.03 * p.num_columns + 0.12 * p.filter_complexity
                + _OP_COST[p.operation] + _FMT_COST[p.format])


_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")
_NUM_TEXT = re.compile(r"^([-+]?)\$?\s?((?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)$")
_TOKEN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_LEAD = re.compile(
    r"^(?:so,?\s*)?(?:the\s+)?(?:final\s+)?(?:answer|result|value|mode|median|sum|count|total|minimum|"
    r"maximum|min|max|id|label)\s*(?:is|=|:)\s*", re.I)


def fmt_number_text(d: Decimal) -> str:
    """Plain decimal text of `d` without trailing zeros ("12.50" -> "12.5", "-0" -> "0")."""
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def parse_cell(text: str) -> str | None:
    """Canonical answer: a number as exact decimal text ("1,234.50" -> "1234.5"), or one table
    token (value or id) lowercased. Several words, lists and hedges are None."""
    t = text.replace("\u2212", "-").replace("*", "").replace("`", "").strip()
    t = _LEAD.sub("", t).strip()
    t = t.strip("\"'").strip()
    if t.endswith("."):
        t = t[:-1].rstrip().strip("\"'")
    if not t:
        return None
    m = _NUM_TEXT.match(t)
    if m:
        return fmt_number_text(Decimal(m[1] + m[2].replace(",", "")))
    if _TOKEN.match(t):
        return t.lower()
    return None


TASK = Tables()
