"""The scheduler: point-rounds in, graded step records out, with `parallel` requests always in flight.

A producer walks the ready point-rounds (shuffled once with the run's seed), generates each round's
tests, answers what it can from the cache in one batched lookup, and queues the rest; `parallel` workers
pull single requests off the queue, so the pool stays full (a slow request never holds back a batch).
When a round's last test is graded its StepRecord is written, the point's tally is updated, and the
stopping rule decides whether the point's next round goes back to the front of the ready list.

A backend returns None for a test whose answer is not available in this session (write-batch collects
the request; read-batch has no answer for it): that round stays unwritten and its point pauses.

Only as many workers start as there can be requests in flight (at most one round per unfinished point),
so a huge --parallel costs nothing beyond what the run can use. A task generator that raises stops the
run with `GenerationFailed` naming the task and params (exit 1; the folder stays resumable).
`generating` is true while a round's tests are being generated (synchronous code the event loop cannot
interrupt): run.py's signal handlers use it to stop a stuck generator at once.
"""

from __future__ import annotations

import asyncio
import random
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from reasonscape.errors import ReasonScapeError, RuntimeFailure
from reasonscape.identity import params_key
from reasonscape.records import StepRecord, TestResult
from reasonscape.runner.cache import ResponseCache
from reasonscape.runner.client import Completion
from reasonscape.runner.plan import (
    PointPlan,
    RunSpec,
    Tally,
    TestContext,
    TestSequence,
    make_request,
    needs_another_round,
)
from reasonscape.runner.progress import Counts, Progress
from reasonscape.scoring import ERROR, grade


class GenerationFailed(RuntimeFailure):
    """A task generator raised while generating a point's tests (a bug or an impossible setting)."""


def generation_error(plan: PointPlan, start: int, exc: BaseException) -> GenerationFailed:
    """One line naming the task, the params and the failure (with the generator's own source line)."""
    where = ""
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        last = frames[-1]
        where = f" at {last.filename.rsplit('/', 1)[-1]}:{last.lineno}"
    text = " ".join(str(exc).split())[:200]
    return GenerationFailed(f"task {plan.task.name} params {params_key(plan.point.params)}: generating test "
                            f"{start} failed ({type(exc).__name__}{': ' + text if text else ''}{where})")


def take_tests(plan: PointPlan, seq: TestSequence, start: int, stop: int) -> list:
    """`seq.take(start, stop)`, with any generator exception turned into `GenerationFailed`."""
    try:
        return seq.take(start, stop)
    except ReasonScapeError:
        raise
    except Exception as exc:
        raise generation_error(plan, start, exc) from None


class Backend(Protocol):
    #: Whether answers are worth caching (real models: yes; the simulated model: no).
    cacheable: bool
    requests: int
    retries: int

    async def complete(self, path: str, content: bytes, context: TestContext) -> Completion | None: ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class PointState:
    plan: PointPlan
    rounds: int = 0
    tally: Tally = field(default_factory=Tally)
    seq: TestSequence | None = None
    #: Done for this session: stopped by the rule, or waiting for answers (batch).
    finished: bool = False
    blocked: bool = False


def resume_states(plans: list[PointPlan], done: dict[str, dict[int, dict[str, Any]]],
                  spec: RunSpec) -> tuple[list[PointState], int]:
    """Every point's state given the tests already written (whole rounds), and how many tests that is.

    Each point's written rounds go back through the stopping rule, so a resumed run makes the same
    decisions as an uninterrupted one.
    """
    count = spec.level.count
    states = []
    written = 0
    for plan in plans:
        st = PointState(plan)
        tests = done.get(plan.point.key)
        if tests:
            rounds = 0
            while all(i in tests for i in range(rounds * count, (rounds + 1) * count)):
                rounds += 1
            ended = _short_round(plan, tests, rounds * count, count)
            n_written = rounds * count + ended
            for i in range(n_written):
                t = tests[i]
                st.tally.add(t.get("status", ""), bool(t.get("truncated")), float(t.get("guess_chance") or 0.0))
            st.rounds = rounds + (1 if ended else 0)
            written += n_written
            st.finished = bool(ended) or (rounds > 0 and not needs_another_round(spec.level, rounds, st.tally))
        states.append(st)
    return states, written


