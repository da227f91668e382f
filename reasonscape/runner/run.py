"""Orchestration of a run: API mode, write-batch, read-batch and the --plan dry run.

Library use (what runner.py does):

    from reasonscape.runner import RunOptions, run_experiment
    result = run_experiment(RunOptions(config="configs/demo.yaml", template="templates/zerocot-nosys.json",
                                       sampler="samplers/greedy-4k.json", model="sim-1.0",
                                       apibase="sim://?ability=1.0", quiet=True))
    result.path  # the result folder

Resume rules: a run is identified by its fingerprint (config name + content, model, template, sampler,
precision level, seed, task filter, tokenizer, and the sim:// URL for the simulated model). Re-running
with the same fingerprint continues the newest unfinished folder in --output (interrupted, failed,
killed, or waiting for batch answers); if a complete folder exists it is reported and nothing runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from reasonscape import __version__
from reasonscape.errors import InputError, ReasonScapeError
from reasonscape.records import METADATA_FILE, STEPS_FILE, StepWriter, read_json, write_json_atomic
from reasonscape.runner import output
from reasonscape.runner.cache import ResponseCache
from reasonscape.runner.client import (
    EndpointError,
    EndpointRefused,
    HttpBackend,
    RetryPolicy,
    normalize_apibase,
    redact_url,
)
from reasonscape.runner.execute import Executor, PointState, resume_states
from reasonscape.runner.plan import (
    PointPlan,
    RunSpec,
    TestContext,
    TestSequence,
    build_points,
    load_spec,
    make_request,
    prompt_text,
)
from reasonscape.runner.progress import Counts, Progress

MODES = ("api", "write-batch", "read-batch")


class RunInterrupted(ReasonScapeError):
    """Ctrl-C (or SIGTERM): what was written stays; re-running the same command resumes."""

    exit_code = 130


@dataclass
class RunOptions:
    """Every runner.py flag, as a library object (defaults as documented in docs/runner.md)."""

    config: str | Path
    template: str | Path
    sampler: str | Path
    model: str
    mode: str = "api"
    apibase: str | None = None
    apikey: str | None = None
    batch: str | Path | None = None
    precision: str | None = None
    seed: int = 42
    parallel: int = 16
    timeout: float = 3600.0
    #: Cache file or directory; None disables the cache.
    cache: str | Path | None = "cache/"
    tasks: tuple[str, ...] = ()
    output: str | Path = "results/"
    shuffle: bool = True
    quiet: bool = False
    tokenizer: str | None = None
    retries: int = 6
    #: Base of the exponential backoff in seconds (tests shorten it).
    backoff: float = 0.5

    @property
    def is_sim(self) -> bool:
        return bool(self.apibase) and str(self.apibase).startswith("sim:")


@dataclass
class RunResult:
    """What a run produced. `path` is the result folder (or the batch file for write-batch)."""

    path: Path
    status: str
    counts: Counts = field(default_factory=Counts)
    #: True when an already complete folder with the same fingerprint was found and nothing ran.
    reused: bool = False
    elapsed_s: float = 0.0
    #: One line for stderr describing what happened.
    message: str = ""


def run_experiment(options: RunOptions | None = None, /, **kwargs: Any) -> RunResult:
    """Run (or resume) an experiment; returns the folder. Raises ReasonScapeError subclasses:
    InputError (exit 2), RuntimeFailure (exit 1: endpoint dead or refusing), RunInterrupted (130)."""
    opts = replace(options, **kwargs) if options is not None else RunOptions(**kwargs)
    if opts.mode not in MODES:
        raise InputError(f"--mode {opts.mode}: expected one of {', '.join(MODES)}")
    if opts.parallel < 1:
        raise InputError(f"--parallel {opts.parallel}: must be at least 1")
    if opts.timeout <= 0:
        raise InputError(f"--timeout {opts.timeout}: must be > 0")
    if opts.mode == "api" and not opts.apibase:
        raise InputError("--apibase is required in api mode (an http(s) URL, or sim:// for the simulated model)")
    if opts.mode == "read-batch" and not opts.batch:
        raise InputError("--batch is required in read-batch mode (the vLLM run-batch output file)")
    if opts.mode == "write-batch":
        return _write_batch(opts)
    return _run_folder(opts)


# -- shared setup -------------------------------------------------------------------------------

def _spec(opts: RunOptions) -> RunSpec:
    return load_spec(opts.config, opts.template, opts.sampler, opts.model, seed=opts.seed,
                     precision=opts.precision, tasks=tuple(opts.tasks), tokenizer=opts.tokenizer,
                     sim_url=str(opts.apibase) if opts.is_sim else None)


def _locate(opts: RunOptions) -> tuple[RunSpec, Path, str, Path | None, Path | None]:
    """(spec, output dir, folder stem, complete folder, unfinished folder) for these options."""
    spec = _spec(opts)
    out_dir = Path(opts.output)
    stem = output.run_stem(spec)
    complete, unfinished = output.find_runs(out_dir, stem, spec.fingerprint())
    return spec, out_dir, stem, complete, unfinished


def _already_complete(folder: Path) -> RunResult:
    return RunResult(folder, output.COMPLETE, reused=True,
                     message=f"already complete: {folder} (same inputs; nothing to run)")


def _backend(opts: RunOptions, spec: RunSpec) -> Any:
    if opts.is_sim:
        from reasonscape.runner.sim import SimBackend

        return SimBackend(str(opts.apibase), max_tokens=spec.sampler.max_tokens)
    return HttpBackend(str(opts.apibase), apikey=opts.apikey, parallel=opts.parallel, timeout=opts.timeout,
                       retry=RetryPolicy(retries=opts.retries, backoff=opts.backoff), seed=opts.seed)


def _cache(opts: RunOptions) -> ResponseCache | None:
    return None if opts.cache is None else ResponseCache(opts.cache)


def _states(spec: RunSpec, plans: list[PointPlan], folder: Path | None) -> tuple[list[PointState], int]:
    done = output.read_done(folder) if folder is not None else {}
    return resume_states(plans, done, spec)


def _planned_total(spec: RunSpec, states: list[PointState]) -> int:
    """Tests planned so far: what is written plus the next round of every unfinished point."""
    count = spec.level.count
    return sum(s.rounds * count + (0 if s.finished else count) for s in states)


def _run_loop(executor: Executor) -> None:
    """Run the executor on a fresh event loop with Ctrl-C / SIGTERM wired to a clean stop."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        installed = []
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(sig, executor.interrupt)
                    installed.append(sig)
        try:
            await executor.run()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            await executor.backend.aclose()

    asyncio.run(main())


