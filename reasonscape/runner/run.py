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
A folder whose metadata.json was lost or torn is resumed when its steps file proves it is this run's
(output.orphan_belongs), and its metadata is rebuilt.

Bounds (bad values are a one-line InputError, exit 2): --parallel 1..MAX_PARALLEL, --timeout finite in
(0, MAX_TIMEOUT], --seed 0..2**63-1, --retries 0..MAX_RETRIES, --apibase http(s)://host[:port][/path]
without query or fragment, or a sim:// URL with finite in-range parameters. A grid with no points is an
error; one above WARN_POINTS points or WARN_TESTS tests (at the precision cap) gets a warning line.
Every text that reaches metadata.json or stderr goes through the run's `Scrubber` (reasonscape.secrets).
"""

from __future__ import annotations

import asyncio
import math
import numbers
import signal
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from reasonscape import __version__
from reasonscape.errors import InputError, ReasonScapeError, RuntimeFailure
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
from reasonscape.runner.execute import Executor, PointState, resume_states, take_tests
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
from reasonscape.secrets import Scrubber

MODES = ("api", "write-batch", "read-batch")
MAX_PARALLEL = 4096
MAX_TIMEOUT = 7 * 86400.0
MAX_RETRIES = 100
MAX_SEED = 2**63 - 1
#: Above these a run (or --plan) warns on stderr: expansion alone takes minutes and gigabytes.
WARN_POINTS = 100_000
WARN_TESTS = 10_000_000


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
    validate_options(opts)
    if opts.mode == "api" and not opts.apibase:
        raise InputError("--apibase is required in api mode (an http(s) URL, or sim:// for the simulated model)")
    if opts.mode == "read-batch" and not opts.batch:
        raise InputError("--batch is required in read-batch mode (the vLLM run-batch output file)")
    if opts.mode == "read-batch":
        batch = Path(opts.batch)  # type: ignore[arg-type]
        if not batch.exists():
            raise InputError(f"--batch {batch}: file not found")
        if not batch.is_file():
            raise InputError(f"--batch {batch}: not a file")
    if opts.mode == "write-batch":
        return _write_batch(opts)
    return _run_folder(opts)


def _int_in(value: Any, low: int, high: int, flag: str) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= value <= high:
        raise InputError(f"{flag} {value!r}: expected a whole number in {low}..{high}")


def validate_options(opts: RunOptions) -> None:
    """Every bound of the module docstring, checked before any file is read (InputError, exit 2)."""
    if opts.mode not in MODES:
        raise InputError(f"--mode {opts.mode}: expected one of {', '.join(MODES)}")
    if not isinstance(opts.model, str) or not opts.model.strip() or not opts.model.isprintable():
        raise InputError(f"--model {opts.model!r}: expected a non-empty name without control characters")
    if opts.apikey is not None and (not isinstance(opts.apikey, str)
                                    or any(not 32 < ord(ch) < 127 for ch in opts.apikey)):
        # a newline would inject header lines, a non-ASCII character cannot be sent; never echo the key
        raise InputError("--apikey / $OPENAI_API_KEY: the key must be printable ASCII without spaces or "
                         "control characters (a trailing newline from a key file?)")
    _int_in(opts.parallel, 1, MAX_PARALLEL, "--parallel")
    _int_in(opts.retries, 0, MAX_RETRIES, "--retries")
    _int_in(opts.seed, 0, MAX_SEED, "--seed")
    if isinstance(opts.timeout, bool) or not isinstance(opts.timeout, (int, float)) \
            or not (math.isfinite(opts.timeout) and 0 < opts.timeout <= MAX_TIMEOUT):
        raise InputError(f"--timeout {opts.timeout!r}: expected seconds, a finite number in (0, {MAX_TIMEOUT:g}]")
    if not isinstance(opts.backoff, (int, float)) or not (math.isfinite(opts.backoff) and opts.backoff >= 0):
        raise InputError(f"backoff {opts.backoff!r}: expected a finite number >= 0")
    if opts.apibase:
        if opts.is_sim:
            from reasonscape.runner.sim import parse_sim_url

            parse_sim_url(str(opts.apibase))
        else:
            normalize_apibase(str(opts.apibase))
    out = Path(opts.output)
    if out.exists() and not out.is_dir():
        raise InputError(f"--output {out}: exists and is not a directory")
    _check_parents(out, "--output")
    if opts.cache is not None:
        from reasonscape.runner.cache import cache_path

        cache = cache_path(opts.cache)
        if cache.exists() and not cache.is_file():
            raise InputError(f"--cache {opts.cache}: {cache} is not a file")
        _check_parents(cache, "--cache")


def _check_parents(path: Path, flag: str) -> None:
    """The nearest existing ancestor of a path we will create must be a directory."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"{flag} {path}: {parent} is not a directory")
            return