def _short_round(plan: PointPlan, tests: dict[int, Any], start: int, count: int) -> int:
    """Length of a written last round shorter than `count` because the point's sequence ended there
    (its question space ran out), else 0. Only such points pay for regenerating their sequence."""
    k = 0
    while start + k in tests:
        k += 1
    if k == 0 or k >= count:
        return 0
    return k if len(TestSequence(plan).take(start, start + count)) == k else 0


class _Round:
    __slots__ = ("state", "start", "tests", "requests", "results", "pending", "deferred")

    def __init__(self, state: PointState, start: int, tests: list, requests: list):
        self.state = state
        self.start = start
        self.tests = tests
        self.requests = requests
        self.results: list[TestResult | None] = [None] * len(tests)
        self.pending = len(tests)
        self.deferred = 0


class Executor:
    """Runs the point-rounds of `states` through `backend`; see the module docstring."""

    def __init__(self, spec: RunSpec, states: list[PointState], backend: Backend, *,
                 cache: ResponseCache | None, write: Callable[[StepRecord], None] | None,
                 progress: Progress, parallel: int = 16, shuffle: bool = True):
        self.spec = spec
        self.backend = backend
        self.cache = cache
        self.write = write
        self.progress = progress
        self.parallel = max(1, int(parallel))
        self.counts = Counts()
        self.interrupted = False
        self.states = states
        ready = [s for s in states if not s.finished]
        if shuffle:
            random.Random(spec.seed).shuffle(ready)
        self._ready: deque[PointState] = deque(ready)
        self._open = 0
        self._tasks: list[asyncio.Task] = []
        self._count = spec.level.count
        self._path = spec.path
        self._caching = cache is not None and backend.cacheable
        #: True while a round's tests are generated (see the module docstring).
        self.generating = False
        #: Workers actually started: no more than the requests that can be in flight at once.
        self.workers = max(1, min(self.parallel, len(ready) * self._count))

    # -- public ----------------------------------------------------------------------------

    async def run(self) -> Counts:
        """Run until every point stopped (or paused); a fatal backend error propagates."""
        # Jobs are a plain deque: workers pop without awaiting while it is non-empty, and the producer
        # refills it a round at a time when it falls to the low-water mark (one producer wake-up per
        # round instead of one per test, as a bounded asyncio.Queue would cost).
        self._jobs: deque[tuple[_Round, int]] = deque()
        self._low = self.workers
        self._high = max(64, 4 * self.workers)
        self._has_jobs = asyncio.Event()
        self._wake = asyncio.Event()
        self._producing = True
        self._tasks = [asyncio.create_task(self._produce())]
        self._tasks += [asyncio.create_task(self._work()) for _ in range(self.workers)]
        try:
            done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for t in self._tasks:
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self.counts.requests = self.backend.requests
            self.counts.retries = self.backend.retries
            if self.cache is not None:
                self.cache.flush()
        for t in done:
            if not t.cancelled() and t.exception() is not None:
                raise t.exception()  # type: ignore[misc]
        return self.counts

    def interrupt(self) -> None:
        """Stop now (Ctrl-C): in-flight requests are dropped, written rounds stay written."""
        self.interrupted = True
        for t in self._tasks:
            t.cancel()

    @property
    def complete(self) -> bool:
        return not self.interrupted and all(s.finished and not s.blocked for s in self.states)

    # -- producer and workers --------------------------------------------------------------

    async def _produce(self) -> None:
        ready, jobs, spec, count = self._ready, self._jobs, self.spec, self._count
        while True:
            if ready and len(jobs) < self._high:
                self._emit(ready.popleft(), jobs, spec, count)
                await asyncio.sleep(0)  # let workers, signals and timers in between rounds
                continue
            if not ready and self._open == 0:
                break
            self._wake.clear()
            await self._wake.wait()
        self._producing = False
        self._has_jobs.set()

    def _emit(self, state: PointState, jobs: deque, spec: RunSpec, count: int) -> None:
        """Generate the point's next round; answer cache hits now, queue the misses."""
        plan = state.plan
        if state.seq is None:
            state.seq = TestSequence(plan)
        start = state.rounds * count
        self.generating = True
        try:
            tests = take_tests(plan, state.seq, start, start + count)
        finally:
            self.generating = False
        if not tests:  # the point's question space ran out at a round boundary: it is complete
            state.finished, state.seq = True, None
            self._wake.set()
            return
        requests = [make_request(spec, plan, t.question) for t in tests]
        rnd = _Round(state, start, tests, requests)
        self._open += 1
        hits = self.cache.get_many([r.key for r in requests]) if self.cache is not None else {}
        for pos, req in enumerate(requests):
            hit = hits.get(req.key)
            if hit is not None:
                self.counts.cache_hits += 1
                self._complete(rnd, pos, hit)
            else:
                jobs.append((rnd, pos))
        if jobs:
            self._has_jobs.set()

    async def _work(self) -> None:
        jobs, backend, path = self._jobs, self.backend, self._path
        while True:
            if not jobs:
                if not self._producing:
                    return
                self._has_jobs.clear()
                self._wake.set()
                await self._has_jobs.wait()
                continue
            rnd, pos = jobs.popleft()
            if len(jobs) <= self._low:
                self._wake.set()
            req = rnd.requests[pos]
            ctx = TestContext(rnd.state.plan, rnd.tests[pos], rnd.start + pos, req)
            c = await backend.complete(path, req.content, ctx)
            if c is None:
                rnd.deferred += 1
                self.counts.pending += 1
                rnd.pending -= 1
                if rnd.pending == 0:
                    self._finish(rnd)
                continue
            if self._caching:
                self.cache.put(req.key, req.content, c)  # type: ignore[union-attr]
            self._complete(rnd, pos, c)

    # -- bookkeeping (synchronous: never interrupted half-way) ------------------------------

    def _complete(self, rnd: _Round, pos: int, c: Completion) -> None:
        test = rnd.tests[pos]
        if c.error is not None:
            status, extracted = ERROR, None
            self.counts.errors += 1
        else:
            status, extracted = grade(rnd.state.plan.task, c.text, test.reference, test.meta,
                                      truncated=c.finish_reason == "length")
        truncated = c.finish_reason == "length"
        if truncated:
            self.counts.truncations += 1
        rnd.results[pos] = TestResult(
            index=rnd.start + pos, question=test.question, reference=test.reference, answer=c.text,
            extracted=extracted, status=status, truncated=truncated, prompt_tokens=c.prompt_tokens,
            completion_tokens=c.completion_tokens, guess_chance=test.guess_chance,
            latency_s=round(c.latency_s, 4), cache_key=rnd.requests[pos].key, meta=test.meta, error=c.error)
        self.counts.tests += 1
        self.progress.advance(1, self.counts, self.backend.retries)
        rnd.pending -= 1
        if rnd.pending == 0:
            self._finish(rnd)

    def _finish(self, rnd: _Round) -> None:
        self._open -= 1
        state = rnd.state
        if rnd.deferred:
            state.blocked = state.finished = True
            state.seq = None
        else:
            if self.write is not None:
                plan = state.plan
                self.write(StepRecord(self.spec.model, self.spec.template.name, self.spec.sampler.name,
                                      plan.point.base_task, plan.point.params, plan.point.manifold,
                                      self.spec.seed, rnd.results))  # type: ignore[arg-type]
            add = state.tally.add
            for r in rnd.results:
                add(r.status, r.truncated, r.guess_chance)  # type: ignore[union-attr]
            state.rounds += 1
            self.counts.rounds += 1
            exhausted = state.seq is not None and state.seq.exhausted
            if not exhausted and needs_another_round(self.spec.level, state.rounds, state.tally):
                self._ready.appendleft(state)
                self.progress.grow(self._count)
            else:
                state.finished = True
                state.seq = None
        self._wake.set()
