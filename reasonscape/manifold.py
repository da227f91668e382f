"""Experiment configs: loading and validation, grid expansion into points, precision levels.

A config names tasks; each task has named grid entries (the `manifold.id` of the points they make).
An entry is either a mapping of param -> value-or-list (expanded as a cartesian product) or a list of
such mappings (explicit points). Calibrated tasks give `target_tokens` in an entry instead of their
calibrated param, which is resolved with a tokenizer (see `calibrate`).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from reasonscape.errors import ConfigError, InputError, file_not_found
from reasonscape.identity import params_key
from reasonscape.tasks.base import Task, field_bounds, generate_tests
from reasonscape.tasks.registry import get_task, task_names, unknown_task_message

_PATH = re.compile(r"^(params|manifold|facets)\.[A-Za-z_][A-Za-z0-9_]*$|^(base_task|eval_id|model|template|sampler)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PrecisionLevel(_Strict):
    """Adaptive sampling of one point: rounds of `count` tests until the interval is narrow enough.

    After each round the point stops when its guess-corrected accuracy interval (untruncated tests)
    has half-width <= `targetci` (or <= `targetciht` when its truncation rate is >= `htrate`), when its
    truncation rate reaches `abortht`, or after `maxrounds` rounds. Without `targetci` every point gets
    exactly `maxrounds` rounds.
    """

    count: int = Field(ge=1, le=100_000)
    targetci: float | None = Field(None, gt=0, le=0.5)
    maxrounds: int = Field(1, ge=1, le=1000)
    targetciht: float | None = Field(None, gt=0, le=0.5)
    htrate: float = Field(0.1, gt=0, le=1)
    abortht: float | None = Field(None, gt=0, le=1)


class View(_Strict):
    """A named analysis recipe (not stored in the DB): group_by axes plus optional filters/facet."""

    view: str
    group_by: list[str] = Field(min_length=1, max_length=3)
    filters: dict[str, Any] = Field(default_factory=dict)
    facet_by: str | None = None

    @field_validator("group_by")
    @classmethod
    def _paths(cls, v: list[str]) -> list[str]:
        for p in v:
            if not _PATH.match(p):
                raise ValueError(f"'{p}' is not a params.*, manifold.* or facets.* path")
        return v


GridEntry = dict[str, Any] | list[dict[str, Any]]


class TaskEntry(_Strict):
    name: str
    label: str = ""
    mode: Literal["grid", "list", "calibrate"] = "grid"
    file: str | None = None  # accepted for compatibility with older configs; generators are registered
    grids: dict[str, GridEntry] = Field(min_length=1)
    views: list[View] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in task_names():
            raise ValueError(unknown_task_message(v))
        return v

    @model_validator(mode="after")
    def _calibrate_has_targets(self) -> TaskEntry:
        for gname, entry in self.grids.items():
            rows = entry if isinstance(entry, list) else [entry]
            for row in rows:
                if not isinstance(row, dict):
                    raise ValueError(f"grids.{gname}: each entry must be a mapping of param -> values")
                has = "target_tokens" in row
                if self.mode == "calibrate" and not has:
                    raise ValueError(f"grids.{gname}: calibrate mode needs target_tokens")
                if self.mode != "calibrate" and has:
                    raise ValueError(f"grids.{gname}: target_tokens is only valid in calibrate mode")
        return self


class ExperimentConfig(_Strict):
    name: str
    description: str = ""
    precision: dict[str, PrecisionLevel] = Field(default_factory=lambda: {"default": PrecisionLevel(count=32)})
    tasks: list[TaskEntry] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> ExperimentConfig:
        seen = set()
        for t in self.tasks:
            if t.name in seen:
                raise ValueError(f"task '{t.name}' listed twice (merge its grids into one entry)")
            seen.add(t.name)
        if not self.precision:
            raise ValueError("precision: define at least one level")
        return self

    def level(self, name: str | None) -> tuple[str, PrecisionLevel]:
        """A precision level by name; None means the first one defined."""
        if name is None:
            return next(iter(self.precision.items()))
        if name not in self.precision:
            raise InputError(f"--precision {name}: not defined in config (defined: {', '.join(self.precision)})")
        return name, self.precision[name]

    def task(self, name: str) -> TaskEntry:
        for t in self.tasks:
            if t.name == name:
                return t
        raise InputError(f"task '{name}' is not in config '{self.name}' (has: {', '.join(self.task_names)})")

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]


@dataclass(frozen=True, slots=True)
class Point:
    """One coordinate of the task plane: base_task + fully resolved params (+ how it was defined)."""

    base_task: str
    params: dict[str, Any] = field(hash=False, compare=False)
    manifold: dict[str, Any] = field(hash=False, compare=False)
    key: str = ""  # base_task + canonical params: the point's task-plane identity

    @staticmethod
    def make(base_task: str, params: dict[str, Any], manifold: dict[str, Any]) -> Point:
        return Point(base_task, params, manifold, f"{base_task}|{params_key(params)}")


def _loc(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_config(path: str | Path) -> ExperimentConfig:
    """Parse and validate a YAML experiment config; every problem is one line naming file and key path."""
    path = Path(path)
    if not path.exists():
        raise file_not_found(path, "config")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping with 'name' and 'tasks'")
    try:
        cfg = ExperimentConfig(**raw)
    except ValidationError as exc:
        # A misspelt key also makes its correct spelling "missing": report the misspelling first.
        err = sorted(exc.errors(), key=lambda e: e.get("type") != "extra_forbidden")[0]
        raise ConfigError(f"{path}: {_loc(err['loc']) or '(top)'}: {_short_msg(err)}") from None
    # Validate every grid value against its task's params model now, not mid-run.
    for ti, t in enumerate(cfg.tasks):
        task = get_task(t.name)
        for gname, entry in t.grids.items():
            for row in _rows(entry):
                for combo in _product(row, skip=("target_tokens",)):
                    if t.mode == "calibrate" and task.calibrated_param:
                        combo.setdefault(task.calibrated_param, _field_min(task, task.calibrated_param))
                    try:
                        task.validate(combo, where=f"{path}: tasks[{ti}].grids.{gname} ({t.name})")
                    except InputError as exc:
                        raise ConfigError(str(exc)) from None
    return cfg


def _short_msg(err: dict[str, Any]) -> str:
    msg = err.get("msg", "invalid")
    if err.get("type") == "extra_forbidden":
        return f"unknown key (value {err.get('input')!r})"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    return msg


def _rows(entry: GridEntry) -> list[dict[str, Any]]:
    return entry if isinstance(entry, list) else [entry]


def _product(row: dict[str, Any], skip: tuple[str, ...] = ()) -> Iterable[dict[str, Any]]:
    keys = [k for k in row if k not in skip]
    values = [row[k] if isinstance(row[k], list) else [row[k]] for k in keys]
    for combo in itertools.product(*values):
        yield dict(zip(keys, combo, strict=True))


def _field_min(task: Task, name: str) -> int:
    lo, _ = _field_range(task, name)
    return lo


def _field_range(task: Task, name: str) -> tuple[int, int]:
    lo, hi = field_bounds(task.Params, name)
    return int(1 if lo is None else lo), int(100_000 if hi is None else hi)


TokenCounter = Callable[[str], int]


def expand_points(cfg: ExperimentConfig, tasks: Iterable[str] | None = None,
                  token_counter: TokenCounter | None = None, seed: int = 42,
                  config_path: str | Path = "config") -> list[Point]:
    """Every point of the config (optionally only some tasks), in config order, duplicates dropped.

    Params are fully resolved (defaults filled in by the task's params model), so a point's identity
    does not depend on how terse the config was.
    """
    wanted = list(tasks) if tasks else None
    if wanted:
        for name in wanted:
            cfg.task(name)
    points: list[Point] = []
    seen: set[str] = set()
    for t in cfg.tasks:
        if wanted and t.name not in wanted:
            continue
        task = get_task(t.name)
        if t.mode == "calibrate" and token_counter is None:
            raise InputError(f"{config_path}: task '{t.name}' uses calibrate mode: pass --tokenizer "
                             "(a local tokenizer directory or an id already in the local HF cache)")
        for gname, entry in t.grids.items():
            for row in _rows(entry):
                targets = row.get("target_tokens")
                targets = targets if isinstance(targets, list) else [targets]
                for combo in _product(row, skip=("target_tokens",)):
                    for target in targets:
                        raw = dict(combo)
                        if t.mode == "calibrate":
                            raw[task.calibrated_param] = calibrate(task, raw, int(target), token_counter, seed)
                        params = task.validate(raw).model_dump(mode="json")
                        p = Point.make(t.name, params, {"id": gname, "target_tokens": target})
                        if p.key not in seen:
                            seen.add(p.key)
                            points.append(p)
    return points


_CALIBRATION_SAMPLES = 3


def calibrate(task: Task, params: dict[str, Any], target_tokens: int, count_tokens: TokenCounter | None,
              seed: int) -> int:
    """Largest value of the task's calibrated param whose questions fit in `target_tokens`.

    The prompt size is measured as the mean token count of the first few questions of the point
    (the same tests the runner will send), and the search is a binary search over the param's range,
    which assumes question length grows with the param (true for rows of a table).
    """
    assert count_tokens is not None and task.calibrated_param
    name = task.calibrated_param
    lo, hi = _field_range(task, name)

    def size(v: int) -> float:
        tests = generate_tests(task, {**params, name: v}, seed, _CALIBRATION_SAMPLES)
        return sum(count_tokens(t.question) for t in tests) / len(tests)

    if size(lo) > target_tokens:
        return lo
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if size(mid) <= target_tokens:
            lo = mid
        else:
            hi = mid - 1
    return lo


def load_token_counter(spec: str) -> TokenCounter:
    """Token counter from a tokenizer given as a local path or an id already in the local HF cache.

    Never downloads: a missing tokenizer is a one-line InputError.
    """
    import os

    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(spec, local_files_only=True)
    except Exception as exc:  # transformers raises OSError/ValueError/… depending on what is missing
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"--tokenizer {spec}: cannot load a tokenizer from that path or the local "
                         f"Hugging Face cache ({first[:160]})") from None

    def count(text: str) -> int:
        return len(tok.encode(text, add_special_tokens=False))

    return count
