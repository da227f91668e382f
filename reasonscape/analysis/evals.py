"""`evals` and `tasks`: discover eval_id values and base tasks before filtering."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from reasonscape.analysis.render import TableResult
from reasonscape.errors import InputError
from reasonscape.pointsdb import PointsDB

MAX_REGEX_CHARS = 500
MAX_FACET_PAIRS = 50


def compile_search(pattern: str | None, flag: str = "--search") -> re.Pattern[str] | None:
    """A case-insensitive regex from the user, or one InputError naming the problem."""
    if pattern is None:
        return None
    if not isinstance(pattern, str):
        raise InputError(f"{flag}: expected a regular expression")
    if len(pattern) > MAX_REGEX_CHARS:
        raise InputError(f"{flag}: regular expression longer than {MAX_REGEX_CHARS} characters")
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise InputError(f"{flag} {pattern!r}: invalid regular expression ({exc})") from None


def parse_facets(text: str | None, flag: str = "--facets") -> dict[str, str]:
    """`"size:small,arch:moe"` -> {"size": "small", "arch": "moe"} (AND); malformed = one InputError."""
    if text is None:
        return {}
    pairs = [p.strip() for p in str(text).split(",")]
    if not text.strip() or len(pairs) > MAX_FACET_PAIRS:
        raise InputError(f"{flag}: expected 1..{MAX_FACET_PAIRS} comma-separated key:value pairs, "
                         f"e.g. size:small,arch:moe")
    out: dict[str, str] = {}
    for p in pairs:
        key, sep, value = p.partition(":")
        if not sep or not key.strip() or not value.strip():
            raise InputError(f"{flag} {p!r}: expected key:value (e.g. arch:moe)")
        out[key.strip()] = value.strip()
    return out


EVAL_COLUMNS = ["eval_id", "label", "model", "template", "sampler", "groups", "hf_id", "points", "tests"]


def evals(db: PointsDB, search: str | None = None, facets: str | dict[str, str] | None = None,
          filters: dict[str, Any] | str | None = None) -> TableResult:
    """Evaluations of the DB: --search regex on the model (or label), --facets key:value AND-list."""
    rx = compile_search(search)
    want = parse_facets(facets) if isinstance(facets, str) or facets is None else dict(facets)
    frame = db.evals(filters)
    keep = []
    for r in frame.itertuples(index=False):
        f = r.facets if isinstance(r.facets, dict) else {}
        ok = rx is None or bool(rx.search(str(r.model))) or bool(rx.search(str(r.label)))
        ok = ok and all(str(f.get(k)) == v or f"{k}:{v}" in list(r.groups) for k, v in want.items())
        keep.append(ok)
    out = frame[keep] if len(frame) else frame
    out = out.assign(groups=[list(g) for g in out["groups"]]) if len(out) else out
    out = out[EVAL_COLUMNS].reset_index(drop=True)
    out["points"] = out["points"].astype("int64")
    out["tests"] = out["tests"].astype("int64")
    opts = {"search": search, "facets": want, "filters": filters or {}}
    return TableResult("evals", "evals", out, opts, title="Evaluations",
                       formats={"tests": ",", "points": ","})


TASK_COLUMNS = ["base_task", "points", "evals", "tests", "views"]


def _views(config: Path | None) -> dict[str, list[dict[str, Any]]]:
    """View definitions per task from the experiment config (empty when there is none)."""
    if config is None or not Path(config).is_file():
        return {}
    from reasonscape.manifold import load_config

    cfg = load_config(config)
    return {t.name: [{"view": v.view, "group_by": list(v.group_by), "filters": dict(v.filters),
                      "facet_by": v.facet_by} for v in t.views] for t in cfg.tasks}


def tasks(db: PointsDB, search: str | None = None, config: Path | None = None,
          filters: dict[str, Any] | str | None = None) -> TableResult:
    """Base tasks with point/eval/test counts and the views (surfaces, projections) their config defines."""
    rx = compile_search(search)
    frame = db.tasks(filters)
    views = _views(config)
    names = sorted(set(frame["base_task"]) | set(views))
    counts = frame.set_index("base_task")
    rows = []
    for name in names:
        if rx is not None and not rx.search(name):
            continue
        has = name in counts.index
        rows.append({"base_task": name, "points": int(counts.at[name, "points"]) if has else 0,
                     "evals": int(counts.at[name, "evals"]) if has else 0,
                     "tests": int(counts.at[name, "tests"]) if has else 0, "views": views.get(name, [])})
    import pandas as pd

    out = pd.DataFrame(rows, columns=TASK_COLUMNS)

    def show_views(vs: list[dict[str, Any]]) -> str:
        return "; ".join(f"{v['view']} ({' x '.join(v['group_by'])})" for v in vs) or "-"

    return TableResult("tasks", "tasks", out, {"search": search, "filters": filters or {},
                                                "config": str(config) if config else None},
                       title="Tasks", formats={"views": show_views, "tests": ","})
