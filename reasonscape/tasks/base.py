"""The Task interface every generator implements, and the helpers that drive it.

A task is three pure pieces: a pydantic params model (what a point's coordinates may be), a
generator `generate(rng, params) -> TestCase` (one test from a seeded RNG) and a parser that turns a
model's candidate answer into the canonical form of the reference (or None when it is ill-formed).
Grading, seeding and hierarchical sampling are the same for every task and live here.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from reasonscape.errors import InputError
from reasonscape.identity import identity_params, point_seed


@dataclass(frozen=True, slots=True)
class JointConstraint:
    """A rule across several params (each field's own range is checked by pydantic).

    `rule` is the text docs/tasks.md lists and the validation error quotes; `holds` decides it;
    `detail` (optional) adds what the values allow instead (e.g. how many words exist).
    """

    fields: tuple[str, ...]
    rule: str
    holds: Callable[[Any], bool]
    detail: Callable[[Any], str] | None = None

    def check(self, params: Any) -> None:
        """Raise ValueError naming the fields, their values and the rule when `params` breaks it."""
        if not self.holds(params):
            values = ", ".join(f"{f} = {getattr(params, f)!r}" for f in self.fields)
            extra = f" {self.detail(params)}" if self.detail else ""
            raise ValueError(f"{values}: breaks the joint constraint '{self.rule}'{extra}")


class TaskParams(BaseModel):
    """Base of every task's params model: unknown keys are errors, values are immutable.

    Strict types: a YAML `true` is not the integer 1, "3" is not 3, 2.5 is not an int (an int is
    still a valid float), and nan/inf are rejected, so a typo can never silently become a coordinate.
    Rules across fields are declared in `constraints` so docs and errors state them the same way.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)
    constraints: ClassVar[tuple[JointConstraint, ...]] = ()

    @model_validator(mode="after")
    def _joint_constraints(self) -> TaskParams:
        for constraint in type(self).constraints:
            constraint.check(self)
        return self


@dataclass(slots=True)
class TestCase:
    """One generated test: what the model is asked and what counts as right.

    `reference` is already in the canonical form that `Task.parse_answer` produces, so grading is a
    string comparison. `guess_chance` is the probability that a blind guess is right (1/k for a k-way
    choice, 1/2 for true/false, 0 for write-in answers). `meta` is the generator's per-test metadata
    (the "genresult" that failure analysis breaks results down by); it must be JSON-serialisable.
    """

    __test__ = False  # not a pytest test class

    question: str
    reference: str
    guess_chance: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)


class Task(ABC):
    """Base class of a task generator. Subclasses set the class attributes and implement generate."""

    name: ClassVar[str]
    Params: ClassVar[type[TaskParams]]
    label: ClassVar[str] = ""
    #: What the task asks, written for the model (templates put it in the system or user turn).
    description: ClassVar[str] = ""
    #: How the final answer must be written (templates append it to the instructions).
    answer_format: ClassVar[str] = "Write your final answer between <answer> and </answer> tags."
    #: For calibrated tasks: the integer param that `target_tokens` is resolved into.
    calibrated_param: ClassVar[str | None] = None
    #: True when parse_answer needs the test's meta (e.g. to map an option title to its letter).
    answer_needs_meta: ClassVar[bool] = False
    #: True when the answer spans several lines (so a reply's last line alone is not a candidate).
    multiline_answer: ClassVar[bool] = False

    @abstractmethod
    def generate(self, rng: random.Random, params: TaskParams) -> TestCase:
        """One test drawn from `rng` (and nothing else, so generation is reproducible)."""

    def iter_tests(self, seed: int, params: TaskParams) -> Iterator[TestCase] | None:
        """The point's whole test sequence, for tasks that draw from a finite collection without
        replacement (items files); None (the default): `PointTests` draws `generate(rng, params)` from an
        RNG seeded by `seed`. Must be a pure function of (seed, params), so any count is a prefix."""
        return None

    def parse_answer(self, text: str, meta: dict[str, Any] | None = None) -> str | None:
        """Canonical form of a candidate answer, or None when it is not a well-formed answer.

        `meta` (the test's generator metadata) is passed only to tasks with `answer_needs_meta`.
        """
        text = text.strip()
        return text or None

    def wrong_answer(self, rng: random.Random, test: TestCase) -> str:
        """A plausible but wrong answer (used by the simulated model)."""
        return test.reference + "x"

    def difficulty(self, params: TaskParams) -> float:
        """Nominal difficulty of a point (>= 0, ~0 trivial, ~1 hard for a mid model): the sim's axis."""
        return 0.0

    # -- shared machinery -------------------------------------------------------------------

    def validate(self, params: dict[str, Any], where: str = "") -> TaskParams:
        """Build the params model, turning pydantic's report into one line naming task, field, range."""
        if not isinstance(params, dict):
            raise InputError(f"{where or self.name}: params must be a mapping of parameter names to values, "
                             f"not {type(params).__name__} {str(params)[:60]!r}")
        bad = [k for k in params if not isinstance(k, str)]
        if bad:
            raise InputError(f"{where or self.name}: parameter names must be strings, not {bad[0]!r}")
        try:
            return self.Params(**identity_params(params))
        except ValidationError as exc:
            raise InputError(format_validation_error(exc, self.Params, prefix=where or self.name)) from None


