"""Cohort tools: list, inspect and verify cohorts, and make context-limited variants of an eval.

A cohort is a model's directory: evals.json plus the runner's result folders (datasets.md). The
matching rule used throughout: a result folder belongs to an eval when the eval's glob selects it
(the folder itself or a file inside it) AND the folder's identity (model, template, sampler from
metadata.json, else from its first NDJSON record) equals the eval's filters. docs/evaluate.md
("cohort.py") documents verify's categories and the context approximation.
"""

from __future__ import annotations

import glob as globmod
import math
import os
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from reasonscape.datasets import EVALS_FILE, Cohort, EvalSpec, find_cohorts, load_cohort
from reasonscape.errors import InputError, RuntimeFailure, shown
from reasonscape.records import METADATA_FILE, STEPS_FILE, open_steps, steps_file

Identity = tuple[str, str, str]


# -- folders --------------------------------------------------------------------------------------

def folder_identities(folder: Path) -> frozenset[Identity]:
    """(model, template, sampler) triples a result folder holds: from metadata.json when it names one
    (the runner writes one folder per eval), else every distinct triple among its records."""
    meta = folder / METADATA_FILE
    if meta.is_file():
        try:
            d = orjson.loads(meta.read_bytes())
        except orjson.JSONDecodeError:
            d = None
        if isinstance(d, dict):
            ident = tuple(_name(d.get(k)) for k in ("model", "template", "sampler"))
            if all(isinstance(x, str) for x in ident):
                return frozenset({ident})  # type: ignore[arg-type]
    steps = steps_file(folder)
    found: set[Identity] = set()
    if steps.is_file():
        from reasonscape.records import iter_step_dicts

        for _, d in iter_step_dicts(steps, strict=False):
            ident = (d.get("model"), d.get("template"), d.get("sampler"))
            if all(isinstance(x, str) for x in ident):
                found.add(ident)  # type: ignore[arg-type]
    return frozenset(found)


def _name(v: Any) -> Any:
    """metadata.json names a template/sampler by string or, as the runner writes it, {"name": ...}."""
    return v.get("name") if isinstance(v, dict) else v


def result_folders(cohort_dir: Path) -> list[Path]:
    """Direct sub-directories of a cohort holding a result-steps.ndjson or a metadata.json."""
    if not cohort_dir.is_dir():
        return []
    return sorted(p.resolve() for p in cohort_dir.iterdir()
                  if p.is_dir() and not p.name.startswith(".")
                  and (steps_file(p).is_file() or (p / METADATA_FILE).is_file()))


def glob_folders(spec: EvalSpec) -> list[Path]:
    """Result folders an eval's glob selects (a matched file selects the folder it is in)."""
    out: set[Path] = set()
    for m in globmod.glob(spec.pattern, recursive=True):
        p = Path(m)
        folder = p if p.is_dir() else p.parent
        if steps_file(folder).is_file() or (folder / METADATA_FILE).is_file():
            out.add(folder.resolve())
    return sorted(out)


def eval_folders(spec: EvalSpec, identities: dict[Path, frozenset[Identity]] | None = None) -> list[Path]:
    """Folders that belong to an eval: selected by its glob and holding its identity."""
    ident = (spec.model, spec.template, spec.sampler)
    cache = identities if identities is not None else {}
    out = []
    for f in glob_folders(spec):
        if f not in cache:
            cache[f] = folder_identities(f)
        if ident in cache[f]:
            out.append(f)
    return out


def _show(idents: frozenset[Identity]) -> str:
    return ", ".join("/".join(i) for i in sorted(idents)) or "no readable identity"


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# -- list / info ----------------------------------------------------------------------------------

def _cohorts(path: str | Path | None) -> list[Cohort]:
    files = find_cohorts(path)
    if not files:
        raise InputError(f"no cohort (evals.json) under {path if path is not None else 'data'}")
    return [load_cohort(f) for f in files]


def list_evals(path: str | Path | None = None, search: str | None = None) -> list[dict[str, Any]]:
    """One row per eval of every cohort under `path`; `search` is a case-insensitive regex on the
    cohort name, label and model."""
    rx = None
    if search:
        try:
            rx = re.compile(search, re.I)
        except re.error as exc:
            raise InputError(f"--search: bad regex '{search}' ({exc})") from None
    rows = []
    for cohort in _cohorts(path):
        for e in cohort.evals:
            if rx and not any(rx.search(s) for s in (cohort.dir.name, e.label, e.model)):
                continue
            rows.append({"cohort": _rel(cohort.dir), "eval_id": e.eval_id, "label": e.label, "model": e.model,
                         "template": e.template, "sampler": e.sampler, "groups": ",".join(e.groups),
                         "tags": ",".join(e.tags), "local": len(eval_folders(e))})
    return rows