# -- API mode and read-batch: a result folder ----------------------------------------------------

def _metadata(opts: RunOptions, spec: RunSpec, previous: dict[str, Any] | None, n_points: int) -> dict[str, Any]:
    now = datetime.now().isoformat(timespec="seconds")
    meta = dict(previous or {})
    meta.update({
        "schema": 1, "tool": "reasonscape-runner", "version": __version__,
        "fingerprint": spec.fingerprint(), "status": output.RUNNING,
        "config": {"name": spec.config.name, "path": str(spec.config_path), "sha256": spec.config_sha},
        "template": {"name": spec.template.name, "path": str(spec.template_path), "sha256": spec.template_sha},
        "sampler": {"name": spec.sampler.name, "path": str(spec.sampler_path), "sha256": spec.sampler_sha},
        "model": spec.model, "mode": opts.mode,
        "apibase": _display_apibase(opts),
        "seed": spec.seed, "precision": {"name": spec.level_name, **spec.level.model_dump()},
        "tasks": list(spec.tasks) or None, "tokenizer": spec.tokenizer, "shuffle": opts.shuffle,
        "started_at": meta.get("started_at", now), "updated_at": now, "ended_at": None,
        "sessions": int(meta.get("sessions", 0)) + 1,
    })
    meta.setdefault("counts", {})
    meta["counts"]["points"] = n_points
    meta.pop("error", None)
    return meta


