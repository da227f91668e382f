"""What every CLI shares: turning library errors into one line and an exit code."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from reasonscape.errors import ReasonScapeError


def run_cli(command: Callable[..., Any], *, prog_name: str) -> None:
    """Run a click command; a ReasonScapeError becomes `error: <msg>` on stderr and its exit code."""
    try:
        command.main(prog_name=prog_name, standalone_mode=True)
    except ReasonScapeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


def report_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator for click callbacks: ReasonScapeError -> one line on stderr + exit code, no traceback."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ReasonScapeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(exc.exit_code)

    return wrapper