def format_validation_error(exc: ValidationError, model: type[BaseModel], prefix: str) -> str:
    """First pydantic error as `prefix: field = value: problem (allowed ...)`."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ()))
    value = err.get("input")
    msg = err.get("msg", "invalid value")
    allowed = describe_field(model, str(err["loc"][0])) if err.get("loc") else ""
    if err.get("type") == "extra_forbidden":
        valid = ", ".join(sorted(model.model_fields))
        return f"{prefix}: unknown parameter '{loc}' (valid: {valid})"
    if err.get("type") == "missing":
        return f"{prefix}: missing parameter '{loc}'" + (f" ({allowed})" if allowed else "")
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if not loc:  # a rule across fields (model validator)
        return f"{prefix}: {msg}"
    shown = repr(value) if not isinstance(value, dict) else "{...}"
    return f"{prefix}: {loc} = {shown}: {msg}" + (f" ({allowed})" if allowed else "")


def field_bounds(model: type[BaseModel], name: str) -> tuple[Any, Any]:
    """(lowest, highest) value a params field allows from its ge/gt and le/lt constraints (None: open)."""
    lo = hi = None
    for m in model.model_fields[name].metadata:
        lo = getattr(m, "ge", lo) if getattr(m, "ge", None) is not None else lo
        lo = getattr(m, "gt", lo) if getattr(m, "gt", None) is not None else lo
        hi = getattr(m, "le", hi) if getattr(m, "le", None) is not None else hi
        hi = getattr(m, "lt", hi) if getattr(m, "lt", None) is not None else hi
    return lo, hi


def describe_field(model: type[BaseModel], name: str) -> str:
    """Human description of the values a field accepts, from its pydantic constraints."""
    info = model.model_fields.get(name)
    if info is None:
        return ""
    lo, hi = field_bounds(model, name)
    ann = getattr(info.annotation, "__args__", None)
    if lo is not None or hi is not None:
        return f"allowed range {'' if lo is None else lo}..{'' if hi is None else hi}"
    if ann and all(isinstance(a, str | int) for a in ann):
        return "allowed: " + ", ".join(map(str, ann))
    return ""


#: A point's question space counts as exhausted after this many consecutive draws that repeat a
#: question already in its sequence (then the sequence ends: see `PointTests`).
EXHAUSTION_DRAWS = 1024


class PointTests:
    """A point's fixed test sequence: the task's draws from one RNG seeded by the point seed, each
    distinct question at most once.

    Why distinct: identical requests get identical answers (response cache, greedy decoding), so a
    repeated question is not a new trial, and counting it would make the interval too narrow. A draw
    whose question is already in the sequence is skipped; after `EXHAUSTION_DRAWS` skips in a row the
    point's question space is taken as exhausted and the sequence ends, so a point of a tiny space has
    fewer tests than asked. The sequence is still a pure function of (task, params, seed): any count is
    a prefix of a larger one, and round k of adaptive sampling extends the same sequence. A task whose
    `iter_tests` returns a sequence (items drawn without replacement) is read from it instead, and the
    sequence ends where that one does.
    """

    __test__ = False
    __slots__ = ("task", "params", "seed", "_rng", "_seen", "_pos", "exhausted", "_iter")

    def __init__(self, task: Task, params: TaskParams, seed: int):
        self.task, self.params, self.seed = task, params, seed
        self._restart()

    def _restart(self) -> None:
        self._rng = random.Random(self.seed)
        self._iter = self.task.iter_tests(self.seed, self.params)
        self._seen: set[str] = set()
        self._pos = 0
        #: True once the question space ran out: no test exists at index `len(sequence)` or later.
        self.exhausted = False

    def _next(self) -> TestCase | None:
        if self._iter is not None:
            for case in self._iter:
                if case.question not in self._seen:
                    self._seen.add(case.question)
                    self._pos += 1
                    return case
            self.exhausted = True
            return None
        gen, rng, params, seen = self.task.generate, self._rng, self.params, self._seen
        for _ in range(EXHAUSTION_DRAWS):
            case = gen(rng, params)
            if case.question not in seen:
                seen.add(case.question)
                self._pos += 1
                return case
        self.exhausted = True
        return None

    def take(self, start: int, stop: int) -> list[TestCase]:
        """Tests `start .. stop-1` of the sequence (fewer, possibly none, when it ends before `stop`)."""
        if start < self._pos:
            self._restart()
        while self._pos < start and not self.exhausted:
            self._next()
        out: list[TestCase] = []
        while self._pos < stop and not self.exhausted:
            case = self._next()
            if case is not None:
                out.append(case)
        return out


def generate_tests(task: Task, params: dict[str, Any] | TaskParams, global_seed: int, stop: int,
                   start: int = 0) -> list[TestCase]:
    """Tests `start .. stop-1` of a point's fixed sequence (see `PointTests`; fewer when the point's
    question space is smaller than `stop`)."""
    p = params if isinstance(params, TaskParams) else task.validate(params)
    return PointTests(task, p, point_seed(global_seed, p.model_dump(mode="json"))).take(start, stop)
