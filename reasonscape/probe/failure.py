"""probe.py failure: the failing answers of chosen points, and failures broken down by test metadata.

The generator's per-test `meta` (the "genresult") says what each question was made of; counting
failures per meta value shows *which* kind of question a model fails at a point, not only how often.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson

from reasonscape.analysis.dimensions import natural_key
from reasonscape.analysis.render import Table, envelope, records
from reasonscape.errors import InputError
from reasonscape.pointsdb import PointsDB
from reasonscape.probe.locate import point_info, points_tests

#: Shortened answers keep the start and, mostly, the end (where the final answer is).
HEAD_CHARS, TAIL_CHARS = 80, 240
MAX_VALUES_PER_KEY = 20
MAX_VALUE_CHARS = 80
FAILED = ("incorrect", "invalid")


@dataclass
class FailureResult:
    verb = "failure"
    points: Any
    failures: Any
    breakdown: Any
    options: dict[str, Any] = field(default_factory=dict)
    skipped_keys: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return envelope(self.verb, self.options, points=records(self.points), failures=records(self.failures),
                        breakdown=records(self.breakdown), skipped_keys=self.skipped_keys)

    def tables(self) -> list[Table]:
        shown = self.options.get("limit")
        total = int(self.points["failures"].sum()) if len(self.points) else 0
        note = (f"{len(self.failures)} of {total} failures shown" + ("" if self.options.get("full") else
                f"; answers shortened to their first {HEAD_CHARS} and last {TAIL_CHARS} characters (--full)")
                ) if shown is not None or not self.options.get("full") else None
        return [Table("Points", self.points.assign(params=[_text(p) for p in self.points["params"]])),
                Table("Failures by test metadata (meta)", self.breakdown, {"failure_rate": ".1%"},
                      note="Every answered test of the points, per value of each key of its meta"
                      + (f" (keys with more than {MAX_VALUES_PER_KEY} values left out: "
                         f"{', '.join(self.skipped_keys)})." if self.skipped_keys else ".")),
                Table("Failing answers", self.failures, note=note)]

    def parts(self) -> list[tuple[str | None, Any]]:
        return [(None, self)]


def _text(v: Any, limit: int | None = MAX_VALUE_CHARS) -> str:
    s = v if isinstance(v, str) else orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode()
    return s if limit is None or len(s) <= limit else s[: limit - 1] + "…"


def shorten(answer: str) -> str:
    """The start and the end of a long answer (the end holds the final answer)."""
    if len(answer) <= HEAD_CHARS + TAIL_CHARS + 5:
        return answer
    return f"{answer[:HEAD_CHARS]} […{len(answer) - HEAD_CHARS - TAIL_CHARS:,} chars…] {answer[-TAIL_CHARS:]}"


def meta_breakdown(tests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per meta key and value: tests, failures and failure rate (scalar values; others as JSON text).
    Keys with more than MAX_VALUES_PER_KEY distinct values are left out (see `skipped_keys`)."""
    counts: dict[str, Counter] = defaultdict(Counter)
    fails: dict[str, Counter] = defaultdict(Counter)
    for t in tests:
        meta = t.get("meta")
        if not isinstance(meta, dict):
            continue
        failed = t.get("status") in FAILED
        for k, v in meta.items():
            value = _text(v)
            counts[str(k)][value] += 1
            fails[str(k)][value] += failed
    rows = []
    for key in sorted(counts):
        if len(counts[key]) > MAX_VALUES_PER_KEY:
            continue  # per-test text (the expression itself, an id): no breakdown to see
        for v in sorted(counts[key], key=natural_key):
            n, f = counts[key][v], fails[key][v]
            rows.append({"key": key, "value": v, "tests": n, "failures": f, "failure_rate": f / n})
    return rows


def failure(db: PointsDB, point_ids: list[Any] | tuple[Any, ...], limit: int | None = None,
            full: bool = False) -> FailureResult:
    """Failing (incorrect or invalid) answers of the points with extracted and reference answers, and
    the failure rate per value of every test-metadata key over all their answered tests."""
    import pandas as pd

    if not point_ids:
        raise InputError("--point-id: give at least one point id (from: python analyze.py points DATASET)")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise InputError(f"--limit {limit!r}: expected a whole number >= 0")
    infos = list({i.id: i for i in (point_info(db, p) for p in point_ids)}.values())
    tests_by_point = points_tests(db, infos)
    prow, frows, answered = [], [], []
    for info in infos:
        tests = [t for _, t in tests_by_point[info.id] if t.get("status") != "error"]
        answered += tests
        bad = [t for t in tests if t.get("status") in FAILED]
        prow.append({"point_id": info.id, "eval_id": info.eval_id, "model": info.model, "base_task": info.base_task,
                     "params": info.params, "tests": len(tests), "failures": len(bad),
                     "truncated": sum(bool(t.get("truncated")) for t in tests)})
        for t in bad:
            answer = t.get("answer") if isinstance(t.get("answer"), str) else ""
            frows.append({"point_id": info.id, "index": t.get("index"), "status": t.get("status"),
                          "truncated": bool(t.get("truncated")), "completion_tokens": t.get("completion_tokens"),
                          "extracted": t.get("extracted"), "reference": t.get("reference"),
                          "answer": answer if full else shorten(answer)})
    if limit is not None:
        frows = frows[:limit]
    cols = ["point_id", "index", "status", "truncated", "completion_tokens", "extracted", "reference", "answer"]
    return FailureResult(pd.DataFrame(prow), pd.DataFrame(frows, columns=cols),
                         pd.DataFrame(meta_breakdown(answered), columns=["key", "value", "tests", "failures",
                                                                         "failure_rate"]),
                         {"point_ids": [i.id for i in infos], "limit": limit, "full": full},
                         skipped_keys(answered))


def skipped_keys(tests: list[dict[str, Any]]) -> list[str]:
    """Meta keys with too many distinct values for a breakdown."""
    values: dict[str, set] = defaultdict(set)
    for t in tests:
        if isinstance(t.get("meta"), dict):
            for k, v in t["meta"].items():
                values[str(k)].add(_text(v))
    return sorted(k for k, v in values.items() if len(v) > MAX_VALUES_PER_KEY)
