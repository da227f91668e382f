"""data.py with the local-directory remote: deterministic blobs, round trips, status, prune, crash safety."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from data_fixtures import MAIN, PY, make_repo, result_folders, run, tree_digest

from reasonscape.blobstore import load_manifest, pack, tree_hash


@pytest.fixture
def repo(tmp_path):
    root = make_repo(tmp_path / "repo", with_db=True)
    return root, {"REASONSCAPE_REMOTE": str(tmp_path / "remote")}


def _wipe(root: Path) -> None:
    """What a fresh clone lacks: result folders, DB, blob cache."""
    for f in result_folders(root / "data"):
        shutil.rmtree(f)
    (root / "data" / "pointsdb-demo.db").unlink(missing_ok=True)
    shutil.rmtree(root / "data" / ".blobs", ignore_errors=True)


def _snapshot(root: Path) -> dict[str, str]:
    d = tree_digest(root / "data")
    return {k: v for k, v in d.items() if not k.startswith("demo/.cache")}


# ------------------------------------------------------------------------------------------------ blobs
def test_pack_same_content_same_bytes_whatever_mtime_owner_mode_or_folder_name(tmp_path):
    a = tmp_path / "a"
    (a / "sub").mkdir(parents=True)
    (a / "x.ndjson").write_bytes(b"line\n" * 1000)
    (a / "sub" / "y.json").write_text('{"k": 1}')
    (a / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(a / "run.sh", 0o755)
    b = tmp_path / "b-other-name"
    shutil.copytree(a, b)
    os.utime(b / "x.ndjson", (1_000_000, 1_000_000))
    os.chmod(b / "sub" / "y.json", 0o600)
    os.chmod(b / "run.sh", 0o700)
    ra, rb = pack(a, tmp_path / "a.tar.zst"), pack(b, tmp_path / "b.tar.zst")
    assert (tmp_path / "a.tar.zst").read_bytes() == (tmp_path / "b.tar.zst").read_bytes()
    assert ra == rb and ra.files == 3 and ra.bytes == 5000 + 8 + 10
    assert pack(a, None) == ra  # hashing without writing gives the same answer
    assert tree_hash(a) == (ra.tree, ra.bytes, ra.files)
    (b / "x.ndjson").write_bytes(b"line\n" * 999 + b"lime\n")
    assert pack(b, None).blob != ra.blob


def test_blob_is_a_plain_tar_with_zeroed_times_and_owners(tmp_path):
    if shutil.which("tar") is None or shutil.which("zstd") is None:
        pytest.skip("tar and zstd are needed to read the blob with standard tools")
    src = tmp_path / "src"
    src.mkdir()
    (src / "f.txt").write_text("hello")
    pack(src, tmp_path / "b.tar.zst")
    listing = subprocess.run(["tar", "--zstd", "--numeric-owner", "-tvf", str(tmp_path / "b.tar.zst")],
                             capture_output=True, text=True, check=True).stdout
    assert "f.txt" in listing and "0/0" in listing and "1970-01-01" in listing
    assert "PaxHeader" not in listing


# ------------------------------------------------------------------------------------------ round trips
def test_push_delete_pull_gives_a_byte_identical_tree_and_analyze_works(repo):
    root, env = repo
    scores_before = run(["scores", "data/demo.json", "--format", "json"], root, script="analyze.py")
    assert scores_before.returncode == 0, scores_before.stderr
    before = _snapshot(root)
    push = run(["push", "dataset", "data/demo.json", "--full", "-q"], root, env)
    assert push.returncode == 0, push.stderr
    assert "7 uploaded" in push.stdout and push.stderr == ""
    manifest = load_manifest(root / "data" / "manifest.json")
    assert len(manifest.entries) == 7 and "data/pointsdb-demo.db" in manifest.entries
    _wipe(root)
    # DB only: analyze needs nothing else
    pull = run(["pull", "dataset", "data/demo.json"], root, env)
    assert pull.returncode == 0, pull.stderr
    assert "pulled 1 of 1" in pull.stdout and "MB/s" in pull.stderr and "ETA" in pull.stderr
    assert not result_folders(root / "data")
    scores_after = run(["scores", "data/demo.json", "--format", "json"], root, script="analyze.py")
    assert scores_after.returncode == 0, scores_after.stderr
    assert scores_after.stdout == scores_before.stdout
    full = run(["pull", "dataset", "data/demo.json", "--full", "-q"], root, env)
    assert full.returncode == 0 and "pulled 6 of 7 (1 already up to date" in full.stdout
    after = _snapshot(root)
    for k in ("manifest.json",):
        after.pop(k, None)
    assert after == before


def test_second_push_uploads_nothing_and_the_manifest_is_stable(repo, tmp_path):
    root, env = repo
    assert run(["push", "cohort", "data/demo/SimQwen-32B", "-q"], root, env).returncode == 0
    text = (root / "data" / "manifest.json").read_text()
    remote_files = {p: p.stat().st_mtime_ns for p in (tmp_path / "remote").rglob("*") if p.is_file()}
    assert len(remote_files) == 2
    again = run(["push", "cohort", "data/demo/SimQwen-32B", "-q"], root, env)
    assert again.returncode == 0 and "0 uploaded" in again.stdout and "2 already there" in again.stdout
    assert (root / "data" / "manifest.json").read_text() == text
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "remote").rglob("*") if p.is_file()} == remote_files
    data = json.loads(text)
    assert list(data["entries"]) == sorted(data["entries"]) and text.endswith("}\n")
    assert json.dumps(data, indent=2, sort_keys=True) + "\n" == text
    # a fresh cache (another clone) pushing the same content still uploads nothing
    shutil.rmtree(root / "data" / ".blobs")
    third = run(["push", "cohort", "data/demo/SimQwen-32B", "-q"], root, env)
    assert third.returncode == 0 and "0 uploaded" in third.stdout


def test_eval_and_cohort_scopes_pull_only_their_folders(repo):
    root, env = repo
    assert run(["push", "dataset", "data/demo.json", "--full", "-q"], root, env).returncode == 0
    manifest = load_manifest(root / "data" / "manifest.json")
    path, entry = next((k, e) for k, e in manifest.entries.items() if "greedy-2k" in k)
    _wipe(root)
    res = run(["pull", "eval", entry.evals[0], "-q"], root, env)
    assert res.returncode == 0, res.stderr
    assert [f.relative_to(root).as_posix() for f in result_folders(root / "data")] == [path]
    res = run(["pull", "cohort", "data/demo/SimLlama-3B", "-q"], root, env)
    assert res.returncode == 0 and len(result_folders(root / "data")) == 2
    bad = run(["pull", "eval", "abcdef"], root, env)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "abcdef" in bad.stderr


def test_status_reports_ok_missing_modified_and_not_pushed(repo):
    root, env = repo
    assert run(["push", "dataset", "data/demo.json", "--full", "-q"], root, env).returncode == 0
    folders = result_folders(root / "data")
    shutil.rmtree(folders[0])
    (folders[1] / "metadata.json").write_text("{}")
    new = root / "data" / "demo" / "SimQwen-8B" / "2027-01-01_demo_SimQwen-8B_zerocot-nosys_greedy-4k"
    shutil.copytree(next(f for f in folders if "SimQwen-8B" in f.name), new)
    res = run(["status", "--format", "json"], root, env)
    assert res.returncode == 0, res.stderr
    rows = {r["path"]: r for r in json.loads(res.stdout)["items"]}
    rel = [f.relative_to(root).as_posix() for f in folders]
    assert rows[rel[0]]["local"] == "missing" and rows[rel[1]]["local"] == "modified"
    assert all(rows[p]["local"] == "ok" for p in rel[2:]) and rows["data/pointsdb-demo.db"]["local"] == "ok"
    assert all(r["remote"] == "yes" for r in rows.values())
    cohort = run(["status", "cohort", "data/demo/SimQwen-8B"], root, env)
    assert cohort.returncode == 0 and "not pushed" in cohort.stdout and "| ok |" in cohort.stdout
    assert cohort.stdout.splitlines()[2].startswith("| path | kind |")


def test_pull_keeps_local_changes_unless_force(repo):
    root, env = repo
    assert run(["push", "cohort", "data/demo/SimLlama-3B", "-q"], root, env).returncode == 0
    folder = result_folders(root / "data")[0]
    original = (folder / "metadata.json").read_bytes()
    (folder / "metadata.json").write_text('{"edited": true}')
    kept = run(["pull", "cohort", "data/demo/SimLlama-3B", "-q"], root, env)
    assert kept.returncode == 1 and "--force" in kept.stderr
    assert (folder / "metadata.json").read_text() == '{"edited": true}'
    forced = run(["pull", "cohort", "data/demo/SimLlama-3B", "--force", "-q"], root, env)
    assert forced.returncode == 0, forced.stderr
    assert (folder / "metadata.json").read_bytes() == original
    assert not list(folder.parent.glob(".*"))  # no staging or old copies left


def test_prune_lists_then_removes_only_unreferenced_blobs(repo):
    root, env = repo
    assert run(["push", "cohort", "data/demo/SimLlama-3B", "-q"], root, env).returncode == 0
    folder = result_folders(root / "data")[0]
    (folder / "metadata.json").write_text('{"v": 2}')
    assert run(["push", "cohort", "data/demo/SimLlama-3B", "-q"], root, env).returncode == 0
    blobs = sorted((root / "data" / ".blobs").glob("*/*.tar.zst"))
    assert len(blobs) == 2
    dry = run(["prune"], root, env)
    assert dry.returncode == 0 and "would remove" in dry.stdout and "1 unreferenced" in dry.stdout
    assert sorted((root / "data" / ".blobs").glob("*/*.tar.zst")) == blobs
    yes = run(["prune", "--yes"], root, env)
    assert yes.returncode == 0 and "removed 1 blob" in yes.stdout
    left = sorted((root / "data" / ".blobs").glob("*/*.tar.zst"))
    used = load_manifest(root / "data" / "manifest.json").entries
    assert [p.name for p in left] == [f"{e.blob}.tar.zst" for e in used.values()]


# --------------------------------------------------------------------------------------- verification
def test_a_flipped_byte_on_the_remote_is_rejected_with_one_line(repo, tmp_path):
    root, env = repo
    assert run(["push", "cohort", "data/demo/SimLlama-3B", "-q"], root, env).returncode == 0
    blob = next((tmp_path / "remote").rglob("*.tar.zst"))
    raw = bytearray(blob.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    blob.write_bytes(bytes(raw))
    _wipe(root)
    res = run(["pull", "cohort", "data/demo/SimLlama-3B", "-q"], root, env)
    assert res.returncode == 1 and res.stderr.count("\n") == 1
    assert res.stderr.startswith("error: ") and "fails verification" in res.stderr
    assert not result_folders(root / "data")
    assert not list((root / "data" / ".blobs" / "tmp").iterdir())
    assert not list((root / "data" / "demo" / "SimLlama-3B").glob(".*"))


def test_a_damaged_cache_copy_is_fetched_again(repo):
    root, env = repo
    assert run(["push", "cohort", "data/demo/SimLlama-3B", "-q"], root, env).returncode == 0
    cached = next((root / "data" / ".blobs").glob("*/*.tar.zst"))
    raw = bytearray(cached.read_bytes())
    raw[100] ^= 0xFF
    cached.write_bytes(bytes(raw))
    before = tree_digest(result_folders(root / "data")[0])
    shutil.rmtree(result_folders(root / "data")[0])
    res = run(["pull", "cohort", "data/demo/SimLlama-3B"], root, env)
    assert res.returncode == 0 and "damaged cache copy" in res.stderr
    assert tree_digest(result_folders(root / "data")[0]) == before


# ---------------------------------------------------------------------------------------- crash safety
SLOW_CHILD = """
import os, sys, time
from reasonscape.blobstore import store
orig = store.Progress.__call__
def slow(self, n):
    time.sleep(float(os.environ["SLOW_S"]))
    orig(self, n)
