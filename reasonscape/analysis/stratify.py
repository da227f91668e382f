"""`stratify`: from an ablation, a final item set that meets per-bucket targets exactly.

Selection (pure, deterministic):
1. Items are the ablation's paired items, one per id (an id seen at several points keeps its first
   occurrence in (base_task, params, index) order; the others are counted as `duplicate_ids`).
2. Keep-list ids come first and are marked `existing`. A keep id that is not among the paired items
   (not in the item file, or not answered under both conditions) is an error: the keep-list is the
   work already done and must not silently shrink. A keep id that is paired but not needs-reasoning
   under this run, or whose bucket has no target, is dropped and listed (`keep_dropped`, and one
   `warning:` line on the CLI): the final set holds needs-reasoning items only.
3. Each bucket is filled up to its target with its other needs-reasoning items, taken in the order of
   sha256("<seed>:<id>"): deterministic for a seed, independent of the order items were tested in,
   and stable as more items are tested (an item chosen stays chosen unless a new one ranks before it).
4. Status per bucket: met (total == target), short by N (not enough needs-reasoning items), or over
   by N (the kept items alone exceed the target: kept items are never dropped).

Targets `2=150,3=150,4=100,5+=50` name buckets (the ablation's --group-by values). A key matches a
bucket of the same text; otherwise `N+` matches numeric buckets >= N and `A-B` numeric buckets in
[A, B] (so `--group-by params.steps` works with the seed's targets). A bucket matching two keys is an
error.

The CLI prints the per-bucket table (bucket, target, existing, new, total, available, status). When a
bucket misses its target nothing is written and the exit code is 1, unless --allow-short (the short
set is written, exit 0). The file (--output, JSONL, replaced atomically) has one line per item: id,
question, answer, steps, bucket, existing, class, base_task, params, index, meta (the test's metadata:
an item file's extra fields) and `a`/`b` with each condition's eval_id, template, sampler and
correctness.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from reasonscape.analysis.ablation import AblationResult
from reasonscape.analysis.dimensions import natural_key
from reasonscape.analysis.render import Table, envelope, records
from reasonscape.errors import InputError, RuntimeFailure, shorten

MAX_TARGET = 10**9
MAX_KEEP_BYTES = 256 << 20
TABLE_COLUMNS = ["bucket", "target", "existing", "new", "total", "available", "status"]
_RANGE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*-\s*(-?\d+(?:\.\d+)?)\s*$")
_PLUS = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*\+\s*$")


@dataclass
class StratifyResult:
    verb = "stratify"
    table: pd.DataFrame
    selected: pd.DataFrame
    summary: dict[str, Any]
    conditions: dict[str, dict[str, Any]]
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def met(self) -> bool:
        return bool(self.summary["met"])

    def to_json(self) -> dict[str, Any]:
        return envelope(self.verb, self.options, conditions=self.conditions, summary=self.summary,
                        buckets=records(self.table))

    def tables(self) -> list[Table]:
        s = self.summary
        note = (f"{s['total']:,} items selected ({s['existing']:,} kept, {s['new']:,} new) from {s['needs_reasoning']:,} "
                f"needs-reasoning of {s['items']:,} paired items; sample seed {self.options.get('seed')}.")
        if s["keep_dropped"]:
            note += f" Keep-list ids dropped: {len(s['keep_dropped']):,} (see --format json)."
        note += f" Written: {s['written']}." if s["written"] else " Nothing written."
        return [Table("Stratified selection", self.table, note=note)]

    def parts(self) -> list[tuple[str | None, Any]]:
        return [(None, self)]


def parse_targets(text: Any) -> list[tuple[str, int]]:
    """`2=150,3=150,4=100,5+=50` -> [("2", 150), ...]: keys non-empty and distinct, counts whole >= 0."""
    if not isinstance(text, str) or not text.strip():
        raise InputError("--targets: expected bucket=count pairs, e.g. 2=150,3=150,4=100,5+=50")
    if len(text) > 100_000:
        raise InputError("--targets: longer than 100,000 characters")
    out: list[tuple[str, int]] = []
    seen: set[str] = set()
    for part in text.split(","):
        key, sep, value = part.rpartition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise InputError(f"--targets: {shorten(part.strip())!r} is not bucket=count (e.g. 5+=50)")
        if not value.isdigit() or not value.isascii() or int(value) > MAX_TARGET:
            raise InputError(f"--targets: {shorten(key)}={shorten(value)!r}: count must be a whole number "
                             f"0..{MAX_TARGET:,}")
        if key in seen:
            raise InputError(f"--targets: bucket {shorten(key)!r} given twice")
        seen.add(key)
        out.append((key, int(value)))
    return out


def _target_list(targets: Any) -> list[tuple[str, int]]:
    """Targets given as a mapping or (bucket, count) pairs (the notebook API), checked like --targets."""
    bad = InputError(f"targets {shorten(repr(targets))}: expected 'B=N,...', a mapping or (bucket, count) pairs")
    try:
        pairs = list(targets.items()) if isinstance(targets, dict) else [tuple(t) for t in targets]
    except TypeError:
        raise bad from None
    if any(len(p) != 2 for p in pairs):
        raise bad
    return parse_targets(",".join(f"{k}={v}" for k, v in pairs))


def read_keep(path: str | Path) -> list[str]:
    """Item ids from a keep file: one per line, or JSONL objects with an `id`; blank and `#` lines skipped."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"--keep {p}: is a directory (give a file of item ids)")
    if not p.is_file():
        raise InputError(f"--keep {p}: file not found")
    if p.stat().st_size > MAX_KEEP_BYTES:
        raise InputError(f"--keep {p}: larger than {MAX_KEEP_BYTES >> 20} MiB")
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"--keep {p}: not UTF-8 text (byte {exc.start})") from None
    ids: list[str] = []
    seen: set[str] = set()
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if s.startswith("{"):
            try:
                d = orjson.loads(s)
            except orjson.JSONDecodeError:
                raise InputError(f"--keep {p}:{n}: malformed JSON line") from None
            v = d.get("id") if isinstance(d, dict) else None
            if isinstance(v, bool) or not isinstance(v, str | int) or not str(v).strip():
                raise InputError(f"--keep {p}:{n}: expected an \"id\" (string or integer), got {shorten(repr(v))}")
            s = str(v).strip()
        if "\x00" in s:
            raise InputError(f"--keep {p}:{n}: id contains a NUL byte")
        if s not in seen:
            seen.add(s)
            ids.append(s)
    return ids