def scrubber_for(opts: RunOptions) -> Scrubber:
    """The run's scrubber: every form of --apikey and of credentials in --apibase."""
    return Scrubber(opts.apikey, None if opts.is_sim else (str(opts.apibase) if opts.apibase else None))


def warn(text: str, scrubber: Scrubber | None = None) -> None:
    """One `warning: ...` line on stderr (shown even with --quiet)."""
    line = " ".join(text.split())
    print(f"warning: {scrubber.scrub(line) if scrubber else line}", file=sys.stderr, flush=True)


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


def _points(spec: RunSpec, opts: RunOptions) -> list[PointPlan]:
    """The run's points: an empty grid is an InputError, a huge one a warning, a failing task a
    one-line RuntimeFailure naming it."""
    from reasonscape.manifold import count_points

    planned = count_points(spec.config, spec.tasks or None)  # cheap: warn before a huge grid is built
    cap = planned * spec.level.count * spec.level.maxrounds
    if planned > WARN_POINTS or cap > WARN_TESTS:
        warn(f"{spec.config_path}: {planned} points, up to {cap} tests (precision {spec.level_name}); "
             f"runs above {WARN_POINTS} points or {WARN_TESTS} tests take long and much memory "
             "(check the grids, or use --task)")
    try:
        plans = build_points(spec)
    except ReasonScapeError:
        raise
    except Exception as exc:  # a task's few-shot generation or validation crashed
        text = " ".join(str(exc).split())[:200]
        raise RuntimeFailure(f"{spec.config_path}: building the points failed ({type(exc).__name__}"
                             f"{': ' + text if text else ''})") from None
    if not plans:
        only = f" with --task {', '.join(spec.tasks)}" if spec.tasks else ""
        raise InputError(f"{spec.config_path}: the grid has no points{only}: nothing to run")
    return plans


def _resume_folder(spec: RunSpec, out_dir: Path, stem: str, unfinished: Path | None,
                   plans: list[PointPlan]) -> tuple[Path | None, bool]:
    """(folder to resume, whether its metadata must be rebuilt): the newest of the unfinished folder and
    any orphan (metadata lost or torn) whose steps prove it belongs to this run."""
    orphans = [p for p in output.find_orphans(out_dir, stem) if unfinished is None or p.name > unfinished.name]
    if orphans:
        by_key = {p.point.key: p for p in plans}
        for orphan in orphans:
            if output.orphan_belongs(orphan, spec, by_key):
                return orphan, True
    return unfinished, False


def _states(spec: RunSpec, plans: list[PointPlan], folder: Path | None) -> tuple[list[PointState], int]:
    done = output.read_done(folder) if folder is not None else {}
    return resume_states(plans, done, spec)


def _planned_total(spec: RunSpec, states: list[PointState]) -> int:
    """Tests planned so far: what is written plus the next round of every unfinished point."""
    count = spec.level.count
    return sum(s.rounds * count + (0 if s.finished else count) for s in states)


def _run_loop(executor: Executor) -> None:
    """Run the executor on a fresh event loop with Ctrl-C / SIGTERM wired to a clean stop.

    The handlers are plain `signal.signal` handlers, not the loop's: Python runs them between bytecodes
    even while the loop is stuck in synchronous code. While a round's tests are being generated (a slow
    or endless generator) the handler raises KeyboardInterrupt right there; otherwise it asks the loop
    to cancel the workers. Either way what was written stays and the folder is resumable.
    """

    async def main() -> None:
        loop = asyncio.get_running_loop()
        previous: dict[int, Any] = {}

        def handler(signum: int, frame: Any) -> None:
            if executor.generating:
                executor.interrupted = True
                raise KeyboardInterrupt
            loop.call_soon_threadsafe(executor.interrupt)

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    previous[sig] = signal.signal(sig, handler)
                except (ValueError, OSError):  # pragma: no cover - not settable here
                    pass
        try:
            await executor.run()
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
            await executor.backend.aclose()

    asyncio.run(main())


