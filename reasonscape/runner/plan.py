"""What a run will do: the loaded inputs, its fingerprint, its points, their rounds and requests.

Everything here is deterministic: the same (config, template, sampler, model, seed, precision, task
filter, tokenizer) gives the same points, the same tests in the same rounds and the same request bodies,
which is what makes resume, the cache and batch matching work.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from reasonscape.errors import ReasonScapeError, RuntimeFailure
from reasonscape.identity import canonical_bytes, canonical_json, point_seed, sha256_hex
from reasonscape.manifold import ExperimentConfig, Point, PrecisionLevel, expand_points, load_config
from reasonscape.prompts import (
    Sampler,
    Template,
    endpoint_path,
    few_shot_examples,
    load_sampler,
    load_template,
    request_body,
)
from reasonscape.tasks.base import PointTests, Task, TaskParams, TestCase
from reasonscape.tasks.registry import get_task


@dataclass(slots=True)
class RunSpec:
    """The loaded inputs of a run: everything that decides which requests are sent."""

    config_path: Path
    config: ExperimentConfig
    config_sha: str
    template_path: Path
    template: Template
    template_sha: str
    sampler_path: Path
    sampler: Sampler
    sampler_sha: str
    model: str
    seed: int
    level_name: str
    level: PrecisionLevel
    tasks: tuple[str, ...] = ()
    tokenizer: str | None = None
    #: A sim:// URL is part of the model's identity (its query is the model), an http URL is not.
    sim_url: str | None = None

    @property
    def path(self) -> str:
        return endpoint_path(self.template)

    def fingerprint(self) -> str:
        """What makes two invocations the same run (so the second resumes or reuses the first)."""
        ident = {
            "config": [self.config.name, self.config_sha], "model": self.model,
            "template": [self.template.name, self.template_sha], "sampler": [self.sampler.name, self.sampler_sha],
            "precision": [self.level_name, self.level.model_dump()], "seed": self.seed,
            "tasks": sorted(self.tasks), "tokenizer": self.tokenizer if self.calibrated else None,
            "sim": self.sim_url,
        }
        items = self.item_sources()
        if items:  # only then: runs of configs without item files keep their fingerprints
            ident["items"] = items
        return sha256_hex(canonical_bytes(ident))[:16]

    def item_sources(self) -> dict[str, str]:
        """sha256 of each in-scope `items:` task's item file: an edited file is a new run, not a resume
        that would mix two versions of the items in one folder."""
        return {t.name: get_task(t.name).items.source_sha  # type: ignore[attr-defined]
                for t in self.config.tasks
                if t.name.startswith("items:") and (not self.tasks or t.name in self.tasks)}

    @property
    def calibrated(self) -> bool:
        """Whether a task in scope is calibrated (its params, hence its tests, depend on the tokenizer)."""
        return any(t.mode == "calibrate" for t in self.config.tasks if not self.tasks or t.name in self.tasks)


def load_spec(config: str | Path, template: str | Path, sampler: str | Path, model: str, *, seed: int = 42,
              precision: str | None = None, tasks: tuple[str, ...] | list[str] = (),
              tokenizer: str | None = None, sim_url: str | None = None) -> RunSpec:
    """Load and validate the inputs (each bad file is a one-line InputError naming it)."""
    cfg = load_config(config)
    tmpl = load_template(template)
    smp = load_sampler(sampler)
    level_name, level = cfg.level(precision)
    for name in tasks:
        cfg.task(name)
    return RunSpec(Path(config), cfg, sha256_hex(Path(config).read_bytes()), Path(template), tmpl,
                   sha256_hex(Path(template).read_bytes()), Path(sampler), smp, sha256_hex(Path(sampler).read_bytes()),
                   model, int(seed), level_name, level, tuple(dict.fromkeys(tasks)), tokenizer, sim_url)


@dataclass(slots=True)
class PointPlan:
    """One point of the run with what its requests need (task, validated params, seed, examples)."""

    point: Point
    task: Task
    params: TaskParams
    seed: int
    #: Short stable id of the point (sha256 of its key): the first half of a batch custom_id.
    id: str
    examples: list[TestCase] = field(default_factory=list)


def build_points(spec: RunSpec) -> list[PointPlan]:
    """The run's points in config order (calibrated tasks need `spec.tokenizer`)."""
    counter = None
    if spec.tokenizer and spec.calibrated:
        from reasonscape.manifold import load_token_counter

        counter = load_token_counter(spec.tokenizer)
    points = expand_points(spec.config, spec.tasks or None, token_counter=counter, seed=spec.seed,
                           config_path=spec.config_path)
    out = []
    for p in points:
        task = get_task(p.base_task)
        try:
            params = task.validate(p.params)
            seed = point_seed(spec.seed, p.params)
            examples = few_shot_examples(task, params, seed, spec.template.shots)
        except ReasonScapeError:
            raise
        except Exception as exc:  # a generator bug: name the point, not just the config
            text = " ".join(str(exc).split())[:200]
            raise RuntimeFailure(f"{spec.config_path}: task {p.base_task} params {canonical_json(p.params)}: "
                                 f"preparing the point failed ({type(exc).__name__}"
                                 f"{': ' + text if text else ''})") from None
        out.append(PointPlan(p, task, params, seed, sha256_hex(p.key)[:12], examples))
    return out