def _number(v: str) -> float | None:
    try:
        x = float(v)
    except ValueError:
        return None
    return x if x == x and abs(x) != float("inf") else None


def bucket_map(targets: list[tuple[str, int]], buckets: list[str]) -> dict[str, str]:
    """bucket value -> target key (literal match first, then `N+` and `A-B` over numeric buckets)."""
    keys = [k for k, _ in targets]
    out: dict[str, str] = {}
    for b in buckets:
        if b in keys:
            out[b] = b
            continue
        x = _number(b)
        if x is None:
            continue
        hits = []
        for k in keys:
            m, r = _PLUS.match(k), _RANGE.match(k)
            if (m and x >= float(m.group(1))) or (r and float(r.group(1)) <= x <= float(r.group(2))):
                hits.append(k)
        if len(hits) > 1:
            raise InputError(f"--targets: bucket {shorten(b)!r} matches {' and '.join(repr(h) for h in hits)}; "
                             "make the ranges disjoint")
        if hits:
            out[b] = hits[0]
    return out


def _rank(seed: int, item: str) -> str:
    return hashlib.sha256(f"{seed}:{item}".encode("utf-8", "surrogatepass")).hexdigest()


def stratify(ab: AblationResult, targets: Any, keep: Any = None, seed: int = 0) -> StratifyResult:
    """Select the final item set from an ablation (see the module doc). `keep`: ids, or a keep file path."""
    tgt = parse_targets(targets) if isinstance(targets, str) else _target_list(targets)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise InputError(f"--seed {seed!r}: expected a whole number in 0..2**63-1")
    keep_ids = read_keep(keep) if isinstance(keep, str | Path) else [str(k) for k in (keep or ())]
    items = ab.items.copy()
    items["_order"] = range(len(items))
    n_rows = len(items)
    items = items.drop_duplicates("id", keep="first")
    duplicate_ids = n_rows - len(items)
    bmap = bucket_map(tgt, sorted(set(items["group"])))
    items["target_key"] = items["group"].map(bmap)
    by_id = items.set_index("id", drop=False)
    missing = [k for k in keep_ids if k not in by_id.index]
    if missing:
        listed = ", ".join(repr(shorten(m, 30)) for m in missing[:3])
        raise InputError(f"--keep: {len(missing):,} of {len(keep_ids):,} ids are not among the paired items ({listed}"
                         f"{', ...' if len(missing) > 3 else ''}): put them in the item file and test them under both "
                         "conditions, or remove them from the keep-list")
    kept: list[str] = []
    dropped: list[dict[str, Any]] = []
    for k in keep_ids:
        row = by_id.loc[k]
        if row["class"] != "needs-reasoning":
            dropped.append({"id": k, "reason": f"class {row['class']}", "bucket": row["group"]})
        elif pd.isna(row["target_key"]):
            dropped.append({"id": k, "reason": "bucket has no target", "bucket": row["group"]})
        else:
            kept.append(k)
    kept_set = set(kept)
    nr = items[items["class"] == "needs-reasoning"]
    rows: list[dict[str, Any]] = []
    chosen: list[pd.DataFrame] = []
    for key, target in tgt:
        pool = nr[nr["target_key"] == key]
        existing = pool[pool["id"].isin(kept_set)]
        existing = existing.set_index("id", drop=False).loc[[k for k in kept if k in set(existing["id"])]]
        rest = pool[~pool["id"].isin(kept_set)]
        rest = rest.assign(_rank=[_rank(seed, i) for i in rest["id"]]).sort_values("_rank", kind="stable")
        new = rest.head(max(target - len(existing), 0)).drop(columns="_rank")
        total = len(existing) + len(new)
        status = ("met" if total == target else f"short by {target - total}" if total < target
                  else f"over by {total - target}")
        rows.append({"bucket": key, "target": target, "existing": len(existing), "new": len(new), "total": total,
                     "available": len(pool), "status": status})
        chosen.append(existing.reset_index(drop=True).assign(existing=True, bucket=key))
        chosen.append(new.reset_index(drop=True).assign(existing=False, bucket=key))
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    for c in ("target", "existing", "new", "total", "available"):
        table[c] = table[c].astype("int64")
    selected = pd.concat(chosen, ignore_index=True) if chosen else pd.DataFrame()
    unmet = {r["bucket"]: r["status"] for r in rows if r["status"] != "met"}
    summary = {"met": not unmet, "unmet": unmet, "items": len(items), "duplicate_ids": duplicate_ids,
               "needs_reasoning": int((items["class"] == "needs-reasoning").sum()),
               "total": int(table["total"].sum()) if len(table) else 0,
               "existing": int(table["existing"].sum()) if len(table) else 0,
               "new": int(table["new"].sum()) if len(table) else 0,
               "keep": len(keep_ids), "keep_dropped": dropped,
               "untargeted_buckets": sorted((str(b) for b in set(items["group"]) if b not in bmap), key=natural_key),
               "unmatched_targets": [k for k, _ in tgt if k not in set(bmap.values())],
               "written": None}
    opts = {**ab.options, "targets": [{"bucket": k, "target": t} for k, t in tgt], "keep": len(keep_ids),
            "seed": seed, "ablation_seed": ab.options.get("seed")}
    return StratifyResult(table, selected, summary, ab.conditions, opts)