# -- API mode and read-batch: a result folder ----------------------------------------------------

def _metadata(opts: RunOptions, spec: RunSpec, previous: dict[str, Any] | None, n_points: int) -> dict[str, Any]:
    now = datetime.now().isoformat(timespec="seconds")
    items = spec.item_sources()
    meta = dict(previous or {})
    meta.update({
        "schema": 1, "tool": "reasonscape-runner", "version": __version__,
        "fingerprint": spec.fingerprint(), "status": output.RUNNING,
        "config": {"name": spec.config.name, "path": str(spec.config_path), "sha256": spec.config_sha},
        **({"item_sources": items} if items else {}),
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


def _write_metadata(folder: Path, meta: dict[str, Any], scrubber: Scrubber) -> None:
    write_json_atomic(folder / METADATA_FILE, scrubber.scrub_value(meta))


def _finish_metadata(meta: dict[str, Any], folder: Path, status: str, session: Counts, previous: dict[str, int],
                     states: list[PointState], scrubber: Scrubber, error: str | None = None) -> None:
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
    _write_metadata(folder, meta, scrubber)


def _run_folder(opts: RunOptions) -> RunResult:
    t0 = time.perf_counter()
    scrubber = scrubber_for(opts)
    answers = None
    if opts.mode == "read-batch":  # read (and check) the batch file even when the run is complete
        from reasonscape.runner.batch import BatchAnswers, read_batch_output

        answers = BatchAnswers(read_batch_output(opts.batch))  # type: ignore[arg-type]
        if scrubber:
            for c in answers.answers.values():
                if not isinstance(c, str):
                    c.text, c.error = scrubber.scrub(c.text), c.error and scrubber.scrub(c.error)
                    c.model, c.finish_reason = scrubber.scrub(c.model), c.finish_reason and scrubber.scrub(
                        c.finish_reason)
                    c.usage = scrubber.scrub_value(c.usage)
    spec, out_dir, stem, complete, unfinished = _locate(opts)
    if complete is not None:
        return _already_complete(complete)
    backend = answers if answers is not None else _backend(opts, spec)
    plans = _points(spec, opts)
    unfinished, rebuilt = _resume_folder(spec, out_dir, stem, unfinished, plans)
    cache = _cache(opts) if backend.cacheable else None
    folder = unfinished or output.new_path(out_dir, stem)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--output {out_dir}: cannot create {folder.name} ({exc.strerror or exc})") from None
    with output.folder_lock(folder):
        previous = None if rebuilt else (read_json(folder / METADATA_FILE)
                                         if (folder / METADATA_FILE).exists() else None)
        prev_counts = dict((previous or {}).get("counts", {}))
        meta = _metadata(opts, spec, previous, len(plans))
        if rebuilt:
            meta["rebuilt_at"] = meta["updated_at"]
            warn(f"{folder}: metadata.json was missing or unreadable; the steps file matches this run, "
                 "so it is resumed and its metadata rebuilt", scrubber)
        _write_metadata(folder, meta, scrubber)
        states, written = _states(spec, plans, folder)
        if answers is not None:  # what write-batch asked: the first unwritten round of each open point
            answers.asked_below = {s.plan.id: (s.rounds + 1) * spec.level.count for s in states if not s.finished}
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
            error = scrubber.scrub(str(exc))
            kept = sum(st.tally.tests for st in states)
            fix = ("fix the request (key, model, URL), then run the same command to resume"
                   if isinstance(exc, EndpointRefused) else "run the same command again to resume")
            raise type(exc)(f"{error}; {kept} tests kept in {folder}; {fix}") from None
        except ReasonScapeError as exc:
            error = scrubber.scrub(str(exc))
            raise
        except KeyboardInterrupt:
            status = output.INTERRUPTED
        except Exception as exc:  # a bug of ours: still leave the folder marked failed, with the reason
            error = scrubber.scrub(f"{type(exc).__name__}: {exc}")
            raise
        finally:
            progress.close()
            writer.close()
            if cache is not None:
                cache.close()
            _finish_metadata(meta, folder, status, executor.counts, prev_counts, states, scrubber, error)
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
    plans = _points(spec, opts)
    unfinished, _ = _resume_folder(spec, out_dir, stem, unfinished, plans)
    states, written = _states(spec, plans, unfinished)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--output {out_dir}: cannot create it ({exc.strerror or exc})") from None
    path = output.new_path(out_dir, stem, ".ndjson")
    cache = _cache(opts)
    progress = Progress(_planned_total(spec, states), initial=written, quiet=opts.quiet)
    try:
        with open(path, "wb") as fh:
            backend = BatchWriter(fh)
            executor = Executor(spec, states, backend, cache=cache, write=None, progress=progress,
                                parallel=1, shuffle=opts.shuffle)
            _run_loop(executor)
    except BaseException:
        path.unlink(missing_ok=True)  # a batch file cut short must not be sent to the engine
        raise
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
    validate_options(opts)
    spec, out_dir, stem, complete, unfinished = _locate(opts)
    plans = _points(spec, opts)
    unfinished, _ = _resume_folder(spec, out_dir, stem, unfinished, plans)
    states, written = _states(spec, plans, unfinished)
    count, level = spec.level.count, spec.level
    cache = _cache(opts) if not opts.is_sim else None
    counter = None
    if opts.tokenizer:
        from reasonscape.manifold import load_token_counter

        counter = load_token_counter(opts.tokenizer)
    # Streamed a chunk of points at a time: memory stays flat however large the grid (only the first
    # `estimate` misses are kept); the time is the generation of every round-1 test.
    n_hits = n_misses = prompt_tokens = n_answered = 0
    answered_tokens = 0
    sample: list[TestContext] = []
    try:
        open_states = [s for s in states if not s.finished]
        for lo in range(0, len(open_states), 256):
            chunk: list[TestContext] = []
            for state in open_states[lo:lo + 256]:
                start = state.rounds * count
                for i, test in enumerate(take_tests(state.plan, TestSequence(state.plan), start, start + count)):
                    chunk.append(TestContext(state.plan, test, start + i,
                                             make_request(spec, state.plan, test.question)))
            hits = cache.get_many([t.key for t in chunk]) if cache is not None else {}
            misses = [t for t in chunk if t.key not in hits]
            n_hits += len(chunk) - len(misses)
            n_misses += len(misses)
            prompt_tokens += _prompt_tokens(misses, counter)
            for c in hits.values():
                if c.error is None:
                    n_answered += 1
                    answered_tokens += c.completion_tokens
            if len(sample) < estimate:
                sample += misses[:estimate - len(sample)]
        report = PlanReport(
            points=len(plans), count=count, maxrounds=level.maxrounds, tests_round1=len(plans) * count,
            tests_cap=len(plans) * count * level.maxrounds, done=written, cache_hits=n_hits,
            requests=n_misses, prompt_tokens=prompt_tokens if counter else prompt_tokens // 4,
            completion_tokens_mean=None, completion_source="",
            completion_cap=None if spec.sampler.max_tokens is None else spec.sampler.max_tokens * n_misses,
            resumes=unfinished if complete is None else None, complete=complete)
        if n_answered:
            report.completion_tokens_mean = answered_tokens / n_answered
            report.completion_source = f"from {n_answered} cached answers"
        if estimate > 0 and sample:
            if not opts.apibase:
                raise InputError("--estimate needs --apibase (it sends real requests)")
            _estimate(opts, spec, sample, cache, report)
    finally:
        if cache is not None:
            cache.close()
    return report


def _prompt_tokens(contexts: list[TestContext], counter: Any) -> int:
    """Prompt tokens by the tokenizer's counter, or characters when there is none (the caller divides
    the total by 4, so small chunks do not each round down)."""
    if counter is not None:
        return sum(counter(prompt_text(t.request.content)) for t in contexts)
    return sum(len(prompt_text(t.request.content)) for t in contexts)


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
