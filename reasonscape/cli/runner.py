"""runner.py: run an experiment config against an OpenAI-compatible endpoint, a batch engine or the sim.

Argument parsing and error reporting only; the work is `reasonscape.runner.run_experiment`. stdout
carries one line, the result folder (or batch file) path, so shell scripts can capture it; progress,
notes and errors go to stderr.
"""

from __future__ import annotations

import sys

import click

from reasonscape.cli.common import run_command


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--config", required=True, type=click.Path(dir_okay=False), help="YAML experiment configuration.")
@click.option("--template", required=True, type=click.Path(dir_okay=False), help="Prompt template JSON.")
@click.option("--sampler", required=True, type=click.Path(dir_okay=False), help="Generation parameters JSON.")
@click.option("--model", required=True, help="Model identifier (sent as `model`; part of the eval identity).")
@click.option("--mode", type=click.Choice(["api", "write-batch", "read-batch"]), default="api", show_default=True,
              help="api: live endpoint; write-batch: requests NDJSON for vllm run-batch; read-batch: import "
                   "its output.")
@click.option("--apibase", help="API base URL, with or without /v1 (required in api mode); sim://?ability=1.2 "
                                "runs the simulated model.")
@click.option("--apikey", envvar="OPENAI_API_KEY", show_envvar=False,
              help="API key sent as a bearer token (default: $OPENAI_API_KEY); never written anywhere.")
@click.option("--batch", type=click.Path(dir_okay=False), help="vLLM run-batch output file (read-batch mode).")
@click.option("--precision", help="Precision level from the config  [default: first defined]")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=42, show_default=True,
              help="Global seed of test generation (0 .. 2**63-1).")
@click.option("--parallel", type=click.IntRange(1, 4096), default=16, show_default=True,
              help="Concurrent requests (api mode; 1..4096).")
@click.option("--timeout", type=float, default=3600.0, show_default=True,
              help="Per-request timeout in seconds (api mode; finite, > 0, at most a week).")
@click.option("--cache", default="cache/", show_default=True,
              help="Response cache: a directory (holds responses.sqlite) or a .sqlite file.")
@click.option("--task", "tasks", multiple=True, help="Only these tasks (repeatable)  [default: all]")
@click.option("--output", default="results/", show_default=True, help="Output base directory.")
@click.option("--no-shuffle", is_flag=True, help="Run point-rounds in config order instead of a seeded shuffle.")
@click.option("--quiet", is_flag=True, help="No progress bar (the final summary line stays).")
@click.option("--tokenizer", help="Tokenizer (local path or cached HF id) for calibrated tasks and --plan counts.")
@click.option("--retries", type=click.IntRange(0, 100), default=6, show_default=True,
              help="Retries of a request on connection errors, timeouts, 429 and 5xx before the run stops.")
@click.option("--plan", "plan_only", is_flag=True,
              help="Dry run: print points, tests, requests after cache hits and token estimates.")
@click.option("--estimate", type=click.IntRange(1, 100_000), help="With --plan: send N real requests first and "
                                                              "project the wall time.")
def command(config, template, sampler, model, mode, apibase, apikey, batch, precision, seed, parallel, timeout,
            cache, tasks, output, no_shuffle, quiet, tokenizer, retries, plan_only, estimate):
    """Generate prompts for an experiment config and run them against a model.

    \b
    python runner.py --config configs/r12.yaml --template templates/zeroshot-nosys.json \\
        --sampler samplers/greedy-max.json --model your-model --apibase http://localhost:3333
    """
    from reasonscape.errors import InputError
    from reasonscape.runner.run import RunOptions, plan_experiment, run_experiment, scrubber_for

    if estimate and not plan_only:
        raise InputError("--estimate goes with --plan")
    opts = RunOptions(config=config, template=template, sampler=sampler, model=model, mode=mode, apibase=apibase,
                      apikey=apikey or None, batch=batch, precision=precision, seed=seed, parallel=parallel,
                      timeout=timeout, cache=cache, tasks=tuple(tasks), output=output, shuffle=not no_shuffle,
                      quiet=quiet, tokenizer=tokenizer, retries=retries)
    redact = scrubber_for(opts).scrub
    try:
        if plan_only:
            report = plan_experiment(opts, estimate=estimate or 0)
            click.echo("\n".join(report.lines()))
            return
        result = run_experiment(opts)
    except Exception as exc:  # never let a key reach the terminal through an error message
        exc.args = tuple(redact(a) if isinstance(a, str) else a for a in exc.args)
        raise
    click.echo(redact(result.message), err=True)
    click.echo(str(result.path))


def main(args: list[str] | None = None) -> None:
    run_command(command, args)


if __name__ == "__main__":  # pragma: no cover
    main()
    sys.exit(0)
