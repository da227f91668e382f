"""data.py's Hugging Face remote against a local Hub stand-in (HF_ENDPOINT): round trip, auth errors.

Covered: huggingface_hub's real upload_file (preupload + commit) for regular files and, with the
stand-in's LFS threshold, its LFS batch + basic PUT transfer of large files, plus our streamed resolve
downloads, with a token from HF_TOKEN. Not covered: the Xet transfer huggingface_hub uses instead of LFS
when hf_xet is installed (a Xet CAS server is beyond a stand-in; the LFS test sets HF_HUB_DISABLE_XET=1).
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


def test_hub_large_blobs_take_the_lfs_path_and_round_trip(tmp_path):
    """Blobs at or above the stand-in's threshold go through preupload -> LFS batch -> PUT -> lfsFile
    commit; a second push finds them stored (nothing PUT again) and a pull is byte-identical."""
    with FakeDatasetHub(("team/reasonscape-data",), TOKEN, lfs_threshold=1) as hub:
        root = make_repo(tmp_path / "repo")
        data = root / "data"
        before = {f: tree_digest(f) for f in result_folders(data)}
        env = {**_env(hub), "HF_HUB_DISABLE_XET": "1"}
        push = run(["push", "cohort", "data/demo/SimQwen-32B", "-q"], root, env)
        assert push.returncode == 0, push.stderr
        stored = hub.files["team/reasonscape-data"]
        assert len(stored) == 2 and hub.lfs_puts == 2 and len(hub.lfs) == 2
        assert any("/info/lfs/objects/batch" in r for r in hub.requests)
        assert TOKEN not in push.stdout + push.stderr
        again = run(["push", "cohort", "data/demo/SimQwen-32B", "-q"], root, env)
        assert again.returncode == 0 and hub.lfs_puts == 2
        for f in result_folders(data):
            if "SimQwen-32B" in f.parts:
                shutil.rmtree(f)
        shutil.rmtree(data / ".blobs")
        pull = run(["pull", "cohort", "data/demo/SimQwen-32B", "-q"], root, {**env, "HF_TOKEN": ""})
        assert pull.returncode == 0, pull.stderr
        assert {f: tree_digest(f) for f in result_folders(data)} == before
