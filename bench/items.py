"""Item-task throughput: loading a 100k-item JSONL and drawing its tests through the task API.

Generates a synthetic GSM8K-format file (reasonscape.items.gsm8k_synth) in a temporary folder, binds
an `items:` task to it through a real config (load_config: read, validate, evaluate the difficulty
expression, index by bucket), then draws every item of every bucket with `generate_tests` (the
runner's PointTests sequence: seeded, without replacement). Prints the load time, the draw rate and
the end-to-end rate (load + draw) against the 50,000 tests/s target, the ratio against a native task
(arithmetic) measured in the same run, and the generation rate of `gym:gsm_symbolic` beside it (skipped
with a note when reasoning-gym or the gym family is not available).

    python bench/items.py [--items 100000] [--native-tests 20000] [--gym-tests 200]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reasonscape.items import gsm8k_synth  # noqa: E402
from reasonscape.manifold import load_config  # noqa: E402
from reasonscape.tasks.base import generate_tests  # noqa: E402
from reasonscape.tasks.registry import get_task  # noqa: E402

TARGET = 50_000
CONFIG = """name: bench-items
precision: {all: {count: 100, maxrounds: 1000}}
tasks:
  - name: items:bench
    source:
      path: items.jsonl
      id: id
      answer_pattern: '####\\s*(.+?)\\s*$'
      answer_type: number
      difficulty: 'count(answer, "<<[^>]*>>")'
      buckets: {"2": [1, 2], "3": [3, 3], "4": [4, 4], "5+": [5, null]}
    grids: {steps: {bucket: ["2", "3", "4", "5+"]}}
"""


def rate_of(task_name: str, params: dict, n: int) -> tuple[float, int]:
    task = get_task(task_name)
    generate_tests(task, params, 1, min(20, n))  # warm lazy data / imports
    t0 = time.perf_counter()
    made = len(generate_tests(task, params, 42, n))
    return made / (time.perf_counter() - t0), made


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--native-tests", type=int, default=20_000)
    ap.add_argument("--gym-tests", type=int, default=200)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        size = gsm8k_synth.write(folder / "items.jsonl", args.items, 1)
        print(f"generated {args.items:,} items ({size / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f}s (not timed below)")
        (folder / "bench.yaml").write_text(CONFIG)
        t0 = time.perf_counter()
        load_config(folder / "bench.yaml")
        load_s = time.perf_counter() - t0
        task = get_task("items:bench")
        counts = task.items.counts()
        t0 = time.perf_counter()
        drawn = sum(len(generate_tests(task, {"bucket": b}, 42, n + 1)) for b, n in counts.items())
        draw_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        load_config(folder / "bench.yaml")
        reload_s = time.perf_counter() - t0
    assert drawn == sum(counts.values())
    draw_rate = drawn / draw_s
    e2e = drawn / (load_s + draw_s)
    print(f"load + validate + index: {load_s:.2f}s ({args.items / load_s:,.0f} items/s); buckets {counts}; "
          f"config reload (cached): {reload_s * 1000:.0f} ms")
    print(f"draw (every item of every bucket): {draw_rate:,.0f} tests/s ({draw_rate / TARGET:.2f}x the "
          f"{TARGET:,} target)")
    print(f"end to end (load + draw {drawn:,}): {e2e:,.0f} tests/s ({e2e / TARGET:.2f}x target)")
    native, _ = rate_of("arithmetic", {}, args.native_tests)
    print(f"native arithmetic (default params): {native:,.0f} tests/s; items draw / native = {draw_rate / native:.2f}x")
    t0 = time.perf_counter()
    try:
        gym = get_task("gym:gsm_symbolic")
        params = gym.Params().model_dump(mode="json")
    except Exception as exc:  # the gym family or reasoning-gym not installed here
        print(f"gym:gsm_symbolic: skipped ({type(exc).__name__}: {str(exc)[:120]})")
        return
    gym_rate, made = rate_of("gym:gsm_symbolic", params, args.gym_tests)
    print(f"gym:gsm_symbolic (default params, {made} tests, first use {time.perf_counter() - t0:.1f}s incl. import): "
          f"{gym_rate:,.0f} tests/s; native / gym = {native / gym_rate:.1f}x, items / gym = {draw_rate / gym_rate:.0f}x")


if __name__ == "__main__":
    main()
