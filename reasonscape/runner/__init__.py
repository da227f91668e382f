"""Stage 2, EXECUTE: run an experiment config against an endpoint (or the simulated model).

One concern per module: `transport` (lean HTTP/1.1 for httpx), `client` (requests and the retry policy),
`cache` (SQLite response cache), `sim` (the simulated model), `batch` (vLLM run-batch files), `plan`
(inputs, fingerprint, points, rounds, stopping rule), `execute` (the scheduler and worker pool),
`output` (result folders and resume), `progress` (counters and the bar) and `run` (the modes).
"""

from __future__ import annotations

from typing import Any

__all__ = ["RunOptions", "RunResult", "RunInterrupted", "PlanReport", "run_experiment", "plan_experiment"]


def __getattr__(name: str) -> Any:  # keep `import reasonscape.runner` light for the CLI's --help
    if name in __all__:
        from reasonscape.runner import run

        return getattr(run, name)
    raise AttributeError(name)