def cohort_info(path: str | Path) -> list[dict[str, Any]]:
    """Per eval of one cohort: its folders with size, point and test counts, and whether present."""
    from reasonscape.evaluate import Job, run_job

    cohort = load_cohort(path)
    identities: dict[Path, frozenset[Identity]] = {}
    rows = []
    for e in cohort.evals:
        folders = eval_folders(e, identities)
        keys: set = set()
        tests = 0
        size = 0
        for f in folders:
            size += dir_size(f)
            steps = steps_file(f)
            if steps.is_file():
                part = run_job(Job(0, str(steps), 0, max(1, steps.stat().st_size), (e.model, e.template, e.sampler)))
                keys.update(part.points)
                tests += sum(int(a.counts.sum()) for a in part.points.values())
        rows.append({"eval_id": e.eval_id, "label": e.label, "model": e.model, "template": e.template,
                     "sampler": e.sampler, "present": bool(folders),
                     "folders": ", ".join(f.name for f in folders) or "-",
                     "points": len(keys), "tests": tests, "size_mb": round(size / 1e6, 2)})
    return rows


def markdown_table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    if not rows:
        return "(none)"
    cols = columns or list(rows[0])
    esc = [[str(r.get(c, "")).replace("|", "\\|") for c in cols] for r in rows]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in esc]
    return "\n".join(lines)


def _rel(p: Path) -> str:
    try:
        return os.path.relpath(p)
    except ValueError:
        return str(p)


# -- verify ---------------------------------------------------------------------------------------

@dataclass
class VerifyReport:
    cohorts: int = 0
    evals: int = 0
    folders: int = 0
    missing: list[str] = field(default_factory=list)  # eval with no folder of its identity
    extra: list[str] = field(default_factory=list)  # folder no eval claims
    ambiguous: list[str] = field(default_factory=list)  # folder claimed by two or more evals
    mismatched: list[str] = field(default_factory=list)  # glob selects a folder of another identity (info)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.ambiguous)

    def lines(self) -> list[str]:
        out = [f"missing: {m}" for m in self.missing] + [f"extra: {x}" for x in self.extra]
        out += [f"ambiguous: {a}" for a in self.ambiguous] + [f"note: {m}" for m in self.mismatched]
        verdict = "OK" if self.ok else f"{len(self.missing) + len(self.extra) + len(self.ambiguous)} problem(s)"
        out.append(f"{self.cohorts} cohorts, {self.evals} evals, {self.folders} result folders: {verdict}")
        return out


def verify(path: str | Path | None = None) -> VerifyReport:
    """Check that every eval finds its result folders and every folder has exactly one eval.

    missing: an eval whose glob selects no folder holding its identity; extra: a result folder of
    the cohort no eval claims; ambiguous: a folder claimed by two or more evals (it mixes their
    records). A glob that also selects folders of other identities is only noted: evaluate.py reads
    an eval's records by identity, so such overlaps (e.g. with context variants) are harmless.
    """
    rep = VerifyReport()
    identities: dict[Path, frozenset[Identity]] = {}
    for cohort in _cohorts(path):
        rep.cohorts += 1
        claimed: dict[Path, list[str]] = {}
        for e in cohort.evals:
            rep.evals += 1
            mine = eval_folders(e, identities)
            for f in glob_folders(e):
                if f not in mine:
                    rep.mismatched.append(f"{_rel(f)}: selected by {e.eval_id} ({e.label}) but holds "
                                          f"{_show(identities[f])}")
            if not mine:
                rep.missing.append(f"{_rel(cohort.path)}: {e.eval_id} ({e.label}): glob '{e.glob}' selects no "
                                   f"result folder of {e.model}/{e.template}/{e.sampler}")
            for f in mine:
                claimed.setdefault(f, []).append(e.eval_id)
        for f in result_folders(cohort.dir):
            rep.folders += 1
            owners = claimed.get(f, [])
            if not owners:
                got = identities.get(f)
                rep.extra.append(f"{_rel(f)}: no eval in {EVALS_FILE} claims it "
                                 f"({_show(got if got is not None else folder_identities(f))})")
            elif len(owners) > 1:
                rep.ambiguous.append(f"{_rel(f)}: claimed by {', '.join(owners)}")
    return rep


# -- context variants -----------------------------------------------------------------------------

@dataclass
class ContextResult:
    folder: Path
    sampler: str
    tests: int = 0
    cut: int = 0
    lines: int = 0
    registered: bool = False
    warnings: list[str] = field(default_factory=list)