def _display_apibase(opts: RunOptions) -> str | None:
    if not opts.apibase or opts.mode != "api":
        return None
    return str(opts.apibase) if opts.is_sim else redact_url(normalize_apibase(str(opts.apibase)))


def _finish_metadata(meta: dict[str, Any], folder: Path, status: str, session: Counts, previous: dict[str, int],
                     states: list[PointState], error: str | None = None) -> None:
    totals = {"tests": 0, "truncations": 0, "errors": 0}
    for state in states:
        t = state.tally
        totals["tests"] += t.tests
        totals["truncations"] += t.truncated
        totals["errors"] += t.errors
    c = meta["counts"]
    c.update(totals)
    for k in ("cache_hits", "requests", "retries"):
        c[k] = int(previous.get(k, 0)) + getattr(session, k)
    c["points_done"] = sum(1 for s in states if s.finished and not s.blocked)
    c["rounds"] = sum(s.rounds for s in states)
    meta["status"] = status
    meta["ended_at"] = meta["updated_at"] = datetime.now().isoformat(timespec="seconds")
    if error:
        meta["error"] = error
    write_json_atomic(folder / METADATA_FILE, meta)


def _run_folder(opts: RunOptions) -> RunResult:
    t0 = time.perf_counter()
    spec, out_dir, stem, complete, unfinished = _locate(opts)
    if complete is not None:
        return _already_complete(complete)
    answers = None
    if opts.mode == "read-batch":
        from reasonscape.runner.batch import BatchAnswers, read_batch_output

        answers = BatchAnswers(read_batch_output(opts.batch))  # type: ignore[arg-type]
    backend = answers if answers is not None else _backend(opts, spec)
    plans = build_points(spec)
    cache = _cache(opts) if backend.cacheable else None
    folder = unfinished or output.new_path(out_dir, stem)
    folder.mkdir(parents=True, exist_ok=True)
    with output.folder_lock(folder):
        previous = read_json(folder / METADATA_FILE) if (folder / METADATA_FILE).exists() else None
        prev_counts = dict((previous or {}).get("counts", {}))
        meta = _metadata(opts, spec, previous, len(plans))
        write_json_atomic(folder / METADATA_FILE, meta)
        states, written = _states(spec, plans, folder)
        progress = Progress(_planned_total(spec, states), initial=written, quiet=opts.quiet)
        writer = StepWriter(folder / STEPS_FILE, fsync=False)
        executor = Executor(spec, states, backend, cache=cache, write=writer.write, progress=progress,
                            parallel=opts.parallel, shuffle=opts.shuffle)
        status, error = output.FAILED, None
        try:
            _run_loop(executor)
            if executor.interrupted:
                status = output.INTERRUPTED
            else:
                status = output.COMPLETE if executor.complete else output.INCOMPLETE
        except EndpointError as exc:
            error = str(exc)
            kept = sum(st.tally.tests for st in states)
            fix = ("fix the request (key, model, URL), then run the same command to resume"
                   if isinstance(exc, EndpointRefused) else "run the same command again to resume")
            raise type(exc)(f"{exc}; {kept} tests kept in {folder}; {fix}") from None
        except ReasonScapeError as exc:
            error = str(exc)
            raise
        except KeyboardInterrupt:
            status = output.INTERRUPTED
        finally:
            progress.close()
            writer.close()
            if cache is not None:
                cache.close()
            _finish_metadata(meta, folder, status, executor.counts, prev_counts, states, error)
    done_tests = meta["counts"]["tests"]
    result = RunResult(folder, status, executor.counts, elapsed_s=time.perf_counter() - t0)
    if status == output.INTERRUPTED:
        raise RunInterrupted(f"interrupted: {done_tests} tests written to {folder}; "
                             "run the same command again to resume")
    c = executor.counts
    result.message = (f"{status}: {done_tests} tests in {folder} ({c.tests} this session in "
                      f"{result.elapsed_s:.1f}s: {c.requests} requests, {c.cache_hits} cache hits, "
                      f"{c.retries} retries, {c.truncations} truncated, {c.errors} errors)")
    if answers is not None:
        paused = sum(1 for s in states if s.blocked)
        result.message = f"read-batch: {answers.summary()}; " + result.message
        if paused:
            result.message += (f"; {paused} points wait for answers: run --mode write-batch again, "
                               "then read-batch")
    return result


