"""The simulated model behind `--apibase sim://?ability=1.2&seed=7&...`: a known ground truth.

It answers in-process, behind the same `complete(path, content, context)` interface as the HTTP
backend, but it also sees the test itself (task, params, reference, guess chance), so it can be right
or wrong on purpose. docs/sim.md states the model; in short, for a point of difficulty d:

    s(d)          = sigmoid(slope * (ability + offset[task] - d))          (skill)
    P(correct)    = g + (1 - g) * s(d)               among untruncated answers, g = guess chance
    P(invalid)    = (1 - P(correct)) * min(0.5, invalid * (1 + d))         garbage instead of an answer
    length        ~ LogNormal(median = median * exp(growth * d), sigma)   completion tokens
    truncated     = length > budget (sampler max_tokens, else ctx - prompt tokens)

so the guess-corrected accuracy over untruncated tests, (acc - g) / (1 - g), is exactly s(d):
`true_accuracy(...)` returns it. Every draw comes from an RNG seeded by (sim seed, request cache key), so
the same request always gets the same answer, in any order, on any machine.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from reasonscape.errors import InputError
from reasonscape.runner.client import Completion
from reasonscape.runner.plan import TestContext, prompt_text
from reasonscape.tasks.base import Task, TaskParams

DEFAULTS: dict[str, float] = {
    "ability": 1.0,   # skill on the task difficulty axis (Task.difficulty: ~0 trivial, ~1 hard)
    "slope": 4.0,     # steepness of the logistic success curve
    "seed": 0,        # varies every draw without changing the surface
    "invalid": 0.02,  # base rate of garbage answers among failures, grows as (1 + d)
    "median": 250.0,  # median completion tokens of a trivial point
    "growth": 1.0,    # log-median growth per unit of difficulty
    "sigma": 0.5,     # log-normal spread of completion lengths
    "ctx": 16384.0,   # context window: the completion budget when the sampler sets no max_tokens
    "tps": 60.0,      # simulated generation speed, for latency_s only (nothing sleeps)
}

#: Accepted range of each parameter (finite values only): beyond these the model is meaningless
#: (exp overflows, every answer truncates at once, or the seed no longer fits 64 bits).
RANGES: dict[str, tuple[float, float]] = {
    "ability": (-100.0, 100.0), "slope": (0.0, 1000.0), "seed": (0.0, 2.0**63 - 1), "invalid": (0.0, 1.0),
    "median": (0.0, 1e7), "growth": (-50.0, 50.0), "sigma": (0.0, 10.0), "ctx": (1.0, 1e9), "tps": (0.0, 1e9),
}
OFFSET_LIMIT = 100.0

_TRACE = (
    "Let me work through this carefully.", "First, I restate what is being asked.",
    "I will keep track of each intermediate result.", "Checking the previous step again.",
    "That looks consistent so far.", "Now I combine the partial results.",
    "Wait, let me double-check that part.", "Breaking the problem into smaller pieces helps here.",
    "I should be careful about the order of operations.", "Going back over the details once more.",
    "This part needs attention.", "So the remaining work is straightforward.",
    "Let me verify against the original statement.", "Hmm, I need to reconsider one detail.",
)
_TRACE_MEAN = sum(len(s) + 1 for s in _TRACE) / len(_TRACE)
_GARBAGE = ("I am not able to determine the answer.", "The answer cannot be determined from this.",
            "Let me think about it more later.")


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@dataclass(frozen=True, slots=True)
class SimModel:
    """The parameters of the simulated model (all from the sim:// URL query)."""

    ability: float = DEFAULTS["ability"]
    slope: float = DEFAULTS["slope"]
    seed: int = 0
    invalid: float = DEFAULTS["invalid"]
    median: float = DEFAULTS["median"]
    growth: float = DEFAULTS["growth"]
    sigma: float = DEFAULTS["sigma"]
    ctx: int = int(DEFAULTS["ctx"])
    tps: float = DEFAULTS["tps"]
    #: Per-task ability offsets, e.g. {"arithmetic": 0.3} from `&arithmetic=+0.3`.
    offsets: dict[str, float] = field(default_factory=dict)

    def skill(self, task: Task, params: TaskParams) -> float:
        return self.skill_at(task.name, task.difficulty(params))

    def skill_at(self, task_name: str, difficulty: float) -> float:
        return sigmoid(self.slope * (self.ability + self.offsets.get(task_name, 0.0) - difficulty))

    def median_tokens(self, difficulty: float) -> float:
        return self.median * math.exp(self.growth * difficulty)

    def truncation_rate(self, task: Task, params: TaskParams, budget: int) -> float:
        """P(completion length > budget) for a point."""
        mu = math.log(self.median_tokens(task.difficulty(params)))
        z = (math.log(max(budget, 1)) - mu) / self.sigma
        return 0.5 * math.erfc(z / math.sqrt(2))


def parse_sim_url(url: str) -> SimModel:
    """`sim://?ability=1.2&slope=4&seed=7&arithmetic=+0.3` -> SimModel; unknown names are task offsets."""
    from reasonscape.tasks.registry import is_task_name

    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise InputError("--apibase sim://: the URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InputError(f"--apibase sim://: not a valid URL ({exc})") from None
    if parts.scheme != "sim":
        raise InputError(f"--apibase {url}: not a sim:// URL")
    if parts.netloc or parts.path.strip("/") or parts.fragment:
        raise InputError(f"--apibase {url}: the simulated model takes only a query (sim://?ability=1.2&seed=7)")
    values: dict[str, Any] = {}
    offsets: dict[str, float] = {}
    for name, raw in parse_qsl(parts.query, keep_blank_values=True):
        try:
            value = float(raw.strip())  # '+0.3' arrives as ' 0.3' (a '+' in a query means a space)
        except ValueError:
            raise InputError(f"--apibase sim://: {name}={raw!r} is not a number") from None
        if name in DEFAULTS:
            low, high = RANGES[name]
            if not (math.isfinite(value) and low <= value <= high) or (name == "seed" and not value.is_integer()):
                raise InputError(f"--apibase sim://: {name}={raw.strip()} is outside {low:g}..{high:g}"
                                 + (" (a whole number)" if name == "seed" else ""))
            if name in ("slope", "median", "sigma", "ctx", "tps") and value <= 0:
                raise InputError(f"--apibase sim://: {name} must be > 0")
            values[name] = value
        elif is_task_name(name):  # a shipped task or a family member (items:<name>, gym:<name>)
            if not (math.isfinite(value) and -OFFSET_LIMIT <= value <= OFFSET_LIMIT):
                raise InputError(f"--apibase sim://: {name}={raw.strip()} (a task offset) is outside "
                                 f"{-OFFSET_LIMIT:g}..{OFFSET_LIMIT:g}")
            offsets[name] = value
        else:
            raise InputError(f"--apibase sim://: unknown parameter '{name}' (valid: "
                             f"{', '.join(DEFAULTS)} or a task name, e.g. arithmetic or gym:chain_sum, for a per-task "
                             "ability offset)")
    for name in ("seed", "ctx"):
        if name in values:
            values[name] = int(values[name])
    return SimModel(**values, offsets=offsets)


def true_accuracy(task: Task, params: TaskParams | dict[str, Any], ability: float = DEFAULTS["ability"],
                  slope: float = DEFAULTS["slope"], offset: float = 0.0, guess_chance: float = 0.0) -> float:
    """Ground truth of a point: P(correct | not truncated) = g + (1 - g) * s.

    With the default `guess_chance=0` this is s itself, the guess-corrected accuracy that the C_*
    estimators recover from a sim run's counters.
    """
    p = params if isinstance(params, TaskParams) else task.validate(params)
    model = SimModel(ability=ability, slope=slope, offsets={task.name: offset})
    s = model.skill(task, p)
    return guess_chance + (1.0 - guess_chance) * s


class SimBackend:
    """In-process backend: same interface as HttpBackend, answers from the SimModel."""

    cacheable = False

    def __init__(self, url: str, *, max_tokens: int | None = None):
        self.model = parse_sim_url(url)
        self.max_tokens = max_tokens
        self.requests = 0
        self.retries = 0
        self.display = url

    async def aclose(self) -> None:
        return None

    async def complete(self, path: str, content: bytes, context: TestContext) -> Completion:
        return self.answer(content, context)

    def answer(self, content: bytes, ctx: TestContext) -> Completion:
        self.requests += 1
        m = self.model
        rng = random.Random((m.seed << 64) ^ int(ctx.key[:24], 16))
        difficulty = ctx.task.difficulty(ctx.params)
        skill = m.skill_at(ctx.task.name, difficulty)
        prompt_tokens = max(1, len(prompt_text(content)) // 4)
        length = max(8, int(rng.lognormvariate(math.log(m.median_tokens(difficulty)), m.sigma)))
        budget = self.max_tokens if self.max_tokens is not None else max(1, m.ctx - prompt_tokens)
        g = ctx.guess_chance
        p_correct = g + (1.0 - g) * skill
        u = rng.random()
        if u < p_correct:
            final = ctx.reference
        elif rng.random() < min(0.5, m.invalid * (1.0 + difficulty)):
            final = None
        else:
            final = ctx.task.wrong_answer(rng, ctx.test)
        trace = _trace(rng, length)
        if length > budget:
            text = ("<think>\n" + trace)[: budget * 4]
            finish, tokens = "length", budget
        else:
            tail = f"<answer>{final}</answer>" if final is not None else rng.choice(_GARBAGE)
            text = f"<think>\n{trace}\n</think>\n{tail}"
            finish, tokens = "stop", length
        return Completion(text=text, finish_reason=finish, prompt_tokens=prompt_tokens,
                          completion_tokens=tokens, model="sim", latency_s=round(0.05 + tokens / m.tps, 3),
                          usage={"prompt_tokens": prompt_tokens, "completion_tokens": tokens,
                                 "total_tokens": prompt_tokens + tokens})


def _trace(rng: random.Random, tokens: int) -> str:
    """About 4 characters per token of reasoning-looking text, with no digits (nothing to misgrade)."""
    return " ".join(rng.choices(_TRACE, k=math.ceil(tokens * 4 / _TRACE_MEAN)))