#: Largest --context: token counts are 32-bit in records and the PointsDB.
MAX_CONTEXT = (1 << 31) - 1


def context_label(n: int) -> str:
    return f"{n // 1024}k" if n % 1024 == 0 else str(n)


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", s).strip("-") or "x"


class _Cutter:
    """Cuts an answer to a token budget: by tokenizer when given, else by character fraction."""

    def __init__(self, tokenizer: str | None):
        self.tok = None
        self.method = "chars"
        if tokenizer:
            self.method = f"tokenizer:{tokenizer}"
            try:
                if Path(tokenizer).is_file():
                    from tokenizers import Tokenizer

                    t = Tokenizer.from_file(tokenizer)
                    self.tok = (lambda s: t.encode(s, add_special_tokens=False).ids, t.decode)
                else:
                    from transformers import AutoTokenizer

                    t = AutoTokenizer.from_pretrained(tokenizer)
                    self.tok = (lambda s: t.encode(s, add_special_tokens=False), t.decode)
            except Exception as exc:  # noqa: BLE001 - any loader failure is one line for the user
                raise InputError(f"--tokenizer: cannot load '{tokenizer}' ({str(exc).splitlines()[0]})") from None

    def cut(self, text: str, completion_tokens: int, limit: int) -> str:
        if self.tok is not None:
            encode, decode = self.tok
            return decode(encode(text)[:limit])
        keep = math.floor(len(text) * limit / completion_tokens) if completion_tokens > 0 else 0
        return text[:keep]


def make_context_variant(cohort: str | Path, eval_id: str, context: int, *, tokenizer: str | None = None,
                         include_prompt: bool = False, register: bool = True, now: datetime | None = None
                         ) -> ContextResult:
    """Write a new result folder in which an eval's answers are limited to `context` tokens.

    A test whose completion fits (completion_tokens <= limit; limit = context, or context minus the
    prompt tokens with include_prompt) is copied unchanged. A longer one is cut to `limit` tokens (by
    tokenizer, or by the character fraction limit/completion_tokens), marked truncated with
    completion_tokens = limit, and re-graded. The variant's sampler is `<sampler>-ctx<label>` so it is
    a separate eval; with `register` an entry for it is appended to evals.json (once).
    """
    from reasonscape.scoring import ERROR, grade
    from reasonscape.tasks.registry import get_task

    if isinstance(context, bool) or not isinstance(context, int) or not 1 <= context <= MAX_CONTEXT:
        shown = str(context) if len(str(context)) <= 24 else str(context)[:21] + "..."
        raise InputError(f"--context: must be a positive number of tokens (1..{MAX_CONTEXT}), got {shown}")
    c = load_cohort(cohort)
    spec = next((e for e in c.evals if e.eval_id == eval_id), None)
    if spec is None:
        raise InputError(f"--eval-id: {eval_id} not in {c.path} (valid: {', '.join(e.eval_id for e in c.evals)})")
    folders = eval_folders(spec)
    sources = [steps_file(f) for f in folders if steps_file(f).is_file()]
    if not sources:
        raise InputError(f"{c.path}: eval {eval_id} has no result folder here (pull it first: data.py pull cohort)")
    sampler = f"{spec.sampler}-ctx{context_label(context)}"
    stamp = (now or datetime.now()).strftime("%Y-%m-%d_%H-%M-%S")
    base = f"{stamp}_context_{_slug(spec.model)}_{_slug(spec.template)}_{_slug(sampler)}"
    folder = c.dir / base
    k = 1
    while folder.exists():
        folder = c.dir / f"{base}-{k}"
        k += 1
    cutter = _Cutter(tokenizer)
    res = ContextResult(folder, sampler)
    ident = (spec.model, spec.template, spec.sampler)
    missing_tasks: set[str] = set()
    # built in a hidden folder renamed into place at the end: a failure or a kill leaves no partial
    # result folder that evaluate.py or verify would take for a run
    work = c.dir / f".{folder.name}.tmp-{os.getpid()}"
    work.mkdir(parents=True)
    tmp = work / STEPS_FILE
    try:
        with open(tmp, "wb") as out:
            for src in sources:
                with open_steps(src) as fh:
                    for lineno, line in enumerate(fh, 1):
                        if not line.endswith(b"\n") or not line.strip():
                            continue
                        try:
                            d = orjson.loads(line)
                        except orjson.JSONDecodeError:
                            res.warnings.append(f"{src}: skipped a malformed line")
                            continue
                        if not isinstance(d, dict) or (d.get("model"), d.get("template"), d.get("sampler")) != ident:
                            continue
                        task = None
                        name = d.get("base_task")
                        if not isinstance(name, str):
                            raise InputError(f"{src}:{lineno}: base_task: expected a string")
                        try:
                            task = get_task(name)
                        except InputError:
                            if name not in missing_tasks:
                                missing_tasks.add(name)
                                res.warnings.append(f"task '{name}' has no grader here; cut answers keep their status")
                        tests = d.get("tests", [])
                        if not isinstance(tests, list) or not all(isinstance(t, dict) for t in tests):
                            raise InputError(f"{src}:{lineno}: tests: expected a list of objects")
                        for k, t in enumerate(tests):
                            res.tests += 1
                            if t.get("status") == ERROR:
                                continue
                            pt = _tokens(t, "prompt_tokens", src, lineno, k)
                            limit = context - (pt if include_prompt else 0)
                            limit = max(limit, 0)
                            ct = _tokens(t, "completion_tokens", src, lineno, k)
                            if ct <= limit:
                                continue
                            answer = str(t.get("answer") or "")
                            t["answer"] = cutter.cut(answer, ct, limit)
                            t["context_cut"] = {"completion_tokens": ct, "method": cutter.method}
                            t["completion_tokens"] = limit
                            t["truncated"] = True
                            if task is not None:
                                meta = t.get("meta")
                                g = grade(task, t["answer"], str(t.get("reference") or ""),
                                          meta if isinstance(meta, dict) else None, truncated=True)
                                t["status"], t["extracted"] = g.status, g.extracted
                            res.cut += 1
                        d["sampler"] = sampler
                        out.write(orjson.dumps(d) + b"\n")
                        res.lines += 1
        _write_meta(work, folders, spec, sampler, context, include_prompt, cutter, res)
        os.replace(work, folder)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    if register:
        try:
            res.registered = _register(c, spec, sampler, context)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    return res


