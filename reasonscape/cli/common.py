"""What every CLI shares: turning library errors into one line and an exit code."""

from __future__ import annotations

import sys

import click

from reasonscape.errors import ReasonScapeError


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
