"""Benchmark: analyze.py verbs end to end on a synthetic PointsDB of about a million points.

    .venv/bin/python bench/analyze.py [--evals 100] [--tasks 12] [--points 800] [--repeat 3]

Builds (once, cached in the temp dir keyed by size) a PointsDB of evals x tasks x points with DuckDB
SQL alone: real schema (reasonscape.pointsdb), params JSON of two axes per task, counters drawn so
that each eval has an ability and each point a difficulty (binomial-ish correct counts, 1% truncation,
a guess chance on a third of the tasks). Then runs each verb as `python analyze.py <verb> <db>` in a
subprocess, timed wall-clock including interpreter start-up, with the peak RSS of that process
(os.wait4). Also times `analyze.py scores <demo dataset>` on the shipped demo data (its DB is built
in a temp dir from data/demo, never in data/). Prints every run and the best; targets: each verb
<= 2 s and <= 2 GiB, scores on the demo <= 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from measure import runs_of

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
VERBS = [["scores"], ["cluster"], ["rank"], ["pairwise"], ["aggregate", "--compare-modes"],
         ["scores", "--format", "png", "--output-dir", "{tmp}"], ["pairwise", "--format", "json"],
         ["tokens"], ["evals"], ["compare", "{a}", "{b}"]]
TARGET_S, TARGET_RSS = 2.0, 2 * 2**30


def build(db: Path, evals: int, tasks: int, points: int) -> None:
    """Synthetic PointsDB: every row of the real schema, counters from a logistic ability model."""
    sys.path.insert(0, str(ROOT))
    from reasonscape.pointsdb import PointsDB

    tmp = db.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    with PointsDB(tmp, read_only=False) as p:
        con = p.con
        con.execute("SELECT setseed(0.42)")
        con.execute("""
            INSERT INTO evals
            SELECT printf('%06x', e * 40503 % 16777216), 'model-' || e, 'zerocot-nosys', 'greedy-4k',
                   'Model ' || e, ['size:' || (CASE WHEN e % 2 = 0 THEN 'small' ELSE 'large' END)],
                   json_object('size', CASE WHEN e % 2 = 0 THEN 'small' ELSE 'large' END), [], NULL
            FROM range(?) t(e)""", [evals])
        side = int(points ** 0.5) + 1
        con.execute(f"""
            INSERT INTO points
            WITH grid AS (
                SELECT e, t, i, (i // {side}) AS a, (i % {side}) AS b,
                       -1.5 + 3.0 * e / {evals} AS ability,
                       (i // {side}) / {side}::DOUBLE + (i % {side}) / {side}::DOUBLE - 1.0 AS diff,
                       CASE WHEN t % 3 = 0 THEN 0.25 ELSE 0.0 END AS gc,
                       32 + 32 * (i % 4) AS n
                FROM range(?) e(e), range(?) t(t), range(?) i(i)),
            drawn AS (
                SELECT *, 1 / (1 + exp(-4 * (ability - diff))) AS p,
                       CAST(round(n * 0.01 * random()) AS INTEGER) AS trunc FROM grid),
            counted AS (
                SELECT *, LEAST(n - trunc, GREATEST(0, CAST(round((n - trunc) * (gc + (1 - gc) * p)
                           + sqrt(n * p * (1 - p) + 0.01) * (random() + random() + random() - 1.5) * 2) AS INTEGER)))
                           AS c FROM drawn)
            SELECT printf('%016x', row_number() OVER () - 1), printf('%06x', e * 40503 % 16777216), 'model-' || e,
                   'zerocot-nosys',
                   'greedy-4k', 'task' || lpad(t::VARCHAR, 2, '0'),
                   json_object('length', 4 * (a + 1), 'depth', b), json_object('id', 'grid', 'target_tokens', NULL),
                   json_object('size', CASE WHEN e % 2 = 0 THEN 'small' ELSE 'large' END),
                   ['size:' || (CASE WHEN e % 2 = 0 THEN 'small' ELSE 'large' END)],
                   n, c, n - trunc - c - (n - trunc - c) // 10, (n - trunc - c) // 10, trunc, 0, 0,
                   (n - trunc) * gc, trunc * gc, n * 120, n * (300 + 400 * diff + 200),
                   c * 450, (n - trunc - c) * 600, 0, trunc * 4096,
                   256, [], [], [], [], [], [], [], [], []
            FROM counted""", [evals, tasks, points])
        # Which test indexes were counted / correct (compare's paired input): the first n resp. c bits.
        con.execute("""
            INSERT INTO point_tests
            SELECT id, unhex(repeat('ff', n // 8) || CASE WHEN n % 8 > 0 THEN printf('%02x', (1 << (n % 8)) - 1)
                                                          ELSE '' END),
                       unhex(repeat('ff', correct // 8) || CASE WHEN correct % 8 > 0
                                                                THEN printf('%02x', (1 << (correct % 8)) - 1) ELSE '' END)
            FROM points""")
        con.execute("CHECKPOINT")
    tmp.rename(db)


def demo_dataset(tmp: Path) -> Path:
    cfg = tmp / "demo.json"
    if not (tmp / "pointsdb-demo.db").is_file():
        cfg.write_text(json.dumps({"name": "demo", "db": "pointsdb-demo.db",
                                   "config": str(ROOT / "configs" / "demo.yaml"),
                                   "cohorts": [{"path": str(ROOT / "data" / "demo" / "*" / "evals.json")}]}))
        subprocess.run([PY, str(ROOT / "evaluate.py"), "--dataset", str(cfg), "--quiet", "--no-scores"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--evals", type=int, default=100)
    ap.add_argument("--tasks", type=int, default=12)
    ap.add_argument("--points", type=int, default=800)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--build-only", metavar="DB", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.build_only:
        build(Path(a.build_only), a.evals, a.tasks, a.points)
        return
    sys.path.insert(0, str(ROOT))
    from reasonscape.pointsdb import SCHEMA_VERSION

    # the cached DB is keyed by its size and the PointsDB schema it was built with
    work = Path(tempfile.gettempdir()) / f"reasonscape-bench-analyze-{a.evals}x{a.tasks}x{a.points}-v{SCHEMA_VERSION}"
    work.mkdir(exist_ok=True)
    db = work / "pointsdb-bench.db"
    if not db.is_file():
        t0 = time.perf_counter()
        # in a child process: a child's peak RSS (os.wait4) starts from its parent's at fork time
        subprocess.run([PY, __file__, "--build-only", str(db), "--evals", str(a.evals), "--tasks", str(a.tasks),
                        "--points", str(a.points)], check=True)
        print(f"built {db} in {time.perf_counter() - t0:.1f}s ({db.stat().st_size / 2**20:.0f} MiB)", file=sys.stderr)
    n = a.evals * a.tasks * a.points
    cases = [([v[0], str(db), *[x.format(tmp=work, a=f"{0:06x}", b=f"{40503 % 16777216:06x}") for x in v[1:]]], " ".join(v).replace(" --output-dir {tmp}", ""),
              TARGET_S) for v in VERBS]
    cases.append((["scores", str(demo_dataset(work / "demo"))] if (work / "demo").mkdir(exist_ok=True) is None
                  else [], "scores <demo dataset>", 1.0))
    print(f"analyze.py on {n:,} points ({a.evals} evals x {a.tasks} tasks x {a.points} points); "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'verb':<34} {'runs (s)':<24} {'best s':>7} {'peak RSS':>9}  target")
    ok = True
    for args, name, target in cases:
        runs, rss, failed = runs_of("analyze.py", args, a.repeat, cwd=work)
        if failed:
            print(f"{name}: {failed}")
            ok = False
        if not runs:
            continue
        best = min(runs)
        met = best <= target and rss <= TARGET_RSS
        ok &= met
        print(f"{name:<34} {' '.join(f'{r:.2f}' for r in runs):<24} {best:>7.2f} {rss / 2**20:>7.0f}Mi  "
              f"<= {target:g} s {'ok' if met else 'MISSED'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
