"""Benchmark: evaluate.py throughput against a naive json.loads-per-line aggregation of the same data.

    .venv/bin/python bench/evaluate.py [--tests 1000000] [--parallel 2]

Makes ~N test records of synthetic NDJSON once (8 evals x points x rounds, arithmetic questions from
the real generator, answers of a few hundred characters, shuffled lines, 5% truncations, some
multiple-choice guess chances), cached in the temp dir keyed by size. Then, in the same run:

* naive: `json.loads` per line and a plain Python loop computing the same per-point aggregates as
  evaluate (counters, guess masses, token sums, hazard buckets, de-duplication by test index and the
  compression sample of test indices < 32);
* evaluate: `evaluate.py --interview <files> --db <tmp> --quiet --parallel P` in a subprocess, timed
  wall-clock including interpreter start-up, with the peak RSS of its process tree (polled), of its
  largest single process, and the CPU time of all its processes (getrusage).

Prints records/s for both, the ratios (wall-clock, and per CPU-second: the figure that does not depend
on how many cores are free), and the peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODELS = [f"bench-model-{i}" for i in range(8)]
TASKS = ("arithmetic", "boolean", "objects")
ROUND = 100
WORDS = ("we need to compute the expression carefully step by step first multiply then add subtract so the "
         "result is wait let me double check this term again because the sign matters here okay").split()


def make_data(n_tests: int, out: Path) -> list[Path]:
    """Write the synthetic result folders (once; a `done` marker makes it reusable)."""
    from reasonscape.records import StepRecord, StepWriter, TestResult
    from reasonscape.tasks.base import generate_tests
    from reasonscape.tasks.registry import get_task

    files = [out / f"2025-01-01_00-00-0{i}_bench_{m}_zeroshot_greedy" / "result-steps.ndjson"
             for i, m in enumerate(MODELS)]
    if (out / "done").exists():
        return files
    rng = random.Random(1234)
    task = get_task("arithmetic")
    per_eval = n_tests // len(MODELS)
    tests_per_point = 5 * ROUND
    n_points = max(1, per_eval // tests_per_point)
    points = []
    for k in range(n_points):
        base_task = TASKS[k % len(TASKS)]
        params = {"length": 3 + k % 24, "max_depth": (k // 24) % 4, "prob_dewhitespace": round(0.1 * (k % 7), 1),
                  "variant": k // 96}
        gen = {kk: v for kk, v in params.items() if kk != "variant"}
        questions = [c for c in generate_tests(task, gen, 0, tests_per_point)]
        guess = {"arithmetic": 0.0, "boolean": 0.5, "objects": 1 / 12}[base_task]
        points.append((base_task, params, questions, guess, rng.uniform(0.2, 0.95)))
    bodies = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 90))) for _ in range(3000)]
    for model, path in zip(MODELS, files, strict=True):
        lines = []
        for base_task, params, questions, guess, skill in points:
            for r in range(tests_per_point // ROUND):
                tests = []
                for i in range(r * ROUND, (r + 1) * ROUND):
                    q = questions[i]
                    trunc = rng.random() < 0.05
                    ok = rng.random() < skill
                    ans = q.reference if ok else str(int(q.reference) + rng.randint(1, 9))
                    text = rng.choice(bodies) + ("" if trunc else f"\n<answer>{ans}</answer>")
                    status = "invalid" if trunc else ("correct" if ok else ("incorrect" if rng.random() < 0.9 else "invalid"))
                    tests.append(TestResult(index=i, question=q.question, reference=q.reference, answer=text,
                                            extracted=None if status == "invalid" else ans, status=status,
                                            truncated=trunc, prompt_tokens=80 + len(q.question) // 3,
                                            completion_tokens=4096 if trunc else rng.randint(60, 3500),
                                            guess_chance=guess, latency_s=round(rng.uniform(0.5, 9), 3),
                                            cache_key=f"{rng.getrandbits(256):064x}", meta=q.meta))
                lines.append(StepRecord(model=model, template="zeroshot", sampler="greedy", base_task=base_task,
                                        params=params, manifold={"id": "grid", "target_tokens": None}, seed=0,
                                        tests=tests))
        rng.shuffle(lines)
        path.parent.mkdir(parents=True, exist_ok=True)
        with StepWriter(path, fsync=False) as w:
            for rec in lines:
                w.write(rec)
        (path.parent / "metadata.json").write_text(json.dumps({"model": model}))
    (out / "done").write_text("ok")
    return files


def naive(files: list[Path]) -> int:
    """The straightforward aggregation: json.loads per line, a Python loop per test."""
    import zlib

    agg: dict[tuple, dict] = {}
    n = 0
    for f in files:
        with open(f) as fh:
            for line in fh:
                d = json.loads(line)
                key = (d["model"], d["template"], d["sampler"], d["base_task"],
                       json.dumps({k: v for k, v in d["params"].items() if k != "count"}, sort_keys=True))
                a = agg.get(key)
                if a is None:
                    a = agg[key] = {"seen": set(), "counts": [0] * 4, "errors": 0, "g": 0.0, "gt": 0.0, "ptok": 0,
                                    "ctok": [0] * 4, "hazard": defaultdict(int), "comp": {}}
                for t in d["tests"]:
                    n += 1
                    if t["status"] == "error":
                        a["errors"] += 1
                        continue
                    if t["index"] in a["seen"]:
                        continue
                    a["seen"].add(t["index"])
                    o = 3 if t["truncated"] else {"correct": 0, "incorrect": 1}.get(t["status"], 2)
                    a["counts"][o] += 1
                    if t["truncated"]:
                        a["gt"] += t["guess_chance"]
                    else:
                        a["g"] += t["guess_chance"]
                    a["ptok"] += t["prompt_tokens"]
                    a["ctok"][o] += t["completion_tokens"]
                    a["hazard"][(o, t["completion_tokens"] // 256)] += 1
                    if t["index"] < 32:
                        raw = t["answer"].encode()
                        a["comp"][t["index"]] = (o, len(raw), len(zlib.compress(raw)))
    return n


def run_evaluate(files: list[Path], db: Path, parallel: int) -> tuple[float, float, float, float, str]:
    """(wall s, peak tree RSS, largest process RSS, CPU s of the whole tree, summary line)."""
    import psutil

    before = resource.getrusage(resource.RUSAGE_CHILDREN)

    cmd = [sys.executable, str(ROOT / "evaluate.py"), "--interview", ",".join(map(str, files)), "--db", str(db),
           "--quiet", "--parallel", str(parallel)]
    t0 = time.perf_counter()
    proc = psutil.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    while proc.poll() is None:
        try:
            rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"evaluate failed ({proc.returncode}): {err.strip()}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return wall, peak, after.ru_maxrss * 1024, cpu, (out + err).strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tests", type=int, default=1_000_000)
    ap.add_argument("--parallel", type=int, default=2)
    args = ap.parse_args()
    cache = Path(tempfile.gettempdir()) / f"reasonscape-bench-evaluate-{args.tests}"
    t0 = time.perf_counter()
    files = make_data(args.tests, cache)
    size = sum(f.stat().st_size for f in files)
    print(f"input: {len(files)} files, {size / 1e6:.0f} MB in {cache} (ready in {time.perf_counter() - t0:.1f}s)")
    for f in files:  # warm the page cache for both contenders alike
        with open(f, "rb") as fh:
            while fh.read(1 << 24):
                pass
    t0, c0 = time.perf_counter(), time.process_time()
    n = naive(files)
    t_naive, c_naive = time.perf_counter() - t0, time.process_time() - c0
    with tempfile.TemporaryDirectory() as tmp:
        wall, peak, single, cpu, summary = run_evaluate(files, Path(tmp) / "bench.db", args.parallel)
        wall2, _, _, _, _ = run_evaluate(files, Path(tmp) / "bench.db", args.parallel)
    print(f"naive json.loads loop : {n / t_naive:12,.0f} tests/s ({n} tests, {t_naive:.2f}s wall, "
          f"{n / c_naive:,.0f} tests per CPU-second, 1 process)")
    print(f"evaluate.py           : {n / wall:12,.0f} tests/s ({wall:.2f}s wall incl. start-up, --parallel "
          f"{args.parallel}, {n / cpu:,.0f} tests per CPU-second over all its processes)")
    print(f"ratio                 : {t_naive / wall:.2f}x wall-clock, {c_naive / cpu:.2f}x per CPU-second")
    print(f"peak RSS              : {peak / 2**20:.0f} MiB process tree, {single / 2**20:.0f} MiB largest process")
    print(f"second run (no change): {wall2:.2f}s wall")
    print(f"evaluate summary      : {summary}")
    print(f"cpus                  : {os.cpu_count()}")


if __name__ == "__main__":
    main()
