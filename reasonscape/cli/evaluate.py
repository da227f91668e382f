"""evaluate.py: aggregate result NDJSON into a PointsDB (argument parsing and error reporting only)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from reasonscape.errors import ReasonScapeError

MAX_ERROR_LINES = 50


def run_command(command: click.Command, args: list[str] | None = None) -> None:
    """Run a click command so that every failure is one `error: ...` line on stderr and an exit code
    (2 for bad input and usage, 1 for runtime failures), never a traceback."""
    try:
        command.main(args=args, standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        sys.exit(1)
    except click.UsageError as exc:
        click.echo(f"error: {exc.format_message()}".replace("\n", " "), err=True)
        sys.exit(2)
    except ReasonScapeError as exc:
        click.echo(f"error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        sys.exit(130)
    except OSError as exc:
        click.echo(f"error: {exc.filename or ''}{': ' if exc.filename else ''}{exc.strerror or exc}", err=True)
        sys.exit(1)


def report(result: Any, quiet: bool, echo: Callable[..., None] = click.echo) -> None:
    for w in result.warnings:
        echo(f"warning: {w}", err=True)
    for e in result.errors[:MAX_ERROR_LINES]:
        echo(f"error: {e}", err=True)
    if len(result.errors) > MAX_ERROR_LINES:
        echo(f"error: ... and {len(result.errors) - MAX_ERROR_LINES} more bad lines", err=True)
    echo(result.summary())


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--dataset", type=click.Path(dir_okay=False), help="Dataset config JSON (processes all its evals).")
@click.option("--interview", help="Path, glob, or comma-separated list of NDJSON files (or result folders).")
@click.option("--db", type=click.Path(dir_okay=False),
              help="PointsDB to write in interview mode [default: data/pointsdb-interview.db].")
@click.option("--parallel", type=click.IntRange(min=1), default=16, show_default=True,
              help="Worker processes (capped at the CPU count).")
@click.option("--offline", is_flag=True, help="Re-grade answers with the current graders.")
@click.option("--inplace", is_flag=True, help="Write re-graded results back to the NDJSON (requires --offline).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def cli(dataset: str | None, interview: str | None, db: str | None, parallel: int, offline: bool, inplace: bool,
        quiet: bool) -> None:
    """Process raw NDJSON results into the PointsDB DuckDB database (idempotent, incremental)."""
    if (dataset is None) == (interview is None):
        raise click.UsageError("give exactly one of --dataset and --interview")
    if inplace and not offline:
        raise click.UsageError("--inplace requires --offline")
    if db is not None and dataset is not None:
        raise click.UsageError("--db is for --interview; a dataset names its db in its config")
    from reasonscape import evaluate as ev

    if dataset is not None:
        result = ev.evaluate_dataset(dataset, parallel=parallel, offline=offline, inplace=inplace, progress=not quiet)
    else:
        result = ev.evaluate_interview(interview, db or ev.DEFAULT_INTERVIEW_DB, parallel=parallel, offline=offline,
                                       inplace=inplace, progress=not quiet)
    report(result, quiet)
    sys.exit(result.exit_code)


def main(args: list[str] | None = None) -> None:
    run_command(cli, args)
