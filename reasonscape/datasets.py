"""Dataset configs (data/<name>.json), cohorts (evals.json) and the result folders they select.

Path rules (docs/evaluate.md has the long form):

* A dataset file's `db`, `cache`, `config` and `cohorts[].path` are relative to the dataset file's
  directory (`data/r12.json` -> `cohorts: [{"path": "r12/Qwen3-32B/evals.json"}]` is
  `data/r12/Qwen3-32B/evals.json`). A cohort path may be a directory (its evals.json is used) or a glob.
* An evals.json `evaluate.glob` is absolute, or starts with `./`/`../` (relative to the evals.json's
  directory), or otherwise is relative to the repository root: the parent of the nearest ancestor
  directory named `data` (the layout `data/r12/<Model>/evals.json` with globs `data/r12/<Model>/...`).
  Without such an ancestor the evals.json's directory is the root.
* A glob match that is a directory selects `<dir>/result-steps.ndjson` (or its `.zst`); a matched `*.ndjson[.zst]` file is
  taken as is; other matches (metadata.json) are ignored.
"""

from __future__ import annotations

import difflib
import glob as globmod
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from reasonscape.errors import ConfigError, InputError
from reasonscape.identity import eval_id as make_eval_id
from reasonscape.records import read_json, steps_file

_M = TypeVar("_M", bound=BaseModel)

EVALS_FILE = "evals.json"
#: Keys a dataset's cohort filter may use; list values mean "any of" (all of, for tags and groups).
COHORT_FILTER_KEYS = ("eval_id", "model", "template", "sampler", "label", "hf_id", "tags", "groups")


def _listify(v: Any) -> Any:
    return [v] if isinstance(v, str) else v


class EvaluateSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    glob: str = Field(min_length=1)


class IdentityFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field(min_length=1)
    template: str = Field(min_length=1)
    sampler: str = Field(min_length=1)


class EvalEntry(BaseModel):
    """One entry of a cohort's evals.json (missing optional keys default; an unknown key is an error: a
    misspelt key silently ignored would change which results an eval selects)."""

    model_config = ConfigDict(extra="forbid")
    evaluate: EvaluateSpec
    filters: IdentityFilters
    label: str = ""
    groups: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    hf_id: str | None = None

    _v_lists = field_validator("groups", "tags", mode="before")(_listify)

    @property
    def eval_id(self) -> str:
        f = self.filters
        return make_eval_id(f.model, f.template, f.sampler)


class CohortRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(min_length=1)
    filters: dict[str, str | list[str]] = Field(default_factory=dict)

    @field_validator("filters")
    @classmethod
    def _known_keys(cls, v: dict[str, Any]) -> dict[str, Any]:
        bad = [k for k in v if k not in COHORT_FILTER_KEYS]
        if bad:
            raise ValueError(f"unknown filter key '{bad[0]}' (valid: {', '.join(COHORT_FILTER_KEYS)})")
        return v


class DatasetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    db: str = Field(min_length=1)
    cache: str | None = None
    config: str | None = None
    cohorts: list[CohortRef] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9._-]+", v):
            raise ValueError("must use only letters, digits, '.', '_' and '-'")
        return v