def item_lines(result: StratifyResult) -> list[bytes]:
    """The final item file's lines (JSONL), in table order: kept items first within a bucket."""
    ca, cb = result.conditions["a"], result.conditions["b"]
    out = []
    for r in result.selected.itertuples(index=False):
        d = {"id": r.id, "question": r.question, "answer": r.answer, "steps": r.steps, "bucket": r.bucket,
             "existing": bool(r.existing), "class": r[result.selected.columns.get_loc("class")],
             "base_task": r.base_task, "params": r.params, "index": int(r.index), "meta": r.meta,
             "a": {"eval_id": ca["eval_id"], "template": ca["template"], "sampler": ca["sampler"],
                   "correct": bool(r.correct_a)},
             "b": {"eval_id": cb["eval_id"], "template": cb["template"], "sampler": cb["sampler"],
                   "correct": bool(r.correct_b)}}
        if d["steps"] is not None and d["steps"] != d["steps"]:
            d["steps"] = None
        out.append(orjson.dumps(d, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n")
    return out


def check_output(path: str | Path) -> Path:
    """An --output that can never be written is bad input, said before any work."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"--output {p}: is a directory (give a .jsonl file name)")
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"--output {p}: {parent} is a file, not a directory")
            break
    return p


def warnings(result: StratifyResult, limit: int = 20) -> list[str]:
    """The `warning:` lines a stratification deserves: dropped keep-list ids, targets naming no bucket."""
    s = result.summary
    out = [f"warning: keep-list id {d['id']!r} dropped ({d['reason']}, bucket {d['bucket']})"
           for d in s["keep_dropped"][:limit]]
    if len(s["keep_dropped"]) > limit:
        out.append(f"warning: ... and {len(s['keep_dropped']) - limit} more keep-list ids dropped")
    if s["unmatched_targets"]:
        buckets = sorted({str(b) for b in result.selected.get("bucket", [])} | set(s["untargeted_buckets"]),
                         key=natural_key)
        out.append(f"warning: --targets {', '.join(map(repr, s['unmatched_targets']))} match no bucket of the paired "
                   f"items (buckets: {', '.join(buckets[:30]) or 'none'})")
    return out


def write_atomic(path: str | Path, lines: list[bytes]) -> Path:
    """Write `lines` to `path` through a temporary file in the same folder, fsync'd, then renamed over it:
    a reader (or a crash) sees the old file or the new one, never half of one."""
    p = check_output(path)
    parent = p.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name[:60]}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise InputError(f"--output {p}: cannot write there ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            for line in lines:
                fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise RuntimeFailure(f"--output {p}: cannot write ({exc.strerror or exc})") from None
    return p


def finish(result: StratifyResult, output: str | Path | None, allow_short: bool = False) -> StratifyResult:
    """Write the item file when every target is met (or `allow_short`); `summary.written` says where."""
    if output is not None and (result.met or allow_short):
        result.summary["written"] = str(write_atomic(output, item_lines(result)))
    return result


def unmet_message(result: StratifyResult, output: str | Path | None) -> str:
    """The one-line failure of a stratification that missed a target."""
    parts = ", ".join(f"bucket {b} {s}" for b, s in result.summary["unmet"].items())
    tail = "nothing written; --allow-short writes the set anyway" if output is not None else "no --output given"
    return f"stratify: targets not met: {parts} ({tail})"


__all__ = ["StratifyResult", "stratify", "parse_targets", "read_keep", "bucket_map", "item_lines", "write_atomic",
           "check_output", "warnings", "finish", "unmet_message", "records"]
