"""What every CLI shares: turning library errors into one line and an exit code."""

from __future__ import annotations

import re
import sys

import click

from reasonscape.errors import ReasonScapeError

#: Longest error line shown; longer ones (a 5,000-character value echoed back) keep both ends.
MAX_ERROR_CHARS = 400
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def one_line(message: str, limit: int = MAX_ERROR_CHARS) -> str:
    """A message as one printable line: control characters escaped (a value with a newline stays on
    its line), undecodable characters shown as escapes, the middle of an over-long line elided."""
    text = _CONTROL.sub(lambda m: repr(m.group())[1:-1], message)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) > limit:
        keep = limit // 2 - 3
        text = f"{text[:keep]} ... {text[-keep:]}"
    return text


def _check_argv(args: list[str]) -> None:
    """Arguments must be text we can write: a NUL byte (possible only from Python, never from a shell)
    or bytes that are not UTF-8 (a shell can pass them; they would fail later, when written to JSON or
    a terminal) are bad input, reported before anything runs."""
    for a in args:
        if "\x00" in a:
            raise click.UsageError(f"argument {one_line(a, 80)!r} contains a NUL byte")
        try:
            a.encode("utf-8")
        except UnicodeEncodeError:
            raise click.UsageError(f"argument {one_line(a, 80)!r} is not valid UTF-8") from None


def run_command(command: click.Command, args: list[str] | None = None) -> None:
    """Run a click command so that every failure is one `error: ...` line on stderr and an exit code
    (2 for bad input and usage, 1 for runtime failures), never a traceback."""
    try:
        _check_argv(sys.argv[1:] if args is None else args)
        command.main(args=args, standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        sys.exit(1)
    except click.UsageError as exc:
        click.echo(f"error: {one_line(exc.format_message())}", err=True)
        sys.exit(2)
    except ReasonScapeError as exc:
        click.echo(f"error: {one_line(str(exc)) if str(exc) else type(exc).__name__}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        sys.exit(130)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        click.echo(f"error: {one_line(f'{where}{exc.strerror or exc}')}", err=True)
        sys.exit(1)
