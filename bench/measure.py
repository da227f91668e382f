"""What the benchmarks that time a script end to end share: one timed subprocess, and the best of N.

Wall time includes process start (what a shell user waits for); peak RSS comes from the child's rusage.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(script: str, args: list[str], cwd: Path | None = None,
          env: dict[str, str] | None = None) -> tuple[float, int, int, str]:
    """(wall seconds, peak RSS bytes, exit code, stderr tail) of `python <script> <args>`."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(ROOT / script), *args], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ, **(env or {})})
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    return wall, usage.ru_maxrss * 1024, os.waitstatus_to_exitcode(status), err.strip()[-300:]


def runs_of(script: str, args: list[str], repeat: int, cwd: Path | None = None,
            env: dict[str, str] | None = None) -> tuple[list[float], int, str | None]:
    """(wall seconds of each run, peak RSS over them, None) — or the failure as
    "exit N: stderr tail" in place of None, with the runs before it."""
    runs, rss = [], 0
    for _ in range(repeat):
        wall, peak, code, err = timed(script, args, cwd, env)
        if code != 0:
            return runs, rss, f"exit {code}: {err}"
        runs.append(wall)
        rss = max(rss, peak)
    return runs, rss, None
