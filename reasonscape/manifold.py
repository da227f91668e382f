"""Experiment configs: loading and validation, grid expansion into points, precision levels.

A config names tasks; each task has named grid entries (the `manifold.id` of the points they make).
An entry is either a mapping of param -> value-or-list (expanded as a cartesian product) or a list of
such mappings (explicit points). Calibrated tasks give `target_tokens` in an entry instead of their
calibrated param, which is resolved with a tokenizer (see `calibrate`).

Loading checks everything before any request is sent: unknown keys at every level (with close
matches), types (strict: a YAML `true` is not 1, "32" is not 32), ranges, nan/inf anywhere, every grid
combination against its task's params model, view paths and filter values against the task's params,
and the size of the grid. Each problem is one ConfigError line `file: key.path: problem`.
"""

from __future__ import annotations

import itertools
import math
import re
import types
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from reasonscape.errors import ConfigError, InputError, close_matches_hint, read_input_text, shown
from reasonscape.identity import POINT_ID_CHARS, canonical_json, normalize_point_id
from reasonscape.prompts import check_name
from reasonscape.tasks.base import Task, field_bounds, generate_tests
from reasonscape.tasks.registry import (
    bind_task_source,
    get_task,
    is_task_name,
    task_names,
    unknown_task_message,
)

_PATH = re.compile(r"^(params|manifold|facets)\.[A-Za-z_][A-Za-z0-9_]*$|^(base_task|eval_id|model|template|sampler)$")

#: Most points (before duplicates are dropped) one config may define: bounds load/expansion cost.
MAX_POINTS = 5_000_000
#: Largest `target_tokens` of a calibrated grid (the longest context windows are a few million tokens).
MAX_TARGET_TOKENS = 4_000_000
#: Most tests a precision level may ask of one point (count * maxrounds).
MAX_TESTS_PER_POINT = 1_000_000
#: `manifold.*` paths a point has.
MANIFOLD_KEYS = ("id", "target_tokens")
#: Plain filter keys of the filter language (docs/analyze.md), besides params./manifold./facets. paths.
_STRING_FILTER_KEYS = ("eval_id", "base_task", "model", "template", "sampler")


class _Strict(BaseModel):
    # strict: a YAML `true` is not the int 1 and "32" is not 32; nan/inf are never a setting.
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


Name = Annotated[str, Field(min_length=1, max_length=128)]


class PrecisionLevel(_Strict):
    """Adaptive sampling of one point: rounds of `count` tests until the interval is narrow enough.

    After each round the point stops when its guess-corrected accuracy interval has half-width
    <= `targetci` (or <= `targetciht` when its truncation rate is >= `htrate`), when its truncation
    rate reaches `abortht`, or after `maxrounds` rounds. Without `targetci` every point gets exactly
    `maxrounds` rounds.
    """

    count: int = Field(ge=1, le=100_000)
    targetci: float | None = Field(None, gt=0, le=0.5)
    maxrounds: int = Field(1, ge=1, le=1000)
    targetciht: float | None = Field(None, gt=0, le=0.5)
    htrate: float = Field(0.1, gt=0, le=1)
    abortht: float | None = Field(None, gt=0, le=1)

    @model_validator(mode="after")
    def _coherent(self) -> PrecisionLevel:
        # Settings that the stopping rule would silently ignore are mistakes, not options.
        if self.targetciht is not None and self.targetci is None:
            raise ValueError("targetciht needs targetci (without targetci every point runs maxrounds rounds)")
        if "htrate" in self.model_fields_set and self.targetciht is None:
            raise ValueError("htrate only matters with targetciht")
        if self.count * self.maxrounds > MAX_TESTS_PER_POINT:
            raise ValueError(f"count * maxrounds = {self.count * self.maxrounds} tests per point "
                             f"(at most {MAX_TESTS_PER_POINT})")
        return self


