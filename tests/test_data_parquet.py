"""A dataset's PointsDB pushed as Parquet and read remotely (S3 on moto's server, the Hub stand-in, a local
directory) without pulling it: same scores as the local DB, a fraction of its bytes fetched."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from data_fixtures import make_repo, run
from hf_fake_hub import FakeDatasetHub
from s3_server import moto_s3

from reasonscape.analysis import verbs
from reasonscape.blobstore.remote_db import maybe_open_remote, open_remote_pointsdb
from reasonscape.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo(tmp_path):
    return make_repo(tmp_path / "repo", with_db=True)


def _remote_scores(root, env, monkeypatch):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(root)
    push = run(["push", "dataset", "data/demo.json", "--parquet", "-q"], root, env)
    assert push.returncode == 0, push.stderr
    assert re.search(r"pushed the DB as Parquet: [1-9]\d* table\(s\) uploaded", push.stdout), push.stdout
    db_file = root / "data" / "pointsdb-demo.db"
    local = verbs.scores(str(db_file)).frame
    db_file.rename(db_file.with_suffix(".away"))  # as in a fresh clone: only the manifest knows the DB
    db = maybe_open_remote(root / "data" / "demo.json")
    assert db is not None
    try:
        remote = verbs.scores(db).frame
        fetched = db.fs.bytes_read
    finally:
        db.close()
    db_file.with_suffix(".away").rename(db_file)
    assert remote.equals(local) and len(remote) == 6
    assert 0 < fetched < 0.1 * db_file.stat().st_size
    return push


def test_scores_from_parquet_on_s3_match_the_local_db(repo, monkeypatch):
    with moto_s3() as env:
        _remote_scores(repo, {**env, "REASONSCAPE_REMOTE": "s3://reasonscape-test/pq"}, monkeypatch)
        again = run(["push", "dataset", "data/demo.json", "--parquet", "-q"], repo,
                    {**env, "REASONSCAPE_REMOTE": "s3://reasonscape-test/pq"})
        assert again.returncode == 0 and "0 table(s) uploaded" in again.stdout
        status = json.loads(run(["status", "--format", "json"], repo,
                                {**env, "REASONSCAPE_REMOTE": "s3://reasonscape-test/pq"}).stdout)
        rows = {r["path"]: r for r in status["items"]}
        assert rows["data/pointsdb-demo.db.parquet"]["remote"] == "yes"
        assert rows["data/pointsdb-demo.db.parquet"]["local"] == "remote only"


def test_scores_from_parquet_on_the_hub_and_a_local_dir(repo, tmp_path, monkeypatch):
    with FakeDatasetHub(("team/data",), "hf_tok_abcdefgh") as hub:
        _remote_scores(repo, {"HF_ENDPOINT": hub.url, "HF_TOKEN": "hf_tok_abcdefgh",
                              "REASONSCAPE_REMOTE": "hf://datasets/team/data"}, monkeypatch)
        # what the server sent is what the reader counted: range requests, not whole files
        assert 0 < hub.served < 0.1 * (repo / "data" / "pointsdb-demo.db").stat().st_size
    (repo / "data" / "manifest.json").unlink()
    _remote_scores(repo, {"REASONSCAPE_REMOTE": str(tmp_path / "remote")}, monkeypatch)


def test_no_parquet_copy_is_one_line(repo, tmp_path, monkeypatch):
    monkeypatch.setenv("REASONSCAPE_REMOTE", str(tmp_path / "remote"))
    with pytest.raises(InputError, match="no Parquet copy"):
        open_remote_pointsdb(repo / "data" / "demo.json")
    assert maybe_open_remote(repo / "data" / "demo.json") is None
    bad = run(["push", "cohort", "data/demo/SimLlama-3B", "--parquet"], repo,
              {"REASONSCAPE_REMOTE": str(tmp_path / "remote")})
    assert bad.returncode == 2 and "--parquet applies to 'push dataset' only" in bad.stderr


def test_analyze_cli_reads_a_remote_parquet_dataset_without_pulling(repo, tmp_path):
    """`analyze.py scores data/demo.json` in a clone that has the manifest but not the DB: the same table
    as from the local DB, and the DB file is not created."""
    import subprocess
    import sys

    env = {"REASONSCAPE_REMOTE": str(tmp_path / "remote")}
    assert run(["push", "dataset", "data/demo.json", "--parquet", "-q"], repo, env).returncode == 0

    def scores() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(ROOT / "analyze.py"), "scores", "data/demo.json", "--format", "json"],
                              cwd=repo, capture_output=True, text=True, env={**os.environ, **env})

    local = scores()
    db_file = repo / "data" / "pointsdb-demo.db"
    db_file.unlink()
    remote = scores()
    assert local.returncode == 0 and remote.returncode == 0, remote.stderr
    assert json.loads(remote.stdout)["scores"] == json.loads(local.stdout)["scores"]
    assert not db_file.exists()
