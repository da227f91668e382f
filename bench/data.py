"""Benchmark: data.py's blobs on a synthetic cohort, beside `tar --zstd` on the same tree in the same run.

    .venv/bin/python bench/data.py [--size-mb 256] [--folders 4] [--repeat 3] [--no-s3] [--archive-only]
                                   [--keep]
    .venv/bin/python bench/data.py --size-mb 1024          # the issue's 1 GB case (takes minutes)

Builds a throwaway repository in a temp dir: data/bench/Synth-7B/ with --folders result folders of NDJSON
that compresses like traces (JSON skeleton + random text), plus evals.json. Each step runs in its own
process, timed wall-clock, with its peak RSS (os.wait4):

pack and unpack run --repeat times each, alternating with tar and swapping which goes first, and report the
median (the machine may be shared: only a ratio measured in the same run means anything); push and pull
report the best of --repeat.

* pack:   reasonscape.blobstore.archive of every folder   vs  `tar --zstd -cf` of the cohort
* unpack: reasonscape.blobstore.unpack of every blob   vs  `tar --zstd -xf`
* push / pull with `python data.py` against the local-directory remote and against moto's S3 server on
  127.0.0.1 (pull = download + sha256 verify + unpack into an emptied cohort).
* remote scores: a synthetic PointsDB (bench/analyze.py's builder) pushed with `--parquet`, then
  `scores` read through reasonscape.blobstore.remote_db: bytes fetched vs the DB's size.

Targets (issue 16): pack and unpack within 1.3x of tar's wall time; every step's RSS <= 300 MB (streaming);
remote `scores` reads <= 10% of the DB's bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
ALPHABET = np.frombuffer(b"etaoinshrdlucmfwypvbgkqjxz      ..,,0123456789", dtype=np.uint8)
RATIO_TARGET, RSS_TARGET = 1.3, 300 * 2**20


def make_cohort(root: Path, size_mb: int, folders: int, seed: int = 0) -> Path:
    """data/bench/Synth-7B with `folders` result folders holding `size_mb` MB of NDJSON in total."""
    rng = np.random.default_rng(seed)
    cohort = root / "data" / "bench" / "Synth-7B"
    per = size_mb * 1_000_000 // folders
    for i in range(folders):
        folder = cohort / f"2026-01-0{i + 1}_00-00-00_bench_Synth-7B_zerocot_s{i}"
        folder.mkdir(parents=True)
        (folder / "metadata.json").write_text(json.dumps({"model": "Synth-7B", "template": "zerocot",
                                                          "sampler": f"s{i}"}))
        with open(folder / "result-steps.ndjson", "wb") as fh:
            written, n = 0, 0
            while written < per:
                text = ALPHABET[rng.integers(0, len(ALPHABET), size=(2000, 400))]
                lines = [b'{"schema": 1, "model": "Synth-7B", "base_task": "arithmetic", "index": %d, '
                         b'"status": "correct", "answer": "%s"}\n' % (n + j, row.tobytes())
                         for j, row in enumerate(text)]
                block = b"".join(lines)
                fh.write(block)
                written += len(block)
                n += len(lines)
    evals = [{"evaluate": {"glob": f"data/bench/Synth-7B/*_s{i}/*"},
              "filters": {"model": "Synth-7B", "template": "zerocot", "sampler": f"s{i}"}} for i in range(folders)]
    (cohort / "evals.json").write_text(json.dumps(evals, indent=2))
    return cohort


LAUNCH = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
sys.stderr.write(f"\\nmaxrss={usage.ru_maxrss}\\n")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def timed(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, repeat: int = 1,
          before=None) -> tuple[float, int]:
    """(best wall seconds, peak RSS bytes) of a command, run `repeat` times (`before()` runs ahead of each).

    A small `python -S` launcher forks and execs the command and reports its rusage: the peak RSS of a
    process forked straight from this one would include this process's own memory.
    """
    best, rss = float("inf"), 0
    for _ in range(repeat):
        if before:
            before()
        t0 = time.perf_counter()
        proc = subprocess.run([PY, "-S", "-c", LAUNCH, *cmd], cwd=cwd, env={**os.environ, **(env or {})},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        best = min(best, time.perf_counter() - t0)
        if proc.returncode != 0:
            raise SystemExit(f"bench: {' '.join(cmd[:4])} failed: {proc.stderr.strip()[-400:]}")
        rss = max(rss, int(proc.stderr.rsplit("maxrss=", 1)[1]) * 1024)
    return best, rss


@contextmanager
def moto_process():
    """moto's S3 server in its own process (its in-memory objects must not count towards our RSS)."""
    import boto3

    sys.path.insert(0, str(ROOT / "tests"))
    from s3_server import ENV, _free_port

    port = _free_port()
    proc = subprocess.Popen([PY, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {**ENV, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    try:
        client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                              aws_access_key_id=ENV["AWS_ACCESS_KEY_ID"],
                              aws_secret_access_key=ENV["AWS_SECRET_ACCESS_KEY"])
        for _ in range(200):
            try:
                client.create_bucket(Bucket="reasonscape-test")
                break
            except Exception:  # not listening yet
                time.sleep(0.05)
        yield env
    finally:
        proc.terminate()
        proc.wait()


CHILD = """
import sys
from contextlib import contextmanager, nullcontext
from pathlib import Path
sys.path.insert(0, {root!r})
from reasonscape.blobstore.archive import pack, unpack
mode, src, dst = sys.argv[1:4]
if mode == "pack":
    for f in sorted(p for p in Path(src).iterdir() if p.is_dir()):
        pack(f, Path(dst) / (f.name + ".tar.zst"))
else:
    for b in sorted(Path(src).glob("*.tar.zst")):
        unpack(b, Path(dst) / b.name.removesuffix(".tar.zst"), "0" * 64)
"""


SCORES_CHILD = """
import json, sys
sys.path.insert(0, {root!r})
from reasonscape.analysis import verbs
from reasonscape.blobstore.remote_db import open_remote_pointsdb
db = open_remote_pointsdb(sys.argv[1])
opened = db.fs.bytes_read
frame = verbs.scores(db).frame
print(json.dumps({{"opened": opened, "read": db.fs.bytes_read, "requests": db.fs.requests, "rows": len(frame)}}))
"""


def remote_scores(tmp: Path, repo: Path, args: argparse.Namespace, s3) -> None:
    """`scores` on a synthetic PointsDB read remotely from its Parquet copy: bytes fetched vs DB size."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_analyze", ROOT / "bench" / "analyze.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    db = repo / "data" / "pointsdb-synth.db"
    t0 = time.perf_counter()
    mod.build(db, args.db_evals, 12, args.db_points)
    (repo / "data" / "synth.json").write_text(json.dumps({"name": "synth", "db": "pointsdb-synth.db"}))
    print(f"synthetic PointsDB: {db.stat().st_size / 1e6:.0f} MB, {args.db_evals} evals x 12 tasks x "
          f"{args.db_points} points (built in {time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    with (s3() if s3 else nullcontext({"REASONSCAPE_REMOTE": str(tmp / "remote")})) as env:
        env = {**env, "REASONSCAPE_REMOTE": env.get("REASONSCAPE_REMOTE", "s3://reasonscape-test/bench")}
        push = subprocess.run([PY, str(ROOT / "data.py"), "push", "dataset", "data/synth.json", "--parquet", "-q"],
                              cwd=repo, env={**os.environ, **env}, capture_output=True, text=True)
        if push.returncode != 0:
            raise SystemExit(f"bench: push --parquet failed: {push.stderr.strip()}")
        t0 = time.perf_counter()
        run = subprocess.run([PY, "-c", SCORES_CHILD.format(root=str(ROOT)), "data/synth.json"], cwd=repo,
                             env={**os.environ, **env}, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if run.returncode != 0:
            raise SystemExit(f"bench: remote scores failed: {run.stderr.strip()[-400:]}")
    got = json.loads(run.stdout)
    manifest = json.loads((repo / "data" / "manifest.json").read_text())["entries"]
    pq = manifest["data/pointsdb-synth.db.parquet"]["size"]
    size = db.stat().st_size
    where = "s3 (moto)" if s3 else "local"
    print(f"\nremote Parquet scores ({where}): {got['rows']} evals in {wall:.2f} s; fetched "
          f"{got['read'] / 1e6:.2f} MB in {got['requests']} range reads ({got['opened'] / 1e6:.2f} MB of it "
          f"opening the tables) = {100 * got['read'] / size:.1f}% of the {size / 1e6:.0f} MB DB file, "
          f"{100 * got['read'] / pq:.1f}% of its {pq / 1e6:.1f} MB Parquet copy (target <= 10%)")


def dir_bytes(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mb", type=int, default=256, help="Cohort size in MB (1024 for the issue's 1 GB).")
    ap.add_argument("--folders", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3,
                    help="Runs per step (pack/unpack: the median counts; push/pull: the best).")
    ap.add_argument("--archive-only", action="store_true",
                    help="Only pack and unpack beside tar (skip push, pull and remote scores).")
    ap.add_argument("--no-s3", action="store_true", help="Skip the moto S3 push/pull.")
    ap.add_argument("--keep", action="store_true", help="Keep the temp dir.")
    ap.add_argument("--db-evals", type=int, default=40, help="Evals of the synthetic PointsDB (remote scores).")
    ap.add_argument("--db-points", type=int, default=400, help="Points per eval and task of that DB.")
    args = ap.parse_args()
    if shutil.which("tar") is None or shutil.which("zstd") is None:
        raise SystemExit("bench: needs GNU tar and zstd on PATH for the baseline")
    tmp = Path(tempfile.mkdtemp(prefix="rs-bench-data-"))
    rows: list[tuple[str, float, int, str]] = []
    try:
        repo = tmp / "repo"
        t0 = time.perf_counter()
        cohort = make_cohort(repo, args.size_mb, args.folders)
        raw = dir_bytes(cohort)
        print(f"synthetic cohort: {raw / 1e6:.0f} MB in {args.folders} folders "
              f"(generated in {time.perf_counter() - t0:.1f} s)", file=sys.stderr)
        child = CHILD.format(root=str(ROOT))
        tar_out, ours, x_tar, x_ours = tmp / "tar.tar.zst", tmp / "blobs", tmp / "x_tar", tmp / "x_ours"

        def fresh(*dirs: Path):
            def go() -> None:
                for d in dirs:
                    shutil.rmtree(d, ignore_errors=True)
                    d.mkdir()
            return go

        n = args.repeat

        def interleaved(a: tuple, b: tuple) -> tuple[tuple[float, int], tuple[float, int]]:
            """Median wall time (and peak RSS) of n runs of two commands run alternately, each going first
            every other time (load from other processes hits both alike)."""
            wa, wb, ra, rb = [], [], 0, 0
            for i in range(n):
                if i % 2:
                    y, x = timed(*b), timed(*a)
                else:
                    x, y = timed(*a), timed(*b)
                wa.append(x[0])
                wb.append(y[0])
                ra, rb = max(ra, x[1]), max(rb, y[1])
            print(f"  runs: {' '.join(f'{w:.2f}' for w in wa)} s  vs  {' '.join(f'{w:.2f}' for w in wb)} s "
                  f"(ratios {' '.join(f'{y / x:.2f}' for x, y in zip(wa, wb, strict=True))})",
                  file=sys.stderr)
            return (statistics.median(wa), ra), (statistics.median(wb), rb)

        tar_pack, our_pack = interleaved(
            (["tar", "--zstd", "-cf", str(tar_out), "-C", str(cohort), "."], tmp),
            ([PY, "-c", child, "pack", str(cohort), str(ours)], tmp, None, 1, fresh(ours)))
        tar_size, our_size = tar_out.stat().st_size, dir_bytes(ours)
        tar_unpack, our_unpack = interleaved(
            (["tar", "--zstd", "-xf", str(tar_out), "-C", str(x_tar)], tmp, None, 1, fresh(x_tar)),
            ([PY, "-c", child, "unpack", str(ours), str(x_ours)], tmp, None, 1, fresh(x_ours)))
        rows += [("pack: tar --zstd", *tar_pack, f"{tar_size / 1e6:.0f} MB"),
                 ("pack: blobstore", *our_pack, f"{our_size / 1e6:.0f} MB"),
                 ("unpack: tar --zstd", *tar_unpack, ""), ("unpack: blobstore", *our_unpack, "")]
        for d in (x_tar, x_ours, ours):
            shutil.rmtree(d)
        remotes = [] if args.archive_only else [
            ("local", lambda: nullcontext({"REASONSCAPE_REMOTE": str(tmp / "remote")}))]
        if not args.no_s3 and not args.archive_only:
            remotes.append(("s3 (moto)", moto_process))
        data_py = str(ROOT / "data.py")
        rel = cohort.relative_to(repo).as_posix()

        def wipe() -> None:
            for f in cohort.iterdir():
                if f.is_dir():
                    shutil.rmtree(f)
            shutil.rmtree(repo / "data" / ".blobs", ignore_errors=True)

        for name, ctx in remotes:
            with ctx() as env:
                env = {**env, "REASONSCAPE_REMOTE": env.get("REASONSCAPE_REMOTE", "s3://reasonscape-test/bench")}
                shutil.rmtree(repo / "data" / ".blobs", ignore_errors=True)
                (repo / "data" / "manifest.json").unlink(missing_ok=True)
                push = timed([PY, data_py, "push", "cohort", rel, "-q"], repo, env)
                pull = timed([PY, data_py, "pull", "cohort", rel, "-q"], repo, env, repeat=n, before=wipe)
                rows += [(f"push ({name}, incl. pack)", *push, ""), (f"pull ({name}, verify+unpack)", *pull, "")]
        if not args.archive_only:
            remote_scores(tmp, repo, args, moto_process if not args.no_s3 else None)
        if dir_bytes(cohort) != raw:
            raise SystemExit("bench: pulled cohort differs in size from the original")
        print("\n| step | wall s | MB/s | peak RSS MB | note |\n|---|---|---|---|---|")
        for label, wall, rss, note in rows:
            print(f"| {label} | {wall:.2f} | {raw / 1e6 / wall:.0f} | {rss / 2**20:.0f} | {note} |")
        pr, ur = our_pack[0] / tar_pack[0], our_unpack[0] / tar_unpack[0]
        worst_rss = max(r[2] for r in rows if "tar" not in r[0])
        print(f"\npack {pr:.2f}x tar (target <= {RATIO_TARGET}), unpack {ur:.2f}x tar "
              f"(target <= {RATIO_TARGET}; medians of {n} alternating runs); "
              f"peak RSS of our steps {worst_rss / 2**20:.0f} MB (target <= {RSS_TARGET // 2**20}); "
              f"compressed {our_size / 1e6:.0f} MB vs tar's {tar_size / 1e6:.0f} MB")
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