class View(_Strict):
    """A named analysis recipe (not stored in the DB): group_by axes plus optional filters/facet.

    Paths and filter values are checked against the task's params when the config is loaded.
    """

    view: Name
    group_by: list[str] = Field(min_length=1, max_length=3)
    filters: dict[str, Any] = Field(default_factory=dict)
    facet_by: str | None = None

    @field_validator("group_by")
    @classmethod
    def _paths(cls, v: list[str]) -> list[str]:
        for p in v:
            if not _PATH.match(p):
                raise ValueError(f"'{p}' is not a params.*, manifold.* or facets.* path")
        if len(set(v)) != len(v):
            raise ValueError(f"{v}: a path is listed twice")
        return v

    @field_validator("facet_by")
    @classmethod
    def _facet_path(cls, v: str | None) -> str | None:
        if v is not None and not _PATH.match(v):
            raise ValueError(f"'{v}' is not a params.*, manifold.* or facets.* path")
        return v

    @field_validator("view")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v)


#: A grid entry: a mapping of param -> value-or-list, or a list of such mappings (checked in load_config).
GridEntry = dict[str, Any] | list[dict[str, Any]]


class TaskEntry(_Strict):
    name: str
    label: str = Field("", max_length=200)
    mode: Literal["grid", "list", "calibrate"] = "grid"
    file: str | None = None  # accepted for compatibility with older configs; generators are registered
    #: Where an `items:<name>` task reads its items (see reasonscape/tasks/items.py and docs/items.md).
    source: dict[str, Any] | None = None
    grids: dict[str, Any] = Field(min_length=1)
    views: list[View] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        if not is_task_name(v):
            raise ValueError(unknown_task_message(v))
        return v

    @field_validator("file")
    @classmethod
    def _relative(cls, v: str | None) -> str | None:
        # Ignored, but a path that climbs out of the project or is absolute is never legitimate here.
        if v is not None:
            parts = PurePosixPath(v.replace("\\", "/")).parts
            if not v or PureWindowsPath(v).is_absolute() or v.startswith("/") or ".." in parts or "\x00" in v:
                raise ValueError(f"{v!r}: must be a relative path inside the project")
        return v

    @field_validator("grids")
    @classmethod
    def _grid_names(cls, v: dict[str, Any]) -> dict[str, Any]:
        for name in v:
            check_name(name)
        return v


class ExperimentConfig(_Strict):
    name: Name
    description: str = Field("", max_length=10_000)
    precision: dict[str, PrecisionLevel] = Field(default_factory=lambda: {"default": PrecisionLevel(count=32)})
    tasks: list[TaskEntry] = Field(min_length=1, max_length=1000)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v)

    @field_validator("precision")
    @classmethod
    def _levels(cls, v: dict[str, PrecisionLevel]) -> dict[str, PrecisionLevel]:
        if not v:
            raise ValueError("define at least one level")
        for name in v:
            check_name(name)
        return v

    #: Set by load_config once every grid combination passed its task's params model (expansion
    #: then need not validate each point again).
    _validated: bool = PrivateAttr(default=False)

    @model_validator(mode="after")
    def _unique(self) -> ExperimentConfig:
        seen = set()
        for t in self.tasks:
            if t.name in seen:
                raise ValueError(f"task '{t.name}' listed twice (merge its grids into one entry)")
            seen.add(t.name)
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
    """One coordinate of the task plane: base_task + fully resolved params (+ how it was defined).

    `manifold` dicts are shared between the points of one grid entry and target: treat as read-only.
    """

    base_task: str
    params: dict[str, Any] = field(hash=False, compare=False)
    manifold: dict[str, Any] = field(hash=False, compare=False)
    key: str = ""  # base_task + canonical params: the point's task-plane identity

    @staticmethod
    def make(base_task: str, params: dict[str, Any], manifold: dict[str, Any]) -> Point:
        return Point(base_task, params, manifold, f"{base_task}|{canonical_json(params)}")


# -- reading -------------------------------------------------------------------------------------

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_YAML_LOADER):  # type: ignore[misc, valid-type]
    """Safe YAML loader that refuses a key given twice in one mapping (YAML keeps the last silently)."""


