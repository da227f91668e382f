"""Stage 3: aggregate result NDJSON into PointsDB, incrementally and idempotently.

Design (docs/evaluate.md has the long form):

* Work unit = a whole NDJSON file, or a byte range of one (split at line boundaries when a file is
  larger than SPLIT_BYTES or than a fair share of the work, so that every worker is busy), run in a
  process pool. Each worker maps its range, decodes each line with msgspec into structs holding only
  the fields aggregation needs (answers stay undecoded views; orjson is the fallback decoder), and
  folds a chunk of tests at a time into per-point accumulators with a few NumPy calls: counters, a
  per-test-index state byte (for de-duplication), a hazard histogram and the compression sample
  (zstd of the kept answers with index < 32). Memory grows with the number of points and their
  largest test index, never with the input size (mapped pages are released as the range is read).
* A fresh DB (no file yet) means every file is read: the workers start before the DB is created.
* A point's tests may come from several files (folders); tests are de-duplicated by test index: the
  first answered occurrence in (file path, line) order wins, and an answer replaces an earlier error.
  Partial results of different ranges are merged; when two ranges answered the same index of a point,
  that point is recomputed serially over its files so the rule above holds exactly.
* Incremental: the `files` table remembers (path, eval, size, mtime_ns, fingerprint, grading mode).
  Unchanged files are not read; a new or changed file adds or recomputes only the points it holds
  (reading other files that hold the same points, restricted to those points). In dataset mode files
  no longer selected are dropped with their points; interview mode only adds.
* Malformed lines are reported as `path:line: ...` errors after the run, the valid lines of the same
  file are counted, and the run's exit code is 2 (EvaluateResult.exit_code).

Package layout (one module per concern): `decode` (NDJSON lines -> the fields aggregation needs),
`aggregate` (per-point accumulators), `jobs` (work units, the process pool, merging partials),
`incremental` (which files changed; the `files` bookkeeping), `write` (the DB transaction) and `run`
(orchestration: `evaluate_dataset`, `evaluate_interview`).
"""

from __future__ import annotations

from reasonscape import forensics
from reasonscape.errors import InputError, RuntimeFailure
from reasonscape.evaluate.aggregate import Key, PointAcc
from reasonscape.evaluate.decode import MAX_INDEX, MAX_TOKENS, STATUS_CODE
from reasonscape.evaluate.incremental import expand_interview, fingerprint
from reasonscape.evaluate.jobs import (
    CHUNK_TESTS,
    MIN_SPLIT_BYTES,
    SPLIT_BYTES,
    Job,
    Partial,
    default_parallel,
    plan_jobs,
    run_job,
)
from reasonscape.evaluate.run import (
    DEFAULT_INTERVIEW_DB,
    EvaluateResult,
    evaluate_dataset,
    evaluate_interview,
)

__all__ = ["CHUNK_TESTS", "DEFAULT_INTERVIEW_DB", "MAX_INDEX", "MAX_TOKENS", "MIN_SPLIT_BYTES", "SPLIT_BYTES",
           "STATUS_CODE", "EvaluateResult", "forensics", "InputError", "Job", "Key", "Partial", "PointAcc", "RuntimeFailure",
           "default_parallel", "evaluate_dataset", "evaluate_interview", "expand_interview", "fingerprint",
           "plan_jobs", "run_job"]
