"""`gym:<name>`: every reasoning-gym generator as a parametric ReasonScape task (docs/gym.md).

reasoning-gym (PyPI `reasoning-gym`, the optional extra `reasonscape[gym]`) ships 100+ procedural
generators, each a dataset class with a config dataclass. `resolve(name)` wraps one of them:

* Params: a strict pydantic model built from the config dataclass's fields (types from its
  annotations, defaults from its defaults; `seed` and `size` are ReasonScape's to set), and the
  config's own `validate()` runs on every point, so a combination the generator rejects is a
  one-line error naming `gym:<name>`, the field and the value.
* Generation: one dataset object per params (seed `DATASET_SEED`, size `pool_size(name)`) indexed at
  a position drawn from the point's RNG. reasoning-gym items are a pure function of (seed, index), so
  a point's tests are a pure function of (point seed, params) and the prefix property holds.
* Grading: the test's meta carries the entry (answer, metadata) and the config, so the generator's own
  `score_answer` re-scores any candidate from meta alone. `parse_answer` returns the reference when that
  scorer gives full credit and the stripped text otherwise: partial credit counts as wrong, and grading
  stays ReasonScape's string comparison.

reasoning-gym is imported lazily (it takes about a second): `--help` and native tasks never load it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import enum
import functools
import math
import random
import re
import sys
import traceback
import typing
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, TypeAdapter, ValidationError, create_model, model_validator

from reasonscape.errors import InputError, RuntimeFailure, shorten
from reasonscape.tasks.base import Task, TaskParams, TestCase

INSTALL_HINT = "pip install 'reasonscape[gym]'"
#: Config fields ReasonScape controls: the dataset's seed and size come from the point.
CONTROLLED = ("seed", "size")
#: Generators that are not one parametric task (composite mixes other generators by a spec list).
EXCLUDED = {"composite": "it mixes other generators (give each its own gym:<name> task instead)"}
#: Seed of every dataset object: which item a test is comes from the index the point's RNG draws.
DATASET_SEED = 0
#: Items one point draws from (its question space): indexes 0 .. pool - 1 of the dataset object.
DEFAULT_POOL = 100_000
#: Generators whose dataset size is capped (word_ladder's validate) or built up front (acre: O(size)).
POOL_SIZES = {"word_ladder": 20_000, "acre": 5_000}
#: Index draws in a row that may fail (a generator that raises for some seeds) before giving up.
MAX_FAILED_DRAWS = 32
#: Reference of an entry without a single oracle answer (answer None): only the scorer can grade it.
NO_ORACLE = "[any answer the reasoning-gym scorer accepts]"
#: Longest candidate handed to a scorer (some parse with sympy): longer text is not credited.
MAX_SCORED_CHARS = 20_000
#: A score counted as full credit (float noise aside); anything less is wrong.
FULL_CREDIT = 1.0 - 1e-9
#: Final punctuation that answer extraction removes from a candidate (reasonscape.scoring._clean).
_PEELED = (".", "!", ";")
#: Where a sentence states its final value: "... is 6", "2 + 4 = 6", "Total: 6".
_VALUE_AFTER = (" is ", "=", ":")
#: Dataset objects kept (per generator and params); they hold word lists, puzzle banks, ...
_CACHE_SIZE = 32

#: A generator name (reasoning-gym's are lower-case words joined by '_').
_MEMBER = re.compile(r"^[A-Za-z0-9_]{1,64}$")

_tasks: dict[str, GymTask] = {}
_datasets: OrderedDict[tuple[str, str], Any] = OrderedDict()


def _gym() -> Any:
    """The reasoning_gym package, or one InputError telling how to install it."""
    try:
        import reasoning_gym  # noqa: F401  (registers every generator)
        from reasoning_gym import factory
    except ImportError:
        raise InputError(f"gym: tasks need reasoning-gym, which is not installed: {INSTALL_HINT}") from None
    except Exception as exc:  # installed but broken (a dependency that fails on import)
        raise RuntimeFailure(f"gym: reasoning-gym failed to load: {type(exc).__name__}: {exc}") from None
    return factory


def generator_names() -> list[str]:
    """Every reasoning-gym generator usable as `gym:<name>` (sorted)."""
    return sorted(n for n in _gym().DATASETS if n not in EXCLUDED)


def pool_size(name: str) -> int:
    """How many items (dataset indexes) one point of `gym:<name>` draws from."""
    return POOL_SIZES.get(name, DEFAULT_POOL)


# -- params model from the config dataclass ---------------------------------------------------------


def _tuples(v: Any) -> Any:
    """Lists (YAML, JSON) become tuples, recursively, so sequence params are immutable and hashable."""
    if isinstance(v, list | tuple):
        return tuple(_tuples(x) for x in v)
    return v


def _sequence(v: Any) -> Any:
    """A list param's value: a list (kept as a tuple); a single value is an error that says so."""
    if v is None or isinstance(v, list | tuple):
        return _tuples(v)
    raise ValueError(
        "expected a list of values (a list in a config grid is an axis, so list params "
        "are set from Python, not from a grid)"
    )


