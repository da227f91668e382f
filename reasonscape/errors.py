"""Typed errors that the CLI edge turns into one line and an exit code.

Library code raises these; only `reasonscape.cli` prints them. Bad input (a file, field or value the
user can fix) exits 2; a failure while doing the work (a dead endpoint, a full disk) exits 1.
"""

from __future__ import annotations

import difflib
from pathlib import Path


class ReasonScapeError(Exception):
    """Base class: `str(err)` is the one line shown to the user."""

    exit_code = 1


class InputError(ReasonScapeError):
    """The user gave us something we cannot use: name the file, the field and the value."""

    exit_code = 2


class ConfigError(InputError):
    """A config, template, sampler or dataset file is malformed."""


class RuntimeFailure(ReasonScapeError):
    """The work could not be completed (endpoint refused, I/O failure)."""

    exit_code = 1


class NotBuiltYet(ReasonScapeError):
    """A stage whose implementation has not landed yet."""

    exit_code = 1


def file_not_found(path: Path, what: str, cutoff: float = 0.6) -> ConfigError:
    """`<path>: <what> file not found`, suggesting files of the same folder with close names."""
    hint = ""
    if path.parent.exists():
        close = difflib.get_close_matches(path.name, [p.name for p in path.parent.iterdir()], n=3, cutoff=cutoff)
        if close:
            hint = f" (did you mean {', '.join(str(path.parent / c) for c in close)}?)"
    return ConfigError(f"{path}: {what} file not found{hint}")
