"""Entry point of scripts whose stage has not been built yet: one line, non-zero exit, no traceback."""

from __future__ import annotations

import sys

STAGES = {
    "analyze": "Stage 4 (analysis verbs over PointsDB)",
    "probe": "Stage 5 (raw-trace forensics)",
    "data": "data sharing (content-addressed blobs)",
    "leaderboard": "the leaderboard web app",
    "explorer": "the explorer web app",
    "spiderweb": "the spiderweb web app",
}


def main(script: str) -> None:
    args = sys.argv[1:]
    stage = STAGES.get(script, script)
    if args in (["--help"], ["-h"]):
        print(f"usage: python {script}.py ...\n\n{script}.py belongs to {stage}, which is not built yet.")
        return
    print(f"error: {script}.py: {stage} is not built yet in this version of ReasonScape", file=sys.stderr)
    sys.exit(1)