# -- write-batch ----------------------------------------------------------------------------------

def _write_batch(opts: RunOptions) -> RunResult:
    from reasonscape.runner.batch import BatchWriter

    t0 = time.perf_counter()
    spec, out_dir, stem, complete, unfinished = _locate(opts)
    if complete is not None:
        return _already_complete(complete)
    plans = build_points(spec)
    states, written = _states(spec, plans, unfinished)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = output.new_path(out_dir, stem, ".ndjson")
    cache = _cache(opts)
    progress = Progress(_planned_total(spec, states), initial=written, quiet=opts.quiet)
    try:
        with open(path, "wb") as fh:
            backend = BatchWriter(fh)
            executor = Executor(spec, states, backend, cache=cache, write=None, progress=progress,
                                parallel=1, shuffle=opts.shuffle)
            _run_loop(executor)
    finally:
        progress.close()
        if cache is not None:
            cache.close()
    if executor.interrupted:
        path.unlink(missing_ok=True)
        raise RunInterrupted("interrupted: no batch file written")
    msg = (f"write-batch: {backend.lines} requests in {path}"
           + (f" (resuming {unfinished}: {written} tests already written)" if unfinished else "")
           + (f"; {executor.counts.cache_hits} answers already cached" if executor.counts.cache_hits else ""))
    if backend.lines == 0:
        msg += "; nothing to request: run --mode read-batch with this (empty) file to write the results"
    counts = executor.counts
    counts.pending = backend.lines
    return RunResult(path, "batch", counts, elapsed_s=time.perf_counter() - t0, message=msg)


# -- --plan and --estimate --------------------------------------------------------------------------

