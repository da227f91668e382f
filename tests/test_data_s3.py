"""data.py against an S3-speaking server (moto's server mode on 127.0.0.1): round trip and multipart."""

from __future__ import annotations

import json
import os
import shutil

import boto3
import pytest
from data_fixtures import make_repo, result_folders, run, tree_digest
from s3_server import ENV, moto_s3


@pytest.fixture
def s3(tmp_path):
    with moto_s3() as env:
        yield env


def _client(env: dict[str, str]):
    return boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                        aws_access_key_id=ENV["AWS_ACCESS_KEY_ID"], aws_secret_access_key=ENV["AWS_SECRET_ACCESS_KEY"])


def _objects(env: dict[str, str]) -> dict[str, int]:
    listing = _client(env).list_objects_v2(Bucket="reasonscape-test").get("Contents", [])
    return {o["Key"]: o["Size"] for o in listing}


def test_s3_round_trip_is_byte_identical_and_multipart_for_large_blobs(tmp_path, s3):
    root = make_repo(tmp_path / "repo")
    data = root / "data"
    (data / "remote.json").write_text(json.dumps({"url": "s3://reasonscape-test/team/r", "multipart_mb": 5}))
    big = result_folders(data)[0]
    (big / "extra.bin").write_bytes(os.urandom(12 * 1024 * 1024))  # > 5 MiB: sent in parts
    before = {f: tree_digest(f) for f in result_folders(data)}
    env = {**s3}
    push = run(["push", "cohort", big.parent.relative_to(root).as_posix()], root, env)
    assert push.returncode == 0, push.stderr
    assert "s3://reasonscape-test/team/r" in push.stdout
    objs = _objects(s3)
    assert len(objs) == 1 and all(k.startswith("team/r/blobs/") for k in objs)
    assert next(iter(objs.values())) > 12 * 1024 * 1024
    etag = _client(s3).head_object(Bucket="reasonscape-test", Key=next(iter(objs)))["ETag"]
    assert "-" in etag  # a multipart upload's ETag is "<md5 of part md5s>-<parts>"
    for text in (push.stdout, push.stderr, (data / "manifest.json").read_text()):
        assert ENV["AWS_SECRET_ACCESS_KEY"] not in text and ENV["AWS_ACCESS_KEY_ID"] not in text
    again = run(["push", "cohort", big.parent.relative_to(root).as_posix(), "-q"], root, env)
    assert again.returncode == 0 and "0 uploaded" in again.stdout
    status = run(["status", "--format", "json"], root, env)
    assert [r["remote"] for r in json.loads(status.stdout)["items"]] == ["yes"]
    shutil.rmtree(big)
    shutil.rmtree(data / ".blobs")
    pull = run(["pull", "cohort", big.parent.relative_to(root).as_posix(), "-q"], root, env)
    assert pull.returncode == 0, pull.stderr
    assert {f: tree_digest(f) for f in result_folders(data)} == before


def test_s3_errors_are_one_line_without_credentials(tmp_path, s3):
    root = make_repo(tmp_path / "repo")
    env = {**s3, "REASONSCAPE_REMOTE": "s3://no-such-bucket/x"}
    res = run(["push", "cohort", "data/demo/SimLlama-3B", "-q"], root, env)
    assert res.returncode == 1 and res.stderr.count("\n") == 1 and res.stderr.startswith("error: ")
    assert "no-such-bucket" in res.stderr or "NoSuchBucket" in res.stderr
    assert ENV["AWS_SECRET_ACCESS_KEY"] not in res.stderr
    creds = run(["status"], root, {"REASONSCAPE_REMOTE": "s3://key:secret@bucket/x"})
    assert creds.returncode == 2 and "secret" not in creds.stderr and "credentials" in creds.stderr