def _iso(kind: type) -> Callable[[Any], Any]:
    def parse(v: Any) -> Any:
        if isinstance(v, str):
            try:
                return kind.fromisoformat(v)
            except ValueError:
                return v  # pydantic reports it
        return v

    return parse


@dataclasses.dataclass(frozen=True, slots=True)
class FieldSpec:
    """How one config field is exposed: its pydantic annotation, its default (in params form) and the
    conversion back to what the dataclass expects (tuple -> list, value -> enum member)."""

    name: str
    annotation: Any
    default: Any
    to_config: Callable[[Any], Any]
    kind: str  # short type name shown by `list NAME`


def _identity(v: Any) -> Any:
    return v


_SCALARS: dict[Any, str] = {bool: "bool", int: "int", float: "float", str: "str"}


#: Integers a param may hold (64-bit, as JSON tools and DuckDB read them).
_INT64 = Annotated[int, Field(ge=-(2**63 - 1), le=2**63 - 1)]


def _map_type(tp: Any) -> tuple[Any, Callable[[Any], Any], str] | None:
    """(pydantic annotation, to-config converter, kind) of a dataclass annotation, None if unsupported."""
    if tp is int:
        return _INT64, _identity, "int"
    if tp in _SCALARS:
        return tp, _identity, _SCALARS[tp]
    if tp in (dt.date, dt.time, dt.datetime):
        return Annotated[tp, BeforeValidator(_iso(tp))], _identity, f"{tp.__name__} (ISO text)"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        values = tuple(m.value for m in tp)
        if not values or not all(isinstance(v, str | int) and not isinstance(v, bool) for v in values):
            return None
        return Literal[values], tp, "one of " + ", ".join(map(str, values))  # type: ignore[valid-type]
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        if not all(isinstance(a, str | int) and not isinstance(a, bool) for a in args):
            return None
        return tp, _identity, "one of " + ", ".join(map(str, args))
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1 or len(args) != 2:
            return None
        mapped = _map_type(inner[0])
        if mapped is None:
            return None
        ann, conv, kind = mapped
        return ann | None, (lambda v: None if v is None else conv(v)), f"{kind} or null"
    if tp in (list, tuple) or origin in (list, tuple, Sequence, typing.Sequence):
        container = list if (tp is list or origin is list) else tuple
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis) and len(set(args)) > 1:
            items = [_map_type(a) for a in args]  # a fixed-shape tuple: (float, float)
            if any(m is None for m in items):
                return None
            ann = tuple[tuple(m[0] for m in items)]  # type: ignore[misc]
            convs = [m[1] for m in items]
            return (
                Annotated[ann, BeforeValidator(_sequence)],
                lambda v: tuple(c(x) for c, x in zip(convs, v, strict=True)),
                "(" + ", ".join(m[2] for m in items) + ")",
            )
        elem = args[0] if args else None
        if elem is None:
            return None  # a bare list/tuple: the default's type decides (see _field_spec)
        mapped = _map_type(elem)
        if mapped is None:
            return None
        ann, conv, kind = mapped
        return (
            Annotated[tuple[ann, ...], BeforeValidator(_sequence)],  # type: ignore[valid-type]
            lambda v: container(conv(x) for x in v),
            f"list of {kind}",
        )
    return None


