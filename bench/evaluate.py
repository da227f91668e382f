"""Benchmark: evaluate.py throughput against a naive json.loads-per-line aggregation of the same data.

    .venv/bin/python bench/evaluate.py [--tests 1000000] [--parallel 2] [--repeat 1]

Makes ~N test records of synthetic NDJSON once (8 evals x points x rounds, arithmetic questions from
the real generator, answers of a few hundred characters, shuffled lines, 5% truncations, some
multiple-choice guess chances), cached in the temp dir keyed by size. Then, in the same run:

* naive: what a researcher writes first. Stdlib `json.loads` per line, then per test: skip `error`
  tests, de-duplicate by test index, and increment per-point counters (n, correct, incorrect,
  invalid, truncated, guess sums, prompt/completion token sums) in a dict keyed by (model, template,
  sampler, base_task, canonical params). It does NOT do the forensic work evaluate does on top
  (hazard histograms, the zstd compression sample of every point's first 32 answers) nor write a DB,
  so the comparison is conservative for evaluate.
* evaluate: `evaluate.py --interview <files> --db <tmp> --quiet --no-scores --parallel P` in a subprocess doing
  all of its work (counters, de-duplication, hazard, compression sample, DuckDB write), timed
  wall-clock including interpreter start-up, with the peak RSS of its process tree (polled), of its
  largest single process, and the CPU time of all its processes (getrusage). Then a second run on the
  same DB (nothing changed: nothing to read).

Prints records/s for both, the ratios (wall-clock, and per CPU-second: the figure that does not depend
on how many cores are free, since the naive loop uses one), the peak RSS and the load average (other
processes on the machine make the wall-clock ratio smaller). `--repeat` runs both contenders again
and reports every round and the best.
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
import threading
import time
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
    """The straightforward aggregation: json.loads per line, a Python loop per test (counters only)."""
    agg: dict[tuple, dict] = {}
    n = 0
    for f in files:
        with open(f, encoding="utf-8") as fh:
            for line in fh:
                d = json.loads(line)
                key = (d["model"], d["template"], d["sampler"], d["base_task"],
                       json.dumps({k: v for k, v in d["params"].items() if k != "count"}, sort_keys=True))
                a = agg.get(key)
                if a is None:
                    a = agg[key] = {"seen": set(), "errored": set(), "n": 0, "correct": 0, "incorrect": 0,
                                    "invalid": 0, "truncated": 0, "guess": 0.0, "guess_truncated": 0.0,
                                    "prompt_tokens": 0, "completion_tokens": 0}
                for t in d["tests"]:
                    n += 1
                    i = t["index"]
                    if t["status"] == "error":
                        a["errored"].add(i)
                        continue
                    if i in a["seen"]:
                        continue
                    a["seen"].add(i)
                    a["n"] += 1
                    if t["truncated"]:
                        a["truncated"] += 1
                        a["guess_truncated"] += t["guess_chance"]
                    else:
                        a[t["status"] if t["status"] in ("correct", "incorrect") else "invalid"] += 1
                        a["guess"] += t["guess_chance"]
                    a["prompt_tokens"] += t["prompt_tokens"]
                    a["completion_tokens"] += t["completion_tokens"]
    return n


def run_evaluate(files: list[Path], db: Path, parallel: int) -> tuple[float, float, float, float, str]:
    """(wall s, peak tree RSS, largest process RSS, CPU s of the whole tree, summary line)."""
    import psutil

    before = resource.getrusage(resource.RUSAGE_CHILDREN)

    cmd = [sys.executable, str(ROOT / "evaluate.py"), "--interview", ",".join(map(str, files)), "--db", str(db),
           "--quiet", "--no-scores", "--parallel", str(parallel)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]
    done = threading.Event()

    def poll_rss() -> None:  # light: the process list is refreshed every 8th poll only
        root, kids, polls = psutil.Process(proc.pid), [], 0
        while not done.wait(0.025):
            try:
                if polls % 8 == 0:
                    kids = root.children(recursive=True)
                polls += 1
                rss = root.memory_info().rss
            except psutil.Error:
                continue
            for k in kids:
                try:
                    rss += k.memory_info().rss
                except psutil.Error:
                    pass
            peak[0] = max(peak[0], rss)

    poller = threading.Thread(target=poll_rss, daemon=True)
    poller.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    done.set()
    poller.join()
    if proc.returncode != 0:
        raise SystemExit(f"evaluate failed ({proc.returncode}): {err.strip()}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return wall, peak[0], after.ru_maxrss * 1024, cpu, (out + err).strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tests", type=int, default=1_000_000)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1, help="rounds of naive + evaluate (reports each and the best)")
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
    print(f"cpus: {os.cpu_count()}, load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rounds = []
    for r in range(max(1, args.repeat)):
        t0, c0 = time.perf_counter(), time.process_time()
        n = naive(files)
        t_naive, c_naive = time.perf_counter() - t0, time.process_time() - c0
        with tempfile.TemporaryDirectory() as tmp:
            wall, peak, single, cpu, summary = run_evaluate(files, Path(tmp) / "bench.db", args.parallel)
            wall2, _, _, _, _ = run_evaluate(files, Path(tmp) / "bench.db", args.parallel)
        rounds.append((t_naive / wall, c_naive / cpu))
        print(f"-- round {r + 1}")
        print(f"naive json.loads loop : {n / t_naive:12,.0f} tests/s ({n} tests, {t_naive:.2f}s wall, "
              f"{n / c_naive:,.0f} tests per CPU-second, 1 process; counters + de-dup only)")
        print(f"evaluate.py           : {n / wall:12,.0f} tests/s ({wall:.2f}s wall incl. start-up, --parallel "
              f"{args.parallel}, {n / cpu:,.0f} tests per CPU-second over all its processes ({cpu:.2f} CPU-s); "
              "counters + de-dup + hazard + compression sample + DB)")
        print(f"ratio                 : {t_naive / wall:.2f}x wall-clock, {c_naive / cpu:.2f}x per CPU-second")
        print(f"peak RSS              : {peak / 2**20:.0f} MiB process tree, {single / 2**20:.0f} MiB largest process")
        print(f"second run (no change): {wall2:.2f}s wall")
        print(f"evaluate summary      : {summary}")
        print(f"load average after    : {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if len(rounds) > 1:
        print(f"best of {len(rounds)}: {max(w for w, _ in rounds):.2f}x wall-clock, "
              f"{max(c for _, c in rounds):.2f}x per CPU-second")


if __name__ == "__main__":
    main()
