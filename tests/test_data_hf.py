"""data.py's Hugging Face remote against a local Hub stand-in (HF_ENDPOINT): round trip, auth errors.

Covered: huggingface_hub's real upload_file (preupload + commit) and our streamed resolve downloads, with
a token from HF_TOKEN. Not covered: the Hub's LFS/Xet transfer of large files (the stand-in answers every
preupload with "regular"), which huggingface_hub performs on its own once the Hub asks for it.
"""

from __future__ import annotations

import json
import shutil

import pytest
from data_fixtures import make_repo, result_folders, run, tree_digest
from hf_fake_hub import FakeDatasetHub

TOKEN = "hf_fakeTokenValue0123456789"


@pytest.fixture
def hub():
    with FakeDatasetHub(("team/reasonscape-data",), TOKEN) as h:
        yield h


def _env(hub: FakeDatasetHub, token: str = TOKEN) -> dict[str, str]:
    return {"HF_ENDPOINT": hub.url, "HF_TOKEN": token, "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_HOME": "/nonexistent-hf-home-for-tests",
            "REASONSCAPE_REMOTE": "hf://datasets/team/reasonscape-data/blobs-v1"}


def test_hub_round_trip_is_byte_identical(tmp_path, hub):
    root = make_repo(tmp_path / "repo")
    data = root / "data"
    before = {f: tree_digest(f) for f in result_folders(data)}
    env = _env(hub)
    push = run(["push", "cohort", "data/demo/SimQwen-32B"], root, env)
    assert push.returncode == 0, push.stderr
    assert "2 uploaded" in push.stdout and "hf://datasets/team/reasonscape-data/blobs-v1" in push.stdout
    stored = hub.files["team/reasonscape-data"]
    assert len(stored) == 2 and all(k.startswith("blobs-v1/blobs/") for k in stored)
    assert TOKEN not in push.stdout + push.stderr + (data / "manifest.json").read_text()
    again = run(["push", "cohort", "data/demo/SimQwen-32B", "-q"], root, env)
    assert again.returncode == 0 and "0 uploaded" in again.stdout and hub.commits == 2
    status = json.loads(run(["status", "--format", "json"], root, env).stdout)
    assert [r["remote"] for r in status["items"]] == ["yes", "yes"]
    for f in result_folders(data):
        if "SimQwen-32B" in f.parts:
            shutil.rmtree(f)
    shutil.rmtree(data / ".blobs")
    pull = run(["pull", "cohort", "data/demo/SimQwen-32B", "-q"], root, {**env, "HF_TOKEN": ""})  # reads: public
    assert pull.returncode == 0, pull.stderr
    assert {f: tree_digest(f) for f in result_folders(data)} == before


def test_hub_bad_token_is_one_line_without_the_token(tmp_path, hub):
    root = make_repo(tmp_path / "repo")
    wrong = "hf_wrongTokenValue987654321"
    res = run(["push", "cohort", "data/demo/SimLlama-3B", "-q"], root, _env(hub, wrong))
    assert res.returncode == 1 and res.stderr.count("\n") == 1 and res.stderr.startswith("error: ")
    assert "401" in res.stderr and wrong not in res.stderr
    assert not (root / "data" / "manifest.json").exists()