def load_json_model(path: Path, model: type[_M]) -> _M:
    """A JSON file holding one object, validated by a pydantic model: every problem (missing, not JSON,
    not an object, a wrong key or value) is one ConfigError naming the file and the key path."""
    raw = read_json(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: (top level): expected a JSON object")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(validation_message(path, exc, model=model)) from None


def validation_message(path: str | Path, exc: ValidationError, prefix: str = "",
                       model: type[BaseModel] | None = None) -> str:
    """First pydantic error as one line: `file: key.path: problem` (`prefix` leads the key path).

    An unknown key names the keys valid there and the close matches (`model` is the top-level model,
    to find the keys of the nested one the key sits in)."""
    errors = exc.errors()
    # a misspelt key is both unknown and a missing required one: name the misspelling
    err = next((e for e in errors if e.get("type") == "extra_forbidden"), errors[0])
    loc = prefix
    for part in err.get("loc", ()):
        loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
    msg = err.get("msg", "invalid value").removeprefix("Value error, ")
    if err.get("type") == "extra_forbidden" and model is not None:
        msg = _unknown_key_message(str(err["loc"][-1]), _keys_at(model, err["loc"][:-1]))
    return f"{path}: {loc or '(top level)'}: {msg}"


def _keys_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the (nested) model a location points into."""
    import typing

    cur: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        info = cur.model_fields.get(part) if isinstance(cur, type) and issubclass(cur, BaseModel) else None
        if info is None:
            return []
        ann = info.annotation
        for arg in (ann, *typing.get_args(ann)):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                cur = arg
                break
        else:
            return []
    return list(cur.model_fields) if isinstance(cur, type) and issubclass(cur, BaseModel) else []


def _unknown_key_message(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown key '{key}' (valid: {', '.join(valid)}){hint}"


def facets_from_groups(groups: list[str]) -> dict[str, Any]:
    """["arch:moe", "size:large"] -> {"arch": "moe", "size": "large"}; a bare tag maps to true.

    The value is everything after the first colon; a repeated key keeps its last value.
    """
    out: dict[str, Any] = {}
    for g in groups:
        key, sep, value = g.partition(":")
        out[key.strip()] = value.strip() if sep else True
    return out


def find_root(start: Path) -> Path:
    """Repository root for relative globs: parent of the nearest ancestor named `data`, else `start`."""
    start = start.resolve()
    for p in (start, *start.parents):
        if p.name == "data":
            return p.parent
    return start


def resolve_glob(pattern: str, evals_dir: Path) -> str:
    if Path(pattern).is_absolute():
        return pattern
    if pattern.startswith(("./", "../")):
        return str(evals_dir / pattern)
    return str(find_root(evals_dir) / pattern)


def _match_files(pattern: str) -> list[Path]:
    out: set[Path] = set()
    for m in globmod.glob(pattern, recursive=True):
        p = Path(m)
        if p.is_dir():
            if steps_file(p).is_file():
                out.add(steps_file(p).resolve())
        elif p.name.endswith((".ndjson", ".ndjson.zst")) and p.is_file():
            out.add(p.resolve())
    return sorted(out)


@dataclass
class EvalSpec:
    """An evaluation of a cohort: its identity, presentation metadata and how to find its results."""

    eval_id: str
    model: str
    template: str
    sampler: str
    label: str
    groups: list[str]
    facets: dict[str, Any]
    tags: list[str]
    hf_id: str | None
    glob: str  # as written in evals.json
    pattern: str  # resolved, absolute
    cohort: Path  # the cohort directory
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_entry(cls, entry: EvalEntry, evals_path: Path) -> EvalSpec:
        f = entry.filters
        return cls(entry.eval_id, f.model, f.template, f.sampler, entry.label or f.model, list(entry.groups),
                   facets_from_groups(entry.groups), list(entry.tags), entry.hf_id, entry.evaluate.glob,
                   resolve_glob(entry.evaluate.glob, evals_path.parent.resolve()), evals_path.parent.resolve(),
                   dict(entry.model_extra or {}))

    def result_files(self) -> list[Path]:
        """NDJSON files this eval's glob selects (sorted; may include other evals' folders: the
        identity filter is applied to records when they are read)."""
        return _match_files(self.pattern)

    def matches(self, filters: dict[str, str | list[str]]) -> bool:
        for key, want in filters.items():
            wanted = _listify(want)
            if key in ("tags", "groups"):
                if not set(wanted) <= set(getattr(self, key)):
                    return False
            elif getattr(self, key) not in wanted:
                return False
        return True

    def record(self) -> dict[str, Any]:
        """Row of the PointsDB `evals` table."""
        return {"eval_id": self.eval_id, "model": self.model, "template": self.template, "sampler": self.sampler,
                "label": self.label, "groups": self.groups, "facets": self.facets, "tags": self.tags,
                "hf_id": self.hf_id}


@dataclass
class Cohort:
    path: Path  # evals.json
    evals: list[EvalSpec]

    @property
    def dir(self) -> Path:
        return self.path.parent


def load_cohort(path: str | Path) -> Cohort:
    """Read and validate a cohort's evals.json (a directory means its evals.json)."""
    p = Path(path)
    if p.is_dir():
        p = p / EVALS_FILE
    if not p.is_file():
        raise InputError(f"{p}: cohort file not found")
    raw = read_json(p)
    if not isinstance(raw, list):
        raise ConfigError(f"{p}: (top level): expected a JSON list of evals")
    evals: list[EvalSpec] = []
    for i, item in enumerate(raw):
        try:
            entry = EvalEntry.model_validate(item)
        except ValidationError as exc:
            raise ConfigError(validation_message(p, exc, prefix=f"[{i}]", model=EvalEntry)) from None
        evals.append(EvalSpec.from_entry(entry, p.resolve()))
    seen: dict[str, int] = {}
    for i, e in enumerate(evals):
        if e.eval_id in seen:
            raise ConfigError(f"{p}: [{i}].filters: same model/template/sampler as entry [{seen[e.eval_id]}] "
                              f"(eval_id {e.eval_id})")
        seen[e.eval_id] = i
    return Cohort(p.resolve(), evals)


