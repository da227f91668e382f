"""Test-generation throughput per task on one core.

Prints tests/s for every registered task at a typical point (the task's default params unless the
config given with --config names a first grid entry for it), the ratio against the 5,000 tests/s
target, and the ratio against a floor measured in the same run: a loop that only draws the same
number of random values and formats a string (what any generator must at least do).

    python bench/generate.py [--tests 5000] [--config configs/r12.yaml] [--task NAME ...]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reasonscape.manifold import expand_points, load_config  # noqa: E402
from reasonscape.tasks.base import generate_tests  # noqa: E402
from reasonscape.tasks.registry import get_task, task_names  # noqa: E402

TARGET = 5_000


def floor_rate(n: int) -> float:
    """Tests/s of a do-nothing generator: 20 random draws and one formatted line per test."""
    rng = random.Random(1)
    t0 = time.perf_counter()
    for _ in range(n):
        vals = [rng.randint(-9, 9) for _ in range(20)]
        _ = " + ".join(map(str, vals))
    return n / (time.perf_counter() - t0)


def typical_params(name: str, config: Path | None) -> dict:
    if config is not None:
        cfg = load_config(config)
        if name in cfg.task_names and cfg.task(name).mode != "calibrate":
            pts = expand_points(cfg, tasks=[name])
            return pts[len(pts) // 2].params
    return get_task(name).Params().model_dump(mode="json")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tests", type=int, default=5000)
    ap.add_argument("--config", type=Path, default=None)
    ap.add_argument("--task", action="append")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    floor = floor_rate(args.tests)
    print(f"floor (20 draws + format per test): {floor:,.0f} tests/s on one core")
    print(f"{'task':<12} {'tests/s':>10} {'x target':>9} {'x floor':>8}  params")
    worst = None
    for name in args.task or task_names():
        task = get_task(name)
        params = typical_params(name, args.config)
        generate_tests(task, params, 1, 50)  # warm caches / lazy data loading
        t0 = time.perf_counter()
        generate_tests(task, params, 42, args.tests)
        rate = args.tests / (time.perf_counter() - t0)
        worst = rate if worst is None else min(worst, rate)
        flag = "" if rate >= TARGET else "  BELOW TARGET"
        print(f"{name:<12} {rate:>10,.0f} {rate / TARGET:>9.2f} {rate / floor:>8.3f}  {params}{flag}")
    print(f"slowest task: {worst:,.0f} tests/s ({worst / TARGET:.2f}x the {TARGET:,} target)")


if __name__ == "__main__":
    main()
