"""Typed errors that the CLI edge turns into one line and an exit code.

Library code raises these; only `reasonscape.cli` prints them. Bad input (a file, field or value the
user can fix) exits 2; a failure while doing the work (a dead endpoint, a full disk) exits 1.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
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


def shorten(text: str, limit: int = 40) -> str:
    """`text` cut to `limit` characters ("..." marking the cut): how a value a user gave is echoed in a
    one-line error, so a 5,000-character value does not become the message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def shown(value: object, limit: int = 40) -> str:
    """`repr(value)`, shortened as `shorten` does."""
    return shorten(repr(value), limit)


def file_not_found(path: Path, what: str, cutoff: float = 0.6) -> ConfigError:
    """`<path>: <what> file not found`, suggesting files of the same folder with close names."""
    hint = ""
    if path.parent.exists():
        close = difflib.get_close_matches(path.name, [p.name for p in path.parent.iterdir()], n=3, cutoff=cutoff)
        if close:
            hint = f" (did you mean {', '.join(str(path.parent / c) for c in close)}?)"
    return ConfigError(f"{path}: {what} file not found{hint}")


def close_matches_hint(word: str, options: Iterable[str], n: int = 3, cutoff: float = 0.6) -> str:
    """`; did you mean a, b?` naming the options close to `word` ("" when none is close)."""
    close = difflib.get_close_matches(str(word), list(options), n=n, cutoff=cutoff)
    return f"; did you mean {', '.join(close)}?" if close else ""


#: Largest config/template/sampler file read: bounds what a wrong path (a device, a dump) can cost.
MAX_INPUT_FILE_BYTES = 16 * 1024 * 1024


def read_input_text(path: Path, what: str, cutoff: float = 0.6, max_bytes: int = MAX_INPUT_FILE_BYTES) -> str:
    """The text of an input file (config, template, sampler), or one ConfigError naming it.

    Why one place: missing, unreadable, a directory, endless (/dev/zero), not UTF-8 and empty are the
    same kind of mistake for every input file, and each must be one line naming the file.
    """
    path = Path(path)
    if not path.exists():
        raise file_not_found(path, what, cutoff=cutoff)
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what} file ({exc.strerror or type(exc).__name__})") from None
    if len(data) > max_bytes:
        raise ConfigError(f"{path}: {what} file is larger than {max_bytes // (1024 * 1024)} MiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: {what} file is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
                          f"{exc.start})") from None
    if not text.strip():
        raise ConfigError(f"{path}: {what} file is empty")
    return text