@dataclass
class PlanReport:
    points: int
    count: int
    maxrounds: int
    tests_round1: int
    tests_cap: int
    done: int
    cache_hits: int
    requests: int
    prompt_tokens: int
    completion_tokens_mean: float | None
    completion_source: str
    #: Sampler max_tokens x requests: the most the round-1 requests can generate (None: no limit set).
    completion_cap: int | None = None
    resumes: Path | None = None
    complete: Path | None = None
    estimate_n: int = 0
    estimate_s: float = 0.0
    estimate_rate: float = 0.0

    @property
    def completion_tokens(self) -> int | None:
        if self.completion_tokens_mean is None:
            return None
        return int(round(self.completion_tokens_mean * self.requests))

    def lines(self) -> list[str]:
        out = []
        if self.complete is not None:
            out.append(f"complete run:       {self.complete} (re-running does nothing)")
        if self.resumes is not None:
            out.append(f"resumes:            {self.resumes} ({self.done} tests written)")
        out += [
            f"points:             {self.points}",
            f"tests (round 1):    {self.tests_round1}  ({self.count} per point)",
            f"tests (cap):        {self.tests_cap}  ({self.maxrounds} rounds max)",
            f"cache hits:         {self.cache_hits}  (round 1)",
            f"requests:           {self.requests}  (round 1, after cache hits)",
            f"prompt tokens:      ~{self.prompt_tokens}  (round 1 requests)",
        ]
        if self.completion_tokens is None:
            cap = f"; at most {self.completion_cap} by max_tokens" if self.completion_cap is not None else ""
            out.append(f"completion tokens:  unknown (add --estimate N to measure{cap})")
        else:
            out.append(f"completion tokens:  ~{self.completion_tokens}  (mean {self.completion_tokens_mean:.0f}"
                       f" per request, {self.completion_source})")
        if self.estimate_n:
            rate = self.estimate_rate
            cap_requests = max(0, self.tests_cap - self.done - self.cache_hits)
            out += [f"estimate:           {self.estimate_n} requests in {self.estimate_s:.1f}s "
                    f"({rate:.2f} requests/s)",
                    f"wall time (round 1): ~{_duration(self.requests / rate if rate else math.inf)}",
                    f"wall time (cap):     ~{_duration(cap_requests / rate if rate else math.inf)}"]
        return out


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "unknown"
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def plan_experiment(options: RunOptions | None = None, /, estimate: int = 0, **kwargs: Any) -> PlanReport:
    """Dry run: counts and token estimates for the run these options describe; with `estimate` > 0,
    first send that many of its real requests (answers go to the cache) to project the wall time."""
    opts = replace(options, **kwargs) if options is not None else RunOptions(**kwargs)
    spec, _, _, complete, unfinished = _locate(opts)
    plans = build_points(spec)
    states, written = _states(spec, plans, unfinished)
    count, level = spec.level.count, spec.level
    todo: list[TestContext] = []
    for state in states:
        if state.finished:
            continue
        start = state.rounds * count
        for i, test in enumerate(TestSequence(state.plan).take(start, start + count)):
            todo.append(TestContext(state.plan, test, start + i, make_request(spec, state.plan, test.question)))
    cache = _cache(opts) if not opts.is_sim else None
    try:
        hits = cache.get_many([t.key for t in todo]) if cache is not None else {}
        misses = [t for t in todo if t.key not in hits]
        report = PlanReport(
            points=len(plans), count=count, maxrounds=level.maxrounds, tests_round1=len(plans) * count,
            tests_cap=len(plans) * count * level.maxrounds, done=written, cache_hits=len(todo) - len(misses),
            requests=len(misses), prompt_tokens=_prompt_tokens(misses, opts.tokenizer),
            completion_tokens_mean=None, completion_source="",
            completion_cap=None if spec.sampler.max_tokens is None else spec.sampler.max_tokens * len(misses),
            resumes=unfinished if complete is None else None, complete=complete)
        answered = [c for c in hits.values() if c.error is None]
        if answered:
            report.completion_tokens_mean = sum(c.completion_tokens for c in answered) / len(answered)
            report.completion_source = f"from {len(answered)} cached answers"
        if estimate > 0 and misses:
            if not opts.apibase:
                raise InputError("--estimate needs --apibase (it sends real requests)")
            _estimate(opts, spec, misses[:estimate], cache, report)
    finally:
        if cache is not None:
            cache.close()
    return report


def _prompt_tokens(contexts: list[TestContext], tokenizer: str | None) -> int:
    if tokenizer:
        from reasonscape.manifold import load_token_counter

        counter = load_token_counter(tokenizer)
        return sum(counter(prompt_text(t.request.content)) for t in contexts)
    return sum(len(prompt_text(t.request.content)) for t in contexts) // 4


def _estimate(opts: RunOptions, spec: RunSpec, sample: list[TestContext], cache: ResponseCache | None,
              report: PlanReport) -> None:
    backend = _backend(opts, spec)

    async def main() -> list[Any]:
        sem = asyncio.Semaphore(opts.parallel)

        async def one(ctx: TestContext) -> Any:
            async with sem:
                return await backend.complete(spec.path, ctx.request.content, ctx)

        try:
            return await asyncio.gather(*(one(c) for c in sample))
        finally:
            await backend.aclose()

    t0 = time.perf_counter()
    answers = asyncio.run(main())
    elapsed = max(time.perf_counter() - t0, 1e-6)
    ok = [a for a in answers if a.error is None]
    if cache is not None and backend.cacheable:
        cache.put_many((ctx.key, ctx.request.content, a) for ctx, a in zip(sample, answers, strict=True))
    report.estimate_n, report.estimate_s = len(sample), elapsed
    # With fewer requests than --parallel the sample ran all at once: scale by concurrency instead.
    report.estimate_rate = len(sample) / elapsed * (opts.parallel / len(sample) if len(sample) < opts.parallel else 1)
    if ok and report.completion_tokens_mean is None:
        report.completion_tokens_mean = sum(a.completion_tokens for a in ok) / len(ok)
        report.completion_source = f"from {len(ok)} estimate answers"