store.Progress.__call__ = slow
from reasonscape.cli.data import main
main(sys.argv[1:])
"""


def _slow(args: list[str], root: Path, env: dict[str, str], delay: float = 0.05) -> subprocess.Popen:
    return subprocess.Popen([PY, "-c", SLOW_CHILD, *args], cwd=root, env={**os.environ, **env, "SLOW_S": str(delay)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(cond, proc: subprocess.Popen, limit: float = 60) -> None:
    end = time.monotonic() + limit

    def holds() -> bool:
        try:
            return bool(cond())
        except FileNotFoundError:  # renamed between listing and stat: look again
            return False

    while not holds():
        assert proc.poll() is None, f"child ended before the kill point: {proc.communicate()}"
        assert time.monotonic() < end, "kill point never reached"
        time.sleep(0.005)


def _big_folder(root: Path) -> Path:
    folder = result_folders(root / "data")[0]
    (folder / "extra.bin").write_bytes(os.urandom(6 * 1024 * 1024))  # 6 chunks, incompressible
    return folder


@pytest.mark.parametrize("stage", ["download", "unpack"])
def test_kill_9_mid_pull_leaves_old_or_new_state_and_rerun_finishes(repo, stage):
    root, env = repo
    folder = _big_folder(root)
    cohort = folder.parent.relative_to(root).as_posix()
    before = tree_digest(folder)
    assert run(["push", "cohort", cohort, "-q"], root, env).returncode == 0
    _wipe(root)
    proc = _slow(["pull", "cohort", cohort], root, env)
    tmp = root / "data" / ".blobs" / "tmp"
    if stage == "download":
        _wait_for(lambda: any(p.stat().st_size > 0 for p in tmp.glob("*.part")) if tmp.is_dir() else False, proc)
    else:
        _wait_for(lambda: any(p.is_dir() and any(p.iterdir()) for p in folder.parent.glob(f".{folder.name}.pull-*")),
                  proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not folder.exists()  # never a half-unpacked folder under the real name
    res = run(["pull", "cohort", cohort, "-q"], root, env)
    assert res.returncode == 0, res.stderr
    assert tree_digest(folder) == before
    assert not list(folder.parent.glob(".*")) and not list(tmp.iterdir())


def test_kill_9_mid_push_keeps_the_old_manifest_and_rerun_finishes(repo):
    root, env = repo
    folder = _big_folder(root)
    cohort = folder.parent.relative_to(root).as_posix()
    proc = _slow(["push", "cohort", cohort], root, env)
    tmp = root / "data" / ".blobs" / "tmp"
    _wait_for(lambda: tmp.is_dir() and any(p.stat().st_size > 0 for p in tmp.glob("pack-*")), proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (root / "data" / "manifest.json").exists()
    res = run(["push", "cohort", cohort, "-q"], root, env)
    assert res.returncode == 0, res.stderr
    entries = load_manifest(root / "data" / "manifest.json").entries
    assert list(entries) == [folder.relative_to(root).as_posix()]
    _wipe(root)
    assert run(["pull", "cohort", cohort, "-q"], root, env).returncode == 0
    assert (folder / "extra.bin").stat().st_size == 6 * 1024 * 1024


def test_two_pulls_at_once_both_finish_and_agree(repo):
    root, env = repo
    folder = _big_folder(root)
    cohort = folder.parent.relative_to(root).as_posix()
    before = tree_digest(folder)
    assert run(["push", "cohort", cohort, "-q"], root, env).returncode == 0
    _wipe(root)
    a = _slow(["pull", "cohort", cohort], root, env, delay=0.05)
    tmp = root / "data" / ".blobs" / "tmp"
    _wait_for(lambda: tmp.is_dir() and any(tmp.glob("*.part")), a)  # a holds the lock and is downloading
    b = _slow(["pull", "cohort", cohort], root, env, delay=0.02)
    outs = [p.communicate(timeout=120) for p in (a, b)]
    assert a.returncode == 0 and b.returncode == 0, outs
    assert any("waiting for another data.py" in err for _, err in outs)
    assert sorted("pulled 1 of 1" in out for out, _ in outs) == [False, True]  # the second found it done
    assert tree_digest(folder) == before


def test_data_py_is_the_cli():
    res = subprocess.run([PY, str(MAIN / "data.py"), "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and all(v in res.stdout for v in ("pull", "push", "status", "prune"))
    assert sys.executable