def _from_default(default: Any) -> tuple[Any, Callable[[Any], Any], str] | None:
    """A type for a field whose annotation says too little (`symbols: tuple = "x"`): its default's."""
    if type(default) in _SCALARS:
        return _map_type(type(default))
    if isinstance(default, list | tuple) and default and len({type(x) for x in default}) == 1:
        mapped = _map_type(
            list[type(default[0])] if isinstance(default, list) else tuple[type(default[0]), ...]
        )
        return mapped
    return None


def _params_form(v: Any) -> Any:
    """A dataclass default in params form: enum members as values, sequences as tuples."""
    if isinstance(v, enum.Enum):
        return v.value
    if isinstance(v, list | tuple):
        return tuple(_params_form(x) for x in v)
    return v


def _field_spec(f: dataclasses.Field, hint: Any) -> FieldSpec | None:
    """How a config field is exposed, or None when it cannot be a param (it keeps the generator default)."""
    if f.default is not dataclasses.MISSING:
        default = f.default
    elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        default = f.default_factory()  # type: ignore[misc]
    else:
        default = dataclasses.MISSING
    for mapped in (_map_type(hint), None if default is dataclasses.MISSING else _from_default(default)):
        if mapped is None:
            continue
        ann, conv, kind = mapped
        if default is dataclasses.MISSING:
            return FieldSpec(f.name, ann, dataclasses.MISSING, conv, kind)
        try:
            value = TypeAdapter(ann).validate_python(_params_form(default), strict=True)
        except (ValidationError, TypeError):
            continue
        return FieldSpec(f.name, ann, value, conv, kind)
    return None


class GymParams(TaskParams):
    """Base of every generated params model: runs the generator config's own validate()."""

    gym_name: ClassVar[str] = ""

    @model_validator(mode="after")
    def _generator_validate(self) -> GymParams:
        spec = _spec(type(self).gym_name)
        spec.build_config(self, check=True)
        return self


def _assertion_text(exc: BaseException) -> str:
    """The message of a failed check; a bare `assert` is shown by its source line."""
    text = str(exc).strip()
    if text:
        return text
    tb = traceback.extract_tb(exc.__traceback__)
    line = (tb[-1].line or "").strip() if tb else ""
    return f"'{line}' failed" if line else type(exc).__name__