class TestSequence(PointTests):
    """A point's fixed test sequence (`PointTests`), generated forward round by round.

    It keeps the RNG between rounds, so round k costs `count` tests, not k * count. A round may come
    back short (or empty) when the point's question space runs out: the point then stops.
    """

    __test__ = False
    __slots__ = ("plan",)

    def __init__(self, plan: PointPlan):
        super().__init__(plan.task, plan.params, plan.seed)
        self.plan = plan


@dataclass(slots=True)
class Request:
    """One test's request: the encoded body (sent as is and stored in the cache) and its key."""

    content: bytes
    key: str


def make_request(spec: RunSpec, plan: PointPlan, question: str) -> Request:
    body = request_body(spec.template, spec.sampler, spec.model, plan.task, question, plan.examples)
    content = canonical_bytes(body)
    return Request(content, hashlib.sha256(content).hexdigest())  # == identity.cache_key(body), one encoding


# -- adaptive precision ------------------------------------------------------------------------

@dataclass(slots=True)
class Tally:
    """Running counters of a point, the inputs of the stopping rule."""

    tests: int = 0
    errors: int = 0
    truncated: int = 0
    #: Untruncated, non-error tests (n), their correct answers (c) and summed guess chances (g).
    untruncated: int = 0
    correct: int = 0
    guess: float = 0.0
    #: Summed guess chances of the truncated tests (g_t: C_P weighs them out of the trials too).
    guess_truncated: float = 0.0

    def add(self, status: str, truncated: bool, guess_chance: float) -> None:
        self.tests += 1
        if status == "error":
            self.errors += 1
        elif truncated:
            self.truncated += 1
            self.guess_truncated += guess_chance
        else:
            self.untruncated += 1
            self.guess += guess_chance
            if status == "correct":
                self.correct += 1


#: The estimator the stopping rule watches: the one PointsDB reports by default.
STOPPING_MODE = "C_P"


def stopping_margin(tally: Tally) -> float:
    """Half-width of the point's C_P interval (guess-corrected, truncated answers counted as failures).

    Why C_P: it is what evaluate and ReasonScore report, and its trials include truncated answers, so
    a point whose answers are all truncated is as precisely known as any other point with as many
    tests (its C_P is near 0), instead of having no trials and sampling to the cap for nothing.
    """
    from reasonscape.stats import estimate

    _, margin = estimate(STOPPING_MODE, tally.correct, tally.untruncated, tally.truncated, tally.guess,
                         tally.guess_truncated)
    return float(margin)


def needs_another_round(level: PrecisionLevel, rounds_done: int, tally: Tally,
                        margin: Callable[[Tally], float] = stopping_margin) -> bool:
    """The PrecisionLevel stopping rule, applied after each completed round (docs/runner.md).

    Another round is needed while the C_P half-width (`margin`, normally `stopping_margin`) is over the
    target (`targetciht` instead of `targetci` when the truncation rate is at least `htrate`), unless the
    cap `maxrounds` is reached or the truncation rate reached `abortht`. Points whose tests all failed
    with an error (prompt too long for the context) stop: another round would too. (bench/adaptive.py
    passes the former margin to compare the two rules with everything else equal.)
    """
    if rounds_done >= level.maxrounds:
        return False
    graded = tally.tests - tally.errors
    if graded == 0:
        return False
    trunc_rate = tally.truncated / graded
    if level.abortht is not None and trunc_rate >= level.abortht:
        return False
    if level.targetci is None:
        return True
    target = level.targetci
    if level.targetciht is not None and trunc_rate >= level.htrate:
        target = level.targetciht
    return margin(tally) > target


class TestContext:
    """One test in flight: what a backend may look at besides the request body.

    The HTTP backend ignores it; the simulated model uses the task, params, reference and guess chance;
    the batch backends use `custom_id`.
    """

    __test__ = False
    __slots__ = ("plan", "test", "index", "request")

    def __init__(self, plan: PointPlan, test: TestCase, index: int, request: Request):
        self.plan = plan
        self.test = test
        self.index = index
        self.request = request

    @property
    def task(self) -> Task:
        return self.plan.task

    @property
    def params(self) -> TaskParams:
        return self.plan.params

    @property
    def reference(self) -> str:
        return self.test.reference

    @property
    def guess_chance(self) -> float:
        return self.test.guess_chance

    @property
    def key(self) -> str:
        return self.request.key

    @property
    def custom_id(self) -> str:
        return custom_id(self.plan, self.index, self.request.key)


def custom_id(plan: PointPlan, index: int, key: str) -> str:
    """Batch line id: the point's id, the test's index in its sequence, and 8 hex of the request's key
    (so a batch made from other inputs - seed, template, sampler, model - cannot match by accident)."""
    return f"rs-{plan.id}-{index}-{key[:8]}"


def prompt_text(content: bytes) -> str:
    """The text a model reads from an encoded request body (all messages, or the raw prompt)."""
    import orjson

    body = orjson.loads(content)
    if "messages" in body:
        return "".join(str(m.get("content", "")) for m in body["messages"])
    return str(body.get("prompt", ""))