@dataclass
class Dataset:
    path: Path
    name: str
    db: Path
    cache: Path | None
    config: Path | None
    cohorts: list[Cohort]
    evals: list[EvalSpec]  # selected by the cohort filters, unique by eval_id, in file order


def load_dataset(path: str | Path) -> Dataset:
    """Read and validate data/<name>.json and every cohort it lists (errors name file and key path)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: dataset file not found")
    cfg = load_json_model(p, DatasetConfig)
    base = p.resolve().parent
    cohorts: list[Cohort] = []
    evals: list[EvalSpec] = []
    seen: set[str] = set()
    for i, ref in enumerate(cfg.cohorts):
        target = base / ref.path
        paths = sorted(Path(m) for m in globmod.glob(str(target))) if globmod.has_magic(ref.path) else [target]
        if not paths:
            raise InputError(f"{p}: cohorts[{i}].path: '{ref.path}' matches no cohort")
        for cp in paths:
            if not (cp.is_file() or (cp / EVALS_FILE).is_file()):
                raise InputError(f"{p}: cohorts[{i}].path: {cp} not found")
            cohort = load_cohort(cp)
            cohorts.append(cohort)
            _check_filters(p, i, ref.filters, cohort)
            for e in cohort.evals:
                if e.matches(ref.filters) and e.eval_id not in seen:
                    seen.add(e.eval_id)
                    evals.append(e)
    return Dataset(p.resolve(), cfg.name, base / cfg.db, base / cfg.cache if cfg.cache else None,
                   base / cfg.config if cfg.config else None, cohorts, evals)


def _check_filters(path: Path, i: int, filters: dict[str, str | list[str]], cohort: Cohort) -> None:
    """Every value of a cohort filter must match some eval of the cohort: a misspelt value would
    otherwise drop evals from the dataset, and evaluate.py would delete their points."""
    if not filters:
        return
    for key, want in filters.items():
        for value in _listify(want):
            have = [v for e in cohort.evals for v in (getattr(e, key) if key in ("tags", "groups")
                                                       else [getattr(e, key)]) if isinstance(v, str)]
            if value not in have:
                close = difflib.get_close_matches(str(value), sorted(set(have)), n=3, cutoff=0.5)
                hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
                raise ConfigError(f"{path}: cohorts[{i}].filters.{key}: '{value}' matches no eval of "
                                  f"{cohort.path}{hint}")
    if not any(e.matches(filters) for e in cohort.evals):
        raise ConfigError(f"{path}: cohorts[{i}].filters select no eval of {cohort.path}")


def find_cohorts(path: str | Path | None = None) -> list[Path]:
    """evals.json files under `path` (a cohort dir, a directory tree, or a glob); default `data/`."""
    target = str(path) if path is not None else "data"
    roots = [Path(m) for m in globmod.glob(target)] if globmod.has_magic(target) else [Path(target)]
    found: set[Path] = set()
    for r in roots:
        if r.is_file() and r.name == EVALS_FILE:
            found.add(r.resolve())
        elif r.is_dir():
            found.update(q.resolve() for q in r.rglob(EVALS_FILE) if ".blobs" not in q.parts)
    return sorted(found)