class GeneratorSpec:
    """What ReasonScape knows about one generator: its classes, exposed fields and params model."""

    def __init__(self, name: str, dataset_cls: type, config_cls: type):
        self.name, self.dataset_cls, self.config_cls = name, dataset_cls, config_cls
        try:
            hints = typing.get_type_hints(config_cls)
        except Exception:  # an annotation that does not resolve: fall back to the raw ones
            hints = {}
        self.fields: dict[str, FieldSpec] = {}
        self.fixed: list[str] = []  # fields that keep the generator's default (types params cannot hold)
        for f in dataclasses.fields(config_cls):
            if f.name in CONTROLLED or not f.init:
                continue
            spec = _field_spec(f, hints.get(f.name, f.type))
            if spec is None or f.name.startswith("_") or f.name.startswith("model_"):
                self.fixed.append(f.name)
            else:
                self.fields[f.name] = spec
        definitions: dict[str, Any] = {}
        for s in self.fields.values():
            default = ... if s.default is dataclasses.MISSING else s.default
            definitions[s.name] = (s.annotation, Field(default, description=s.kind))
        self.params_model: type[GymParams] = create_model(  # type: ignore[call-overload]
            f"GymParams_{name}", __base__=GymParams, **definitions
        )
        self.params_model.gym_name = name

    def build_config(
        self, params: TaskParams | dict[str, Any], check: bool = False, size: int | None = None
    ) -> Any:
        """The generator's config dataclass for `params` (seed and size set by ReasonScape).

        With `check`, the config's own validate() runs and a rejection becomes a ValueError naming the
        fields its message mentions (or those that differ from the defaults) and their values.
        """
        values = params if isinstance(params, dict) else {k: getattr(params, k) for k in self.fields}
        kwargs = {k: self.fields[k].to_config(v) for k, v in values.items() if k in self.fields}
        kwargs.update(seed=DATASET_SEED, size=pool_size(self.name) if size is None else size)
        try:
            config = self.config_cls(**kwargs)
            if check and callable(getattr(config, "validate", None)):
                config.validate()
        except Exception as exc:  # validate() reports by assert or ValueError; anything else counts too
            if not check:
                raise
            reason = _assertion_text(exc)
            named = [k for k in self.fields if _mentions(reason, k)]
            if not named:
                named = [
                    k for k in self.fields if values.get(k, self.fields[k].default) != self.fields[k].default
                ]
            shown = ", ".join(f"{k} = {_show(values.get(k, self.fields[k].default))}" for k in named)
            raise ValueError(
                f"{shown + ': ' if shown else ''}rejected by the generator's "
                f"{self.config_cls.__name__}.validate(): {reason}"
            ) from None
        return config

    def describe(self) -> list[tuple[str, str, Any]]:
        """(field, kind, default) of every exposed field, then the fixed ones with kind 'fixed'."""
        rows: list[tuple[str, str, Any]] = [(s.name, s.kind, s.default) for s in self.fields.values()]
        for name in self.fixed:
            f = next(f for f in dataclasses.fields(self.config_cls) if f.name == name)
            default = (
                f.default
                if f.default is not dataclasses.MISSING
                else (f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
            )  # type: ignore[misc]
            rows.append((name, "fixed (not a param: its type cannot be a coordinate)", default))
        return rows


def _mentions(text: str, word: str) -> bool:
    i = text.find(word)
    while i != -1:
        before = text[i - 1] if i else " "
        after = text[i + len(word)] if i + len(word) < len(text) else " "
        if not (before.isalnum() or before == "_") and not (after.isalnum() or after == "_"):
            return True
        i = text.find(word, i + 1)
    return False


def _show(v: Any) -> str:
    if isinstance(v, dt.date | dt.time):
        v = v.isoformat()
    text = repr(list(v) if isinstance(v, tuple) else v)
    return text if len(text) <= 60 else text[:57] + "..."


@functools.cache
def _spec(name: str) -> GeneratorSpec:
    factory = _gym()
    if name in EXCLUDED:
        raise InputError(f"gym:{name}: not a parametric generator: {EXCLUDED[name]}")
    if name not in factory.DATASETS:
        close = difflib.get_close_matches(name, generator_names(), n=3, cutoff=0.6)
        hint = (
            f" (did you mean {', '.join('gym:' + c for c in close)}?)"
            if close
            else " (list them: python -m reasonscape.tasks.gym list)"
        )
        raise InputError(f"unknown reasoning-gym generator 'gym:{name}'{hint}")
    dataset_cls, config_cls = factory.DATASETS[name]
    return GeneratorSpec(name, dataset_cls, config_cls)


# -- JSON-safe meta -----------------------------------------------------------------------------------

_INT_LIMIT = 2**63


def json_safe(v: Any, depth: int = 0) -> Any:
    """A JSON-safe copy: tuples/sets as lists, non-string keys as text, big ints and nan/inf as text,
    anything else (dates, enums, objects) as its str()."""
    if depth > 50:
        return str(v)
    if v is None or isinstance(v, bool | str):
        return v
    if isinstance(v, enum.Enum):
        return json_safe(v.value, depth + 1)
    if isinstance(v, int):
        return v if -_INT_LIMIT < v < _INT_LIMIT else str(v)
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    if isinstance(v, dict):
        return {k if isinstance(k, str) else str(k): json_safe(x, depth + 1) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [json_safe(x, depth + 1) for x in v]
    if isinstance(v, set | frozenset):
        items = [json_safe(x, depth + 1) for x in v]
        try:
            return sorted(items)
        except TypeError:
            return sorted(items, key=repr)
    return str(v)


def reference_of(answer: Any) -> str:
    """The canonical reference of an entry's answer (the text itself; NO_ORACLE when there is none)."""
    if answer is None:
        return NO_ORACLE
    return answer if isinstance(answer, str) else str(answer)


# -- the task -----------------------------------------------------------------------------------------


class GymTask(Task):
    """One reasoning-gym generator (subclassed per generator by `resolve`)."""

    gym_name: ClassVar[str] = ""
    description = (
        "Solve the problem below. It says what to compute and often how the answer must be "
        "written; follow that form exactly."
    )
    answer_format = (
        "Write only the final answer, in the form the problem asks for, between <answer> and </answer> tags."
    )
    answer_needs_meta = True

    @property
    def spec(self) -> GeneratorSpec:
        return _spec(self.gym_name)

    # generation --------------------------------------------------------------------------------------

    def _dataset(self, key: str, params: TaskParams | dict[str, Any]) -> Any:
        """The cached dataset object of (generator, params)."""
        k = (self.gym_name, key)
        ds = _datasets.get(k)
        if ds is not None:
            _datasets.move_to_end(k)
            return ds
        config = self.spec.build_config(params)
        try:
            ds = self.spec.dataset_cls(config=config)
        except Exception as exc:  # the generator cannot start with this config
            raise InputError(
                f"gym:{self.gym_name}: the generator cannot be built with params {key}: "
                f"{type(exc).__name__}: {_assertion_text(exc)}"
            ) from None
        _datasets[k] = ds
        while len(_datasets) > _CACHE_SIZE:
            _datasets.popitem(last=False)
        return ds

    def generate(self, rng: random.Random, params: TaskParams) -> TestCase:
        """The dataset item at an index drawn from `rng` (a failing index is redrawn, the dataset rebuilt,
        since a generator may change its own state when it fails)."""
        pool = pool_size(self.gym_name)
        key = params.model_dump_json()
        error: BaseException | None = None
        for _ in range(MAX_FAILED_DRAWS):
            index = rng.randrange(pool)
            ds = self._dataset(key, params)
            try:
                entry = ds[index]
            except Exception as exc:
                error = exc
                _datasets.pop((self.gym_name, key), None)
                continue
            return self._test(entry, params)
        raise RuntimeFailure(
            f"gym:{self.gym_name}: the generator failed on {MAX_FAILED_DRAWS} indexes in a row "
            f"with params {key}: {type(error).__name__}: {_assertion_text(error)}"
        )  # type: ignore[arg-type]

    def _test(self, entry: dict[str, Any], params: TaskParams) -> TestCase:
        answer = json_safe(entry.get("answer"))
        meta = {
            "gym_name": self.gym_name,
            "gym_answer": answer,
            "gym_metadata": json_safe(entry.get("metadata") or {}),
            "gym_config": params.model_dump(mode="json"),
        }
        return TestCase(question=str(entry.get("question", "")), reference=reference_of(answer), meta=meta)

    # grading -----------------------------------------------------------------------------------------

    def score(self, text: str, meta: dict[str, Any]) -> float:
        """reasoning-gym's score of `text` for the test described by `meta` (0.0 when it cannot score)."""
        config = meta.get("gym_config")
        try:  # the point's config; one the generator rejects (a hand-edited record) falls back to defaults
            params = self.Params.model_validate(config if isinstance(config, dict) else {})
        except ValidationError:
            try:
                params = self.Params()
            except ValidationError:
                return 0.0
        try:
            ds = self._dataset(params.model_dump_json(), params)
        except InputError:
            return 0.0
        entry = {"question": "", "answer": meta.get("gym_answer"), "metadata": meta.get("gym_metadata") or {}}
        try:
            value = float(ds.score_answer(answer=text, entry=entry))
        except Exception:  # a scorer that chokes on a malformed answer: no credit
            return 0.0
        return value if math.isfinite(value) else 0.0

    def _credited(self, text: str, meta: dict[str, Any]) -> bool:
        """Full credit from the scorer, also with a final '.', '!' or ';' restored when the oracle answer
        ends with one (the extractor peels it off candidates as formatting)."""
        if self.score(text, meta) >= FULL_CREDIT:
            return True
        answer = meta.get("gym_answer")
        return (
            isinstance(answer, str)
            and answer[-1:] in _PEELED
            and not text.endswith(answer[-1])
            and self.score(text + answer[-1], meta) >= FULL_CREDIT
        )

    def parse_answer(self, text: str, meta: dict[str, Any] | None = None) -> str | None:
        """The reference when reasoning-gym's scorer gives `text` full credit (1.0), else the stripped text.

        So grading stays a string comparison: full credit is correct, anything less (partial credit
        included) is incorrect; an empty answer is invalid. Since every non-empty candidate is accepted
        (the extractor stops at it), a candidate without full credit is also scored by its final value,
        the text after its last ' is ', '=' or ':' ("The answer to the problem is 6" -> "6"), which is
        what the extractor would have tried next. Without a gym meta nothing can be scored.
        """
        text = text.strip()
        if not text:
            return None
        if not isinstance(meta, dict) or "gym_answer" not in meta or len(text) > MAX_SCORED_CHARS:
            return text
        if self._credited(text, meta):
            return reference_of(meta.get("gym_answer"))
        for sep in _VALUE_AFTER:
            if sep in text:
                tail = text.rsplit(sep, 1)[1].strip().rstrip(".").strip()
                if tail and self._credited(tail, meta):
                    return reference_of(meta.get("gym_answer"))
        return text

    def wrong_answer(self, rng: random.Random, test: TestCase) -> str:
        """An answer the scorer does not fully credit (for the simulated model)."""
        ref = test.reference
        candidates = []
        try:
            candidates.append(str(int(ref) + rng.choice((-3, -2, -1, 1, 2, 3))))
        except ValueError:
            pass
        candidates += [ref[::-1] + "0", "0" if ref != "0" else "1", "no answer"]
        for c in candidates:
            if c and self.parse_answer(c, test.meta) != ref:
                return c
        return "no answer"

    def difficulty(self, params: TaskParams) -> float:
        """0.5 at the generator's defaults; each numeric field adds 0.5 per doubling of its value over
        its default (and takes 0.5 per halving), clipped to [0, 2].

        reasoning-gym knobs are mostly sizes (terms, digits, animals, words) where larger is harder;
        fields whose default or value is zero or negative, booleans and text do not count. A crude,
        documented axis for the simulated model only.
        """
        total = 0.0
        for name, spec in self.spec.fields.items():
            v, d = getattr(params, name, None), spec.default
            if (
                isinstance(v, bool)
                or isinstance(d, bool)
                or not isinstance(v, int | float)
                or not isinstance(d, int | float)
            ):
                continue
            if v > 0 and d > 0:
                total += math.log2(v / d)
        return min(2.0, max(0.0, 0.5 + 0.5 * total))

    @functools.cached_property
    def multiline_answer(self) -> bool:  # type: ignore[override]
        """True when the generator's answers span lines (grids, boards), judged from one default item."""
        try:
            ds = self._dataset(self.Params().model_dump_json(), self.Params())
            return "\n" in reference_of(json_safe(ds[0].get("answer")))
        except Exception:
            return False


def resolve(member: str) -> Task:
    """The Task of `gym:<member>` (cached); unknown names suggest close ones."""
    task = _tasks.get(member)
    if task is not None:
        return task
    if not isinstance(member, str) or not _MEMBER.match(member):
        raise InputError(
            f"task {shorten('gym:' + str(member), 40)!r}: give a reasoning-gym generator name after 'gym:' "
            "(list them: python -m reasonscape.tasks.gym list)"
        )
    spec = _spec(member)
    cls = type(
        f"Gym_{member}",
        (GymTask,),
        {
            "name": f"gym:{member}",
            "label": f"gym:{member}",
            "Params": spec.params_model,
            "gym_name": member,
            "__doc__": f"reasoning-gym generator {member} ({spec.dataset_cls.__name__}).",
        },
    )
    task = cls()
    _tasks[member] = task
    return task


# -- listing ------------------------------------------------------------------------------------------


def _main(argv: list[str]) -> int:
    """`python -m reasonscape.tasks.gym list [NAME]`: the generators, or one generator's fields."""
    usage = "usage: python -m reasonscape.tasks.gym list [NAME]"
    if not argv or argv[0] in ("-h", "--help"):
        print(
            usage + "\n  list         every generator usable as gym:<name>\n"
            "  list NAME    that generator's params: type and default (seed and size are set by ReasonScape)"
        )
        return 0 if argv else 2
    if argv[0] != "list" or len(argv) > 2:
        print(f"error: {usage}", file=sys.stderr)
        return 2
    try:
        if len(argv) == 1:
            for name in generator_names():
                print(f"gym:{name}")
            return 0
        name = argv[1].removeprefix("gym:")
        spec = resolve(name).spec  # type: ignore[attr-defined]
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"gym:{name}  ({spec.dataset_cls.__module__}.{spec.dataset_cls.__name__}; "
        f"{pool_size(name):,} items per point)"
    )
    for field, kind, default in spec.describe():
        shown = "(required)" if default is dataclasses.MISSING else _show(default)
        print(f"  {field}: {kind} = {shown}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(_main(sys.argv[1:]))
    except BrokenPipeError:  # `... list | head`
        sys.stderr.close()
        sys.exit(0)
