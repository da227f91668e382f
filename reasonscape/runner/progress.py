"""Counters of a run and the progress bar that shows them on stderr (tqdm; `--quiet` turns it off)."""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass


@dataclass(slots=True)
class Counts:
    """What one session of a run did (metadata.json sums them over sessions)."""

    tests: int = 0
    cache_hits: int = 0
    requests: int = 0
    retries: int = 0
    truncations: int = 0
    errors: int = 0
    rounds: int = 0
    #: Tests whose answer is not available yet (batch modes: requested in a batch, or missing from one).
    pending: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class Progress:
    """tqdm bar on stderr: tests done / planned, rate, ETA, and hits, retries, truncations, errors."""

    def __init__(self, total: int, *, initial: int = 0, quiet: bool = False, desc: str = "tests"):
        self.quiet = quiet
        self._bar = None
        self._last = 0.0
        self._unshown = 0
        if not quiet:
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=initial, unit="test", desc=desc, file=sys.stderr,
                             mininterval=0.5, smoothing=0.05, dynamic_ncols=True, leave=False)

    def grow(self, n: int) -> None:
        """More tests planned (a point needs another round)."""
        if self._bar is not None:
            self._bar.total += n

    def advance(self, n: int, counts: Counts, retries: int) -> None:
        if self._bar is None:
            return
        self._unshown += n
        now = time.monotonic()
        if now - self._last >= 0.5:
            self._last = now
            self._bar.set_postfix_str(f"hits={counts.cache_hits} retries={retries} "
                                      f"trunc={counts.truncations} err={counts.errors}", refresh=False)
            self._bar.update(self._unshown)
            self._unshown = 0

    def close(self) -> None:
        if self._bar is not None:
            self._bar.update(self._unshown)
            self._unshown = 0
            self._bar.close()
            self._bar = None
