"""cohort.py: list, inspect, verify cohorts and make context-limited variants (parsing and reporting only)."""

from __future__ import annotations

import sys

import click

from reasonscape.cli.common import run_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Postprocess cohorts: list, info, verify, context."""


@cli.command("list")
@click.argument("path", required=False)
@click.option("--search", help="Regex on cohort name, label or model (case-insensitive).")
def list_cmd(path: str | None, search: str | None) -> None:
    """List the evals of every cohort under PATH (default data/; globs allowed) as a markdown table."""
    from reasonscape import cohort

    click.echo(cohort.markdown_table(cohort.list_evals(path, search)))


@cli.command("info")
@click.argument("cohort_path", metavar="COHORT")
def info_cmd(cohort_path: str) -> None:
    """One cohort's evals with their result folders, point/test counts, size, and presence."""
    from reasonscape import cohort

    click.echo(cohort.markdown_table(cohort.cohort_info(cohort_path)))


@cli.command("verify")
@click.argument("path", required=False)
def verify_cmd(path: str | None) -> None:
    """Check evals.json globs against result folders: missing, extra, ambiguous (exit 1 on problems)."""
    from reasonscape import cohort

    rep = cohort.verify(path)
    for line in rep.lines():
        click.echo(line)
    sys.exit(0 if rep.ok else 1)


@cli.command("context")
@click.argument("cohort_path", metavar="COHORT")
@click.option("--eval-id", required=True, help="Eval to derive the variant from.")
@click.option("--context", "limit", type=int, required=True, help="Token limit for completions.")
@click.option("--tokenizer", help="Cut by this tokenizer (HF id or tokenizer.json) instead of by characters.")
@click.option("--include-prompt", is_flag=True, help="The limit covers prompt + completion (a context window).")
@click.option("--no-register", is_flag=True, help="Do not append the variant to evals.json.")
def context_cmd(cohort_path: str, eval_id: str, limit: int, tokenizer: str | None, include_prompt: bool,
                no_register: bool) -> None:
    """Create a context-limited variant of an eval in a new timestamped folder (non-destructive)."""
    from reasonscape import cohort

    res = cohort.make_context_variant(cohort_path, eval_id, limit, tokenizer=tokenizer,
                                      include_prompt=include_prompt, register=not no_register)
    for w in res.warnings:
        click.echo(f"warning: {w}", err=True)
    click.echo(f"{res.folder}: {res.lines} lines, {res.tests} tests, {res.cut} cut to {limit} tokens; "
               f"sampler {res.sampler}" + ("; added to evals.json" if res.registered else ""))
    click.echo("rebuild the database: python evaluate.py --dataset data/<name>.json")


def main(args: list[str] | None = None) -> None:
    run_command(cli, args)
