"""Hostile inputs to data.py: crafted blobs, bad manifests, bad remote configs, bad arguments."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest
import zstandard
from data_fixtures import make_repo, run

from reasonscape.blobstore import UnsafeArchive, unpack


def _blob(tmp_path, members: list[tuple[tarfile.TarInfo, bytes | None]], fmt=tarfile.GNU_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for ti, data in members:
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    path = tmp_path / "evil.tar.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(buf.getvalue()))
    return path


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    return ti, data


def _special(name: str, kind: bytes, link: str = "") -> tuple[tarfile.TarInfo, None]:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.linkname = link
    return ti, None


CASES = {
    "dotdot": [_file("ok.txt"), _file("../escape.txt")],
    "nested_dotdot": [_file("a/../../escape.txt")],
    "absolute": [_file("/tmp/escape.txt")],
    "symlink_absolute": [_special("link", tarfile.SYMTYPE, "/etc"), _file("link/passwd")],
    "symlink_up": [_special("link", tarfile.SYMTYPE, "../../outside")],
    "symlink_via_self": [_special("here", tarfile.SYMTYPE, "."), _special("up", tarfile.SYMTYPE, "here/..")],
    "through_link": [_file("d/f"), _special("l", tarfile.SYMTYPE, "d"), _file("l/g")],
    "hardlink_outside": [_special("h", tarfile.LNKTYPE, "/etc/passwd")],
    "hardlink_dotdot": [_special("h", tarfile.LNKTYPE, "../x")],
    "char_device": [_special("dev", tarfile.CHRTYPE)],
    "block_device": [_special("blk", tarfile.BLKTYPE)],
    "fifo": [_special("pipe", tarfile.FIFOTYPE)],
    "duplicate": [_file("a.txt", b"1"), _file("a.txt", b"2")],
    "file_over_dir": [_file("d/f"), _file("d")],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_crafted_blob_is_rejected_and_leaves_nothing(tmp_path, case):
    blob = _blob(tmp_path, CASES[case])
    target = tmp_path / "out" / ".staging"
    target.parent.mkdir()
    with pytest.raises(UnsafeArchive) as err:
        unpack(blob, target, "f" * 64)
    assert "\n" not in str(err.value) and str(err.value).startswith("blob ffffffffffff")
    assert not target.exists() and list(target.parent.iterdir()) == []
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "outside").exists()


def test_pax_archive_with_safe_names_unpacks(tmp_path):
    blob = _blob(tmp_path, [_file("a/b.txt", b"hi"), _special("l", tarfile.SYMTYPE, "a/b.txt")],
                 fmt=tarfile.PAX_FORMAT)
    unpack(blob, tmp_path / "out", "f" * 64)
    assert (tmp_path / "out" / "l").read_text() == "hi"


def test_decompression_bomb_stops_at_the_manifest_size(tmp_path):
    blob = _blob(tmp_path, [_file("big", b"\0" * 1_000_000)])
    with pytest.raises(UnsafeArchive, match="more than the 1000 bytes"):
        unpack(blob, tmp_path / "out", "f" * 64, max_bytes=1000)
    assert not (tmp_path / "out").exists()


def test_garbage_blob_is_one_line(tmp_path):
    p = tmp_path / "g.tar.zst"
    p.write_bytes(b"not zstd at all" * 10)
    with pytest.raises(UnsafeArchive):
        unpack(p, tmp_path / "out", "f" * 64)
    assert not (tmp_path / "out").exists()


def test_a_crafted_blob_in_the_manifest_is_rejected_by_pull(tmp_path):
    root = make_repo(tmp_path / "repo")
    remote = tmp_path / "remote"
    blob = _blob(tmp_path, [_file("../../../pwned.txt", b"owned")])
    raw = blob.read_bytes()
    sha = hashlib.sha256(raw).hexdigest()
    (remote / "blobs" / sha[:2]).mkdir(parents=True)
    (remote / "blobs" / sha[:2] / f"{sha}.tar.zst").write_bytes(raw)
    manifest = {"version": 1, "entries": {"data/demo/SimLlama-3B/evil": {
        "kind": "results", "cohort": "data/demo/SimLlama-3B", "blob": sha, "size": len(raw), "tree": "0" * 64,
        "bytes": 5, "files": 1}}}
    (root / "data" / "manifest.json").write_text(json.dumps(manifest))
    res = run(["pull", "cohort", "data/demo/SimLlama-3B", "-q"], root, {"REASONSCAPE_REMOTE": str(remote)})
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "contains '..'" in res.stderr
    assert not (root / "data" / "demo" / "SimLlama-3B" / "evil").exists()
    assert not list((root / "data" / "demo" / "SimLlama-3B").glob(".*"))
    assert not list(tmp_path.rglob("pwned.txt"))


@pytest.mark.parametrize("entries, message", [
    ({"../outside": {}}, "not a clean relative path"),
    ({"/etc/passwd": {}}, "not a clean relative path"),
    ({"data/.blobs/x": {}}, "points into .git or .blobs"),
    ({"data/x": {"kind": "results", "blob": "zz", "size": 1, "tree": "0" * 64, "bytes": 1, "files": 1}},
     "not a sha256"),
    ({"data/x": {"kind": "exe", "blob": "0" * 64, "size": 1, "tree": "0" * 64, "bytes": 1, "files": 1}}, "kind"),
    ({"data/x": {"kind": "db", "blob": "0" * 64, "size": -1, "tree": "0" * 64, "bytes": 1, "files": 1}}, "size"),
    ({"data/x": {"kind": "db", "blob": "0" * 64, "size": 1, "tree": "0" * 64, "bytes": 1, "files": 1,
                 "evals": ["x; rm"]}}, "eval_id"),
])
def test_bad_manifest_is_one_line_naming_the_file(tmp_path, entries, message):
    root = make_repo(tmp_path / "repo")
    (root / "data" / "manifest.json").write_text(json.dumps({"version": 1, "entries": entries}))
    res = run(["status", "--offline"], root)
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert "manifest.json" in res.stderr and message in res.stderr


@pytest.mark.parametrize("text, message", [
    ("{", "malformed JSON"),
    ("[]", "expected a JSON object"),
    ('{"url": "s3://b/p", "aws_secret_access_key": "hunter2hunter2"}', "unknown key 'aws_secret_access_key'"),
    ('{"url": "ftp://host/x"}', "unknown remote scheme 'ftp'"),
    ('{"url": "s3://"}', "needs a bucket"),
    ('{"url": "hf://datasets/onlyorg"}', "needs a dataset repo"),
    ('{"url": "s3://b/p", "multipart_mb": 1}', "multipart_mb"),
])
def test_bad_remote_json_is_one_line(tmp_path, text, message):
    root = make_repo(tmp_path / "repo")
    (root / "data" / "remote.json").write_text(text)
    res = run(["status"], root, {"REASONSCAPE_REMOTE": ""})
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert message in res.stderr and "hunter2" not in res.stderr


@pytest.mark.parametrize("args, message", [
    (["pull", "cohort"], "missing the cohort"),
    (["pull", "model", "x"], "'model' is not one of"),
    (["pull", "cohort", "data/nope"], "cohort file not found"),
    (["pull", "dataset", "data/nope.json"], "dataset file not found"),
    (["push", "eval", "zzzzzz"], "no evals.json"),
    (["pull", "dataset", "data/demo.json"], "is not in"),
    (["push", "dataset", "data/demo.json"], "does not exist"),
    (["status", "--data-dir", "/nonexistent/data"], "data directory not found"),
    (["push", "cohort", "/etc"], "cohort file not found"),
])
def test_bad_arguments_are_one_line_exit_2(tmp_path, args, message):
    root = make_repo(tmp_path / "repo")
    res = run(args, root, {"REASONSCAPE_REMOTE": str(tmp_path / "remote")})
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert message in res.stderr


def test_symlinks_in_a_result_folder_are_refused_at_push(tmp_path):
    root = make_repo(tmp_path / "repo")
    folder = next((root / "data" / "demo" / "SimLlama-3B").glob("2026-*"))
    (folder / "link").symlink_to("/etc/passwd")
    res = run(["push", "cohort", "data/demo/SimLlama-3B"], root, {"REASONSCAPE_REMOTE": str(tmp_path / "remote")})
    assert res.returncode == 2 and "is a symlink" in res.stderr and not (root / "data" / "manifest.json").exists()


@pytest.mark.parametrize("path, message", [
    ("README.md", "outside data/"),
    ("configs/demo.yaml", "outside data/"),
    ("data/demo.json", "names a config or cohort directory"),
    ("data/demo/SimLlama-3B", "names a config or cohort directory"),
])
def test_a_manifest_cannot_aim_pull_at_tracked_files(tmp_path, path, message):
    root = make_repo(tmp_path / "repo")
    (root / "README.md").write_text("mine")
    entry = {"kind": "results", "cohort": "data/demo/SimLlama-3B", "blob": "a" * 64, "size": 1, "tree": "b" * 64,
             "bytes": 1, "files": 1}
    (root / "data" / "manifest.json").write_text(json.dumps({"version": 1, "entries": {path: entry}}))
    res = run(["pull", "cohort", "data/demo/SimLlama-3B", "--force", "-q"], root,
              {"REASONSCAPE_REMOTE": str(tmp_path / "remote")})
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and message in res.stderr
    assert (root / "README.md").read_text() == "mine" and (root / "data" / "demo" / "SimLlama-3B" / "evals.json").exists()
