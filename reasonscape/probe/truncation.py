"""probe.py truncation: loop classes of a point's truncated answers (the classifier: probe/loops.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reasonscape.analysis.render import Table, envelope, records
from reasonscape.errors import InputError
from reasonscape.pointsdb import PointsDB
from reasonscape.probe.locate import point_info, points_tests
from reasonscape.probe.loops import CLASSES, NO_LOOP, SEVERE_COVERAGE, classify

UNIT_CHARS = 60


@dataclass
class TruncationResult:
    verb = "truncation"
    summary: Any
    answers: Any
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return envelope(self.verb, self.options, severe_coverage=SEVERE_COVERAGE, summary=records(self.summary),
                        answers=records(self.answers))

    def tables(self) -> list[Table]:
        a = self.answers.assign(unit=[u if len(u) <= UNIT_CHARS else u[:UNIT_CHARS - 1] + "…"
                                      for u in self.answers["unit"]])
        return [Table("Loop classes of truncated answers", self.summary,
                      {"share": ".1%", "mean_coverage": ".1%"},
                      note=f"severe = loop coverage > {SEVERE_COVERAGE:.0%} of the answer"),
                Table("Truncated answers", a.drop(columns=["start"]), {"coverage": ".1%"})]

    def parts(self) -> list[tuple[str | None, Any]]:
        return [(None, self)]


def truncation(db: PointsDB, point_ids: list[Any] | tuple[Any, ...]) -> TruncationResult:
    """Every truncated answer of the points classified by the segment-based loop detector, and a summary
    per class (count, share, mean coverage, how many are severe)."""
    import pandas as pd

    if not point_ids:
        raise InputError("--point-id: give at least one point id (from: python analyze.py points DATASET)")
    infos = list({i.id: i for i in (point_info(db, p) for p in point_ids)}.values())
    tests_by_point = points_tests(db, infos)
    rows = []
    for info in infos:
        for _, t in tests_by_point[info.id]:
            if not t.get("truncated") or t.get("status") == "error":
                continue
            answer = t.get("answer") if isinstance(t.get("answer"), str) else ""
            loop = classify(answer)
            rows.append({"point_id": info.id, "index": t.get("index"), "completion_tokens": t.get("completion_tokens"),
                         "chars": len(answer), "class": loop.cls, "period": loop.period, "repeats": loop.repeats,
                         "coverage": loop.coverage, "delta_tokens": loop.delta_tokens, "severe": loop.severe,
                         "start": loop.start, "unit": loop.unit})
    cols = ["point_id", "index", "completion_tokens", "chars", "class", "period", "repeats", "coverage",
            "delta_tokens", "severe", "start", "unit"]
    answers = pd.DataFrame(rows, columns=cols)
    summary = []
    for cls in (*CLASSES, NO_LOOP):
        sel = answers[answers["class"] == cls]
        summary.append({"class": cls, "answers": len(sel), "share": len(sel) / len(answers) if len(answers) else None,
                        "mean_coverage": float(sel["coverage"].mean()) if len(sel) else None,
                        "severe": int(sel["severe"].sum())})
    return TruncationResult(pd.DataFrame(summary), answers,
                            {"point_ids": [i.id for i in infos], "truncated_answers": len(answers)})