def _tokens(t: dict, name: str, src: Path, lineno: int, k: int) -> int:
    v = t.get(name, 0)
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_CONTEXT:
        raise InputError(f"{src}:{lineno}: tests[{k}].{name} = {shown(v)}: expected an integer in 0..{MAX_CONTEXT}")
    return v


def _write_meta(folder: Path, folders: list[Path], spec: EvalSpec, sampler: str, context: int,
                include_prompt: bool, cutter: _Cutter, res: ContextResult) -> None:
    meta: dict[str, Any] = {}
    src_meta = folders[0] / METADATA_FILE
    if src_meta.is_file():
        try:
            loaded = orjson.loads(src_meta.read_bytes())
            meta = loaded if isinstance(loaded, dict) else {}
        except orjson.JSONDecodeError:
            meta = {}
    meta["model"] = spec.model
    if not isinstance(meta.get("template"), dict):
        meta["template"] = spec.template
    meta["sampler"] = {**meta["sampler"], "name": sampler} if isinstance(meta.get("sampler"), dict) else sampler
    meta.update(context={"limit": context, "include_prompt": include_prompt, "method": cutter.method,
                         "source_eval_id": spec.eval_id, "sources": [f.name for f in folders],
                         "tests": res.tests, "cut": res.cut})
    _write_json(folder / METADATA_FILE, meta)


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n")
    os.replace(tmp, path)


def _register(c: Cohort, spec: EvalSpec, sampler: str, context: int) -> bool:
    """Append the variant's entry to evals.json unless one with its identity exists."""
    raw = orjson.loads(c.path.read_bytes())
    if any(isinstance(x, dict) and x.get("filters", {}).get("model") == spec.model
           and x.get("filters", {}).get("template") == spec.template
           and x.get("filters", {}).get("sampler") == sampler for x in raw):
        return False
    rel = os.path.relpath(c.dir, _root_for(spec))
    pattern = f"{rel}/*_context_{_slug(spec.model)}_{_slug(spec.template)}_{_slug(sampler)}*/*"
    groups = [g for g in spec.groups if not g.startswith("ctx:")] + [f"ctx:{context_label(context)}"]
    entry: dict[str, Any] = {"evaluate": {"glob": pattern},
                             "filters": {"model": spec.model, "template": spec.template, "sampler": sampler},
                             "label": f"{spec.label} (ctx {context_label(context)})", "groups": groups}
    if spec.hf_id:
        entry["hf_id"] = spec.hf_id
    raw.append(entry)
    _write_json(c.path, raw)
    check = load_cohort(c.path)  # the appended entry must validate like any other
    if not any(e.sampler == sampler for e in check.evals):
        raise RuntimeFailure(f"{c.path}: registering the context variant failed")
    return True


def _root_for(spec: EvalSpec) -> Path:
    from reasonscape.datasets import find_root

    return find_root(spec.cohort)
