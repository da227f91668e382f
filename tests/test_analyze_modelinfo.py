"""modelinfo against a local HTTP server standing in for the Hugging Face Hub (HF_ENDPOINT)."""

from __future__ import annotations

import json
import shutil
import socket

import duckdb
import pytest
from analyze_fixtures import build_demo
from analyze_fixtures import run_analyze as run
from hf_hub_server import FakeHub

CONFIG = {"model_type": "qwen3_moe", "architectures": ["Qwen3MoeForCausalLM"], "num_hidden_layers": 48,
          "hidden_size": 2048, "num_attention_heads": 32, "num_key_value_heads": 4, "num_experts": 128,
          "num_experts_per_tok": 8, "max_position_embeddings": 40960, "torch_dtype": "bfloat16"}
REPOS = {
    "org/moe": {"README.md": b"---\nlicense: apache-2.0\n---\n# MoE\n", "config.json": json.dumps(CONFIG).encode(),
                "generation_config.json": b'{"temperature": 0.6}', "recipe.yaml": b"quant: awq\n",
                "model-00001.safetensors": b"\0" * 64, "nested/config.json": b"{}"},
    "org/dense": {"config.json": b'{"model_type": "llama", "num_hidden_layers": 16}'},
}


@pytest.fixture()
def hub(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with FakeHub(REPOS, gated=("org/gated",)) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server




def test_hf_id_downloads_readme_configs_and_recipe(hub, tmp_path, capsys):
    out_dir = tmp_path / "meta"
    code, out, err = run(capsys, "modelinfo", "--hf-id", "org/moe", "--output-dir", out_dir)
    assert code == 0 and out.strip() == str(out_dir / "MODELINFO.md") and err == ""
    got = sorted(p.name for p in (out_dir / "org__moe").iterdir() if p.is_file())
    assert got == ["README.md", "config.json", "generation_config.json", "recipe.yaml"]
    assert (out_dir / "org__moe" / "recipe.yaml").read_bytes() == REPOS["org/moe"]["recipe.yaml"]
    summary = (out_dir / "MODELINFO.md").read_text()
    row = next(line for line in summary.splitlines() if line.startswith("| org/moe"))
    for value in ("qwen3_moe", "Qwen3MoeForCausalLM", "48", "128", "40960", "bfloat16", "apache-2.0"):
        assert f"| {value} |" in row
    assert not any("safetensors" in r or "nested" in r for r in hub.requests)


def test_json_format_and_missing_or_gated_repos(hub, tmp_path, capsys):
    code, out, err = run(capsys, "modelinfo", "--hf-id", "org/dense", "--hf-id", "org/nope", "--hf-id", "org/gated",
                         "--output-dir", tmp_path, "--format", "json")
    doc = json.loads(out)
    status = {m["hf_id"]: m["status"] for m in doc["models"]}
    assert code == 0 and doc["verb"] == "modelinfo" and doc["offline"] is None
    assert status == {"org/dense": "downloaded 1 file(s)", "org/nope": "not found on the Hub",
                      "org/gated": "gated (needs a token with access)"}
    assert err.count("\n") == 2 and "org/nope" in err and "org/gated" in err
    assert doc["models"][0]["layers"] == 16


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_offline_says_so_once_and_uses_the_cache(hub, tmp_path, capsys, monkeypatch):
    out_dir = tmp_path / "meta"
    assert run(capsys, "modelinfo", "--hf-id", "org/moe", "--output-dir", out_dir)[0] == 0
    (out_dir / "MODELINFO.md").unlink()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_free_port()}")  # nothing listens there
    code, out, err = run(capsys, "modelinfo", "--hf-id", "org/moe", "--hf-id", "org/dense", "--output-dir", out_dir)
    assert code == 0 and err.count("\n") == 1 and "offline" in err
    summary = (out_dir / "MODELINFO.md").read_text()
    assert "| org/moe | cached |" in summary and "| org/dense | not cached |" in summary and "qwen3_moe" in summary


def test_hf_hub_offline_makes_no_request(hub, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, _, err = run(capsys, "modelinfo", "--hf-id", "org/moe", "--output-dir", tmp_path)
    assert code == 0 and "offline (HF_HUB_OFFLINE is set)" in err and hub.requests == []


def test_dataset_mode_with_eval_id_shorthand(hub, tmp_path, capsys):
    cfg = build_demo(tmp_path)
    db = tmp_path / "copy.db"
    shutil.copy(tmp_path / "pointsdb-demo.db", db)
    con = duckdb.connect(str(db))
    ids = [r[0] for r in con.execute("SELECT eval_id FROM evals ORDER BY eval_id").fetchall()]
    con.execute("UPDATE evals SET hf_id = 'org/moe' WHERE eval_id = ?", [ids[0]])
    con.execute("UPDATE evals SET hf_id = 'org/dense' WHERE eval_id = ?", [ids[1]])
    con.execute("UPDATE evals SET hf_id = '../../etc/passwd' WHERE eval_id = ?", [ids[2]])
    con.close()
    code, out, _ = run(capsys, "modelinfo", db, "--eval-id", ids[0], "--output-dir", tmp_path / "m", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and [m["hf_id"] for m in doc["models"]] == ["org/moe"] and doc["models"][0]["evals"]
    code, out, _ = run(capsys, "modelinfo", db, "--output-dir", tmp_path / "m2", "--format", "json")
    doc = json.loads(out)
    assert sorted(m["hf_id"] for m in doc["models"]) == ["org/dense", "org/moe"] and len(doc["without_hf_id"]) == 4
    assert sum("invalid hf_id '../../etc/passwd'" in w for w in doc["without_hf_id"]) == 1
    assert not (tmp_path / "etc").exists() and not any("etc" in r for r in hub.requests)
    code, _, err = run(capsys, "modelinfo", cfg, "--eval-id", "ffffff", "--output-dir", tmp_path / "m3")
    assert code == 2 and "ffffff" in err and err.count("\n") == 1