def _construct_mapping(loader: Any, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` may be overridden by later keys
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
        except TypeError:
            raise yaml.constructor.ConstructorError(None, None, f"unusable mapping key {key!r}",
                                                    key_node.start_mark) from None
        if duplicate:
            raise yaml.constructor.ConstructorError(None, None, f"key {key!r} given twice", key_node.start_mark)
        seen.add(key)
    return yaml.constructor.SafeConstructor.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# YAML 1.1 reads `1e-2` as text; YAML 1.2 (and every user) reads it as a number.
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def _parse_yaml(path: Path, text: str) -> Any:
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise ConfigError(f"{path}{where}: invalid YAML ({problem})") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid YAML (nested too deeply)") from None


def _loc(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, str) and ("[" in part or part.startswith("function-")):
            continue  # pydantic's union/validator tags, not keys of the file
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _check_raw(node: Any, loc: tuple[Any, ...], path: Path, stack: set[int], done: set[int]) -> None:
    """Reject what no setting can be: non-string keys, nan/inf, dates, sets, recursive aliases.

    Containers reached through several aliases are walked once (`done`), so a "billion laughs" file
    costs its size, not its expansion.
    """
    if isinstance(node, dict | list):
        if id(node) in stack:
            raise ConfigError(f"{path}: {_loc(loc) or '(top)'}: a YAML alias that contains itself")
        if id(node) in done:
            return
        stack.add(id(node))
        if isinstance(node, dict):
            for k, v in node.items():
                if not isinstance(k, str):
                    raise ConfigError(f"{path}: {_loc(loc) or '(top)'}: key {k!r} is not a string")
                _check_raw(v, (*loc, k), path, stack, done)
        else:
            for i, v in enumerate(node):
                _check_raw(v, (*loc, i), path, stack, done)
        stack.discard(id(node))
        done.add(id(node))
    elif isinstance(node, float) and not math.isfinite(node):
        raise ConfigError(f"{path}: {_loc(loc)}: {node} is not a finite number")
    elif isinstance(node, date | datetime):
        raise ConfigError(f"{path}: {_loc(loc)}: {node} reads as a date (quote it to make it text)")
    elif not (node is None or isinstance(node, str | int | float)):
        raise ConfigError(f"{path}: {_loc(loc)}: a YAML {type(node).__name__} is not a valid value")


def _element(tp: Any) -> Any:
    """The type one level inside `tp` (list item, dict value, the non-None member of an Optional)."""
    origin = get_origin(tp)
    args = [a for a in get_args(tp) if a is not type(None)]
    if origin in (list, dict):
        return args[-1] if args else None
    if origin in (Union, types.UnionType):
        return next((a for a in args if _is_model(a) or get_origin(a) in (list, dict)), None)
    return None


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The config model an error location points into (to suggest its keys for a misspelt one)."""
    cur: Any = root
    for part in loc:
        if _is_model(cur):
            f = cur.model_fields.get(part) if isinstance(part, str) else None
            if f is None:
                return None
            cur = f.annotation
        else:
            cur = _element(cur)
        while cur is not None and not _is_model(cur) and get_origin(cur) not in (list, dict):
            cur = _element(cur)
            if cur is None:
                break
    while cur is not None and not _is_model(cur):
        cur = _element(cur)
    return cur if _is_model(cur) else None


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(value), f"a {type(value).__name__}")


def format_config_error(exc: ValidationError, path: Path | str, root: type[BaseModel]) -> str:
    """One line for the first problem pydantic found, misspelt keys first (with close matches)."""
    errs = sorted(exc.errors(), key=lambda e: e.get("type") != "extra_forbidden")
    err = errs[0]
    loc = tuple(err.get("loc", ()))
    where = _loc(loc) or "(top)"
    if err.get("type") == "extra_forbidden":
        model = _model_at(root, loc[:-1])
        valid = list(model.model_fields) if model else []
        hint = close_matches_hint(str(loc[-1]), valid)
        listed = f" (valid: {', '.join(valid)})" if valid and not hint else ""
        return f"{path}: {where}: unknown key{hint}{listed}"
    if err.get("type") == "missing":
        return f"{path}: {where}: missing (required)"
    msg = err.get("msg", "invalid")
    if msg.startswith("Value error, "):  # our own validators name the value themselves
        return f"{path}: {where}: {msg[len('Value error, '):]}"
    got = f" (got {shown(err.get('input'), 60)})" if "input" in err and not isinstance(err.get("input"), dict) else ""
    return f"{path}: {where}: {msg}{got}"


def load_config(path: str | Path) -> ExperimentConfig:
    """Parse and validate a YAML experiment config; every problem is one line naming file and key path."""
    path = Path(path)
    raw = _parse_yaml(path, read_input_text(path, "config"))
    if raw is None:
        raise ConfigError(f"{path}: config file has no settings (only comments?)")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping with 'name' and 'tasks' "
                          f"(got {_kind(raw)})")
    try:
        _check_raw(raw, (), path, set(), set())
    except RecursionError:
        raise ConfigError(f"{path}: invalid YAML (nested too deeply)") from None
    try:
        cfg = ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_config_error(exc, path, ExperimentConfig)) from None
    for ti, t in enumerate(cfg.tasks):
        try:
            bind_task_source(t.name, t.source, path.parent, f"{path}: tasks[{ti}]")
        except InputError as exc:
            raise ConfigError(str(exc)) from None
        _check_task(path, ti, t)
    total = count_points(cfg)
    if total > MAX_POINTS:
        raise ConfigError(f"{path}: the grids define {total:,} points (at most {MAX_POINTS:,}): split the config")
    # Validate every grid combination against its task's params model now, not mid-run.
    for ti, t in enumerate(cfg.tasks):
        task = get_task(t.name)
        validate = task.Params.model_validate
        fill = task.calibrated_param if t.mode == "calibrate" else None
        fill_value = _field_min(task, fill) if fill else None
        for gname, entry in t.grids.items():
            for ri, row in enumerate(_rows(entry)):
                keys, axes = _axes(row)
                for values in itertools.product(*axes):
                    combo = dict(zip(keys, values, strict=True))
                    if fill:
                        combo[fill] = fill_value
                    try:
                        validate(combo)
                    except ValidationError:
                        where = f"{path}: tasks[{ti}].grids.{gname}{_row_suffix(entry, ri)} ({t.name})"
                        try:
                            task.validate(combo, where=where)
                        except InputError as exc:
                            raise ConfigError(str(exc)) from None
                        raise  # pragma: no cover - both validations see the same params
    cfg._validated = True
    return cfg


# -- semantic checks (need the task's params model) ------------------------------------------------

def _row_suffix(entry: Any, index: int) -> str:
    return f"[{index}]" if isinstance(entry, list) else ""


def _check_task(path: Path, ti: int, t: TaskEntry) -> None:
    where = f"{path}: tasks[{ti}]"
    try:
        task = get_task(t.name)  # a family member (gym:<name>) is only known once its module looks
    except ConfigError:
        raise
    except InputError as exc:
        raise ConfigError(f"{where}.name: {exc}") from None
    fields = task.Params.model_fields
    if t.mode == "calibrate" and not task.calibrated_param:
        calibrated = [n for n in task_names() if get_task(n).calibrated_param]
        raise ConfigError(f"{where}.mode: calibrate: task '{t.name}' has no calibrated parameter "
                          f"(calibrated tasks: {', '.join(calibrated)})")
    for gname, entry in t.grids.items():
        gw = f"{where}.grids.{gname}"
        if isinstance(entry, list):
            if not entry:
                raise ConfigError(f"{gw}: an empty list of points (give at least one mapping)")
            rows = [(f"{gw}[{i}]", r) for i, r in enumerate(entry)]
        else:
            rows = [(gw, entry)]
        for rw, row in rows:
            if not isinstance(row, dict):
                raise ConfigError(f"{rw}: expected a mapping of param -> value or list of values "
                                  f"(got {shown(row, 60)})")
            _check_row(rw, row, t, task, fields)
    names = [v.view for v in t.views]
    for vi, v in enumerate(t.views):
        vw = f"{where}.views[{vi}]"
        if names.index(v.view) != vi:
            raise ConfigError(f"{vw}.view: '{v.view}' listed twice")
        for i, p in enumerate(v.group_by):
            _check_path(f"{vw}.group_by[{i}]", p, t.name, fields)
        if v.facet_by is not None:
            _check_path(f"{vw}.facet_by", v.facet_by, t.name, fields)
        for key, value in v.filters.items():
            _check_filter(f"{vw}.filters.{key}", key, value, t, task)


def _check_row(rw: str, row: dict[str, Any], t: TaskEntry, task: Task, fields: dict[str, Any]) -> None:
    for key, value in row.items():
        kw = f"{rw}.{key}"
        if key == "count":
            raise ConfigError(f"{kw}: tests per point are set by the precision level, not the grid")
        if key == "target_tokens":
            if t.mode != "calibrate":
                raise ConfigError(f"{kw}: target_tokens is only valid in calibrate mode")
            _check_targets(kw, value)
            continue
        if key not in fields:
            hint = close_matches_hint(key, fields)
            raise ConfigError(f"{kw}: unknown parameter '{key}' of {t.name}{hint} (valid: {', '.join(fields)})")
        if t.mode == "calibrate" and key == task.calibrated_param:
            raise ConfigError(f"{kw}: set by calibration from target_tokens (remove it)")
        values = value if isinstance(value, list) else [value]
        if isinstance(value, list) and not value:
            raise ConfigError(f"{kw}: an empty list of values (the grid would have no points)")
        seen: set[Any] = set()  # a set: an axis may hold many values
        for v in values:
            if isinstance(v, dict | list):
                raise ConfigError(f"{kw}: {shown(v, 60)} is not a value (a list of values is one axis)")
            if v in seen:
                raise ConfigError(f"{kw}: value {v!r} listed twice")
            seen.add(v)
    if t.mode == "calibrate" and "target_tokens" not in row:
        raise ConfigError(f"{rw}: calibrate mode needs target_tokens")


def _check_targets(kw: str, value: Any) -> None:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise ConfigError(f"{kw}: an empty list of values (the grid would have no points)")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_TARGET_TOKENS:
            raise ConfigError(f"{kw}: {shown(v, 60)} is not a token count (a whole number 1..{MAX_TARGET_TOKENS})")
    if len(set(values)) != len(values):
        raise ConfigError(f"{kw}: a value is listed twice")


def _check_path(where: str, p: str, task_name: str, fields: dict[str, Any]) -> None:
    root, _, name = p.partition(".")
    if root == "params" and name not in fields:
        raise ConfigError(f"{where}: '{p}': {task_name} has no parameter '{name}'"
                          f"{close_matches_hint(name, fields)} (valid: {', '.join(fields)})")
    if root == "manifold" and name not in MANIFOLD_KEYS:
        raise ConfigError(f"{where}: '{p}': points have manifold.id and manifold.target_tokens only")


_ADAPTERS: dict[tuple[str, str], TypeAdapter[Any]] = {}


def _param_adapter(task: Task, name: str) -> TypeAdapter[Any]:
    key = (task.name, name)
    if key not in _ADAPTERS:
        info = task.Params.model_fields[name]
        _ADAPTERS[key] = TypeAdapter(Annotated[(info.annotation, *info.metadata)]
                                     if info.metadata else info.annotation)
    return _ADAPTERS[key]


def _check_filter(where: str, key: str, value: Any, t: TaskEntry, task: Task) -> None:
    """A view filter must be able to match: known key, scalar or non-empty list, values of the param's type."""
    values = value if isinstance(value, list) else [value]
    if not values:
        raise ConfigError(f"{where}: an empty list matches nothing")
    if key == "groups":
        groups = values if all(isinstance(g, list) for g in values) else [values]
        for g in groups:
            if not g or not all(isinstance(tag, str) and ":" in tag for tag in g):
                raise ConfigError(f"{where}: groups are lists of 'key:value' strings (got {shown(value, 60)})")
        return
    for v in values:
        if isinstance(v, dict | list):
            raise ConfigError(f"{where}: {shown(v, 60)} is not a value (give a value or a list of values)")
    if key in _STRING_FILTER_KEYS:
        if not all(isinstance(v, str) for v in values):
            raise ConfigError(f"{where}: values must be strings (got {shown(value, 60)})")
        if key == "base_task" and values != [t.name]:
            raise ConfigError(f"{where}: the view belongs to task '{t.name}' (got {shown(value, 60)})")
        return
    if key == "id":
        if not all(normalize_point_id(v) is not None for v in values):
            raise ConfigError(f"{where}: point ids are {POINT_ID_CHARS} hex digits, as analyze.py points lists them "
                              f"(got {shown(value, 60)})")
        return
    if not _PATH.match(key):
        raise ConfigError(f"{where}: unknown filter key '{key}' (valid: eval_id, base_task, groups, model, "
                          "template, sampler, id, params.<name>, manifold.<name>, facets.<name>)")
    root, _, name = key.partition(".")
    fields = task.Params.model_fields
    _check_path(where, key, t.name, fields)
    for v in values:
        if v is None:
            continue
        if root == "params":
            try:
                _param_adapter(task, name).validate_python(v, strict=True)
            except ValidationError as exc:
                msg = exc.errors()[0].get("msg", "invalid")
                raise ConfigError(f"{where}: {v!r}: {msg} (a value {t.name}.{name} can take)") from None
        elif root == "manifold" and name == "id" and v not in t.grids:
            raise ConfigError(f"{where}: {v!r} is not a grid entry of {t.name}"
                              f"{close_matches_hint(str(v), t.grids)} (entries: {', '.join(t.grids)})")
        elif root == "manifold" and name == "target_tokens" and (isinstance(v, bool) or not isinstance(v, int)):
            raise ConfigError(f"{where}: {v!r} is not a token count")
        elif root == "facets" and not isinstance(v, str | int | float | bool):
            raise ConfigError(f"{where}: {v!r} is not a facet value")


# -- grid expansion --------------------------------------------------------------------------------

def _rows(entry: GridEntry) -> list[dict[str, Any]]:
    return entry if isinstance(entry, list) else [entry]


def _axes(row: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """(param names, value lists) of a row, target_tokens left out."""
    keys = [k for k in row if k != "target_tokens"]
    return keys, [row[k] if isinstance(row[k], list) else [row[k]] for k in keys]


def _targets(row: dict[str, Any]) -> list[Any]:
    t = row.get("target_tokens")
    return t if isinstance(t, list) else [t]


def count_points(cfg: ExperimentConfig, tasks: Iterable[str] | None = None) -> int:
    """How many points the config's grids define (before duplicates are dropped), without making them.

    Cheap (a product of list lengths per grid row): what a caller checks before expanding a grid that
    may be huge.
    """
    wanted = set(tasks) if tasks else None
    total = 0
    for t in cfg.tasks:
        if wanted and t.name not in wanted:
            continue
        for entry in t.grids.values():
            for row in _rows(entry):
                n = 1
                for value in row.values():
                    n *= len(value) if isinstance(value, list) else 1
                total += n
    return total


def _field_min(task: Task, name: str) -> int:
    lo, _ = _field_range(task, name)
    return lo


def _field_range(task: Task, name: str) -> tuple[int, int]:
    lo, hi = field_bounds(task.Params, name)
    return int(1 if lo is None else lo), int(100_000 if hi is None else hi)


TokenCounter = Callable[[str], int]


def _plain_fields(task: Task) -> dict[str, bool] | None:
    """{field: is_float} when the task's params model only checks (never transforms) values, else None.

    Such a model's output is its input with defaults filled in and ints widened to floats for float
    fields (strict mode allows no other coercion), so a validated grid can be expanded without building
    a model per point. Any field validator, serializer, non-plain type or extra model validator (which
    might rewrite values) opts the task out.
    """
    model = task.Params
    dec = model.__pydantic_decorators__
    if dec.field_validators or dec.field_serializers or dec.model_serializers or dec.validators \
            or dec.root_validators or set(dec.model_validators) - {"_joint_constraints"}:
        return None
    if not model.model_config.get("strict"):
        return None
    out: dict[str, bool] = {}
    for name, info in model.model_fields.items():
        ann = info.annotation
        literal = get_origin(ann) is Literal and all(isinstance(a, str) for a in get_args(ann))
        if ann not in (int, float, bool, str) and not literal:
            return None
        out[name] = ann is float
    return out


def iter_points(cfg: ExperimentConfig, tasks: Iterable[str] | None = None,
                token_counter: TokenCounter | None = None, seed: int = 42,
                config_path: str | Path = "config", *, fast: bool = True) -> Iterator[Point]:
    """Every point of the config (optionally only some tasks), in config order, duplicates dropped.

    Params are fully resolved (defaults filled in by the task's params model), so a point's identity
    does not depend on how terse the config was. Lazy, and lean per point: one params dict and one key
    string (manifold dicts are shared), so a caller can stream a huge grid. A config from load_config
    was validated combination by combination, so its plain tasks skip the per-point model (`fast`;
    the result is the same, pinned by a test).
    """
    wanted = list(tasks) if tasks else None
    if wanted:
        for name in wanted:
            cfg.task(name)
    seen: set[str] = set()
    for t in cfg.tasks:
        if wanted and t.name not in wanted:
            continue
        task = get_task(t.name)
        calibrated = t.mode == "calibrate"
        if calibrated and token_counter is None:
            raise InputError(f"{config_path}: task '{t.name}' uses calibrate mode: pass --tokenizer "
                             "(a local tokenizer directory or an id already in the local HF cache)")
        plain = _plain_fields(task) if fast and cfg._validated and not calibrated else None
        defaults = task.Params.model_construct().model_dump(mode="json") if plain is not None else {}
        validate, prefix = task.Params.model_validate, f"{t.name}|"
        # One row of distinct values (checked by load_config) on the plain path cannot repeat a point:
        # then nothing needs remembering, and streaming the grid takes constant memory.
        single = plain is not None and sum(len(_rows(e)) for e in t.grids.values()) == 1
        for gname, entry in t.grids.items():
            for row in _rows(entry):
                keys, axes = _axes(row)
                targets = _targets(row)
                manifolds = [{"id": gname, "target_tokens": target} for target in targets]
                if plain is not None:
                    axes = [[float(v) if plain[k] and isinstance(v, int) else v for v in axis]
                            for k, axis in zip(keys, axes, strict=True)]
                    manifold = manifolds[0]  # not calibrated: target_tokens is None
                    for values in itertools.product(*axes):
                        params = defaults.copy()
                        params.update(zip(keys, values, strict=True))
                        key = prefix + canonical_json(params)
                        if single:
                            yield Point(t.name, params, manifold, key)
                        elif key not in seen:
                            seen.add(key)
                            yield Point(t.name, params, manifold, key)
                    continue
                for values in itertools.product(*axes):
                    for target, manifold in zip(targets, manifolds, strict=True):
                        raw = dict(zip(keys, values, strict=True))
                        if calibrated:
                            raw[task.calibrated_param] = calibrate(task, raw, target, token_counter, seed)
                        try:
                            params = validate(raw).model_dump(mode="json")
                        except ValidationError:
                            params = task.validate(raw, where=f"{config_path}: {t.name}").model_dump(mode="json")
                        key = prefix + canonical_json(params)
                        if key not in seen:
                            seen.add(key)
                            yield Point(t.name, params, manifold, key)


def expand_points(cfg: ExperimentConfig, tasks: Iterable[str] | None = None,
                  token_counter: TokenCounter | None = None, seed: int = 42,
                  config_path: str | Path = "config") -> list[Point]:
    """`iter_points` as a list (see there)."""
    return list(iter_points(cfg, tasks, token_counter, seed, config_path))


_CALIBRATION_SAMPLES = 3


def calibrate(task: Task, params: dict[str, Any], target_tokens: int, count_tokens: TokenCounter | None,
              seed: int) -> int:
    """Largest value of the task's calibrated param whose questions fit in `target_tokens`.

    The prompt size is measured as the mean token count of the first few questions of the point
    (the same tests the runner will send), and the search is a binary search over the param's range,
    which assumes question length grows with the param (true for rows of a table).
    """
    name = task.calibrated_param
    if count_tokens is None or not name:
        raise InputError(f"task '{task.name}': calibration needs a calibrated task and a tokenizer")
    if isinstance(target_tokens, bool) or not isinstance(target_tokens, int) or target_tokens < 1:
        raise InputError(f"task '{task.name}': target_tokens {target_tokens!r} is not a positive whole number")
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
