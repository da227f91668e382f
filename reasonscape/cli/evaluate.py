"""evaluate.py: aggregate result NDJSON into a PointsDB (argument parsing and error reporting only)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from reasonscape.cli.common import run_command

MAX_ERROR_LINES = 50


def report(result: Any, quiet: bool, echo: Callable[..., None] = click.echo) -> None:
    for w in result.warnings:
        echo(f"warning: {w}", err=True)
    for e in result.errors[:MAX_ERROR_LINES]:
        echo(f"error: {e}", err=True)
    if len(result.errors) > MAX_ERROR_LINES:
        echo(f"error: ... and {len(result.errors) - MAX_ERROR_LINES} more bad lines", err=True)
    echo(result.summary(), err=True)


def print_scores(db_path: Any) -> None:
    """The ReasonScore table of everything in the DB (stdout: it is the data a shell user wants)."""
    from reasonscape.analysis.scores import scores, scores_markdown
    from reasonscape.pointsdb import PointsDB

    with PointsDB(db_path) as db:
        table = scores(db)
    if len(table):
        click.echo(scores_markdown(table))


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
@click.option("--scores/--no-scores", default=True, show_default=True,
              help="Print the DB's ReasonScore table (markdown, stdout) when done.")
def cli(dataset: str | None, interview: str | None, db: str | None, parallel: int, offline: bool, inplace: bool,
        quiet: bool, scores: bool) -> None:
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
    if scores and result.points_total:
        print_scores(result.db)
    sys.exit(result.exit_code)


def main(args: list[str] | None = None) -> None:
    run_command(cli, args)
