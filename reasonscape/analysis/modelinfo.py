"""`modelinfo`: fetch each model's README, *config.json and recipe.yaml from the Hugging Face Hub and
summarise them in MODELINFO.md.

The Hub is reached through huggingface_hub (HF_ENDPOINT selects another server, e.g. a mirror or the
tests' local stand-in). Offline (no connection, or HF_HUB_OFFLINE=1) is said once on stderr and the
files already in --output-dir are used: a summary is still written from what is cached.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from reasonscape.analysis.render import Table, envelope, records
from reasonscape.errors import InputError, RuntimeFailure
from reasonscape.pointsdb import PointsDB

_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")
_EVAL_ID = re.compile(r"^[0-9a-f]{6}$")
#: Config fields shown in MODELINFO.md, in order (first key present wins for each label).
SUMMARY_FIELDS = {
    "model_type": ("model_type",),
    "architecture": ("architectures",),
    "layers": ("num_hidden_layers", "n_layer", "num_layers"),
    "hidden": ("hidden_size", "d_model", "n_embd"),
    "heads": ("num_attention_heads", "n_head"),
    "kv_heads": ("num_key_value_heads",),
    "experts": ("num_local_experts", "num_experts", "n_routed_experts"),
    "experts_per_token": ("num_experts_per_tok", "moe_top_k"),
    "context": ("max_position_embeddings", "n_positions", "seq_length"),
    "dtype": ("torch_dtype", "dtype"),
}
MAX_FILE_BYTES = 8 * 2**20
TIMEOUT_S = 15.0


def check_hf_id(hf_id: Any) -> str:
    if not isinstance(hf_id, str) or not _REPO.match(hf_id) or ".." in hf_id or hf_id.endswith((".", "-")):
        raise InputError(f"--hf-id {str(hf_id)[:80]!r}: expected a Hugging Face model id like org/name")
    return hf_id


def check_eval_id(eval_id: Any) -> str:
    if not isinstance(eval_id, str) or not _EVAL_ID.match(eval_id):
        raise InputError(f"--eval-id {str(eval_id)[:80]!r}: expected a 6-character hex eval_id (see: analyze.py evals)")
    return eval_id


def wanted(filename: str) -> bool:
    """README, every *config.json and recipe.yaml at the top of the repo."""
    return "/" not in filename and (filename in ("README.md", "recipe.yaml") or filename.endswith("config.json"))


def targets_from_db(db: PointsDB, filters: dict[str, Any] | str | None = None,
                    eval_ids: list[str] | tuple[str, ...] = ()) -> tuple[dict[str, list[str]], list[str]]:
    """({hf_id: [eval labels]}, [labels of matching evals without an hf_id])."""
    f: dict[str, Any] = dict(_parse(filters))
    if eval_ids:
        ids = [check_eval_id(e) for e in eval_ids]
        if "eval_id" in f:
            have = f["eval_id"] if isinstance(f["eval_id"], list) else [f["eval_id"]]
            ids = [i for i in ids if i in have]
            if not ids:
                raise InputError("--eval-id and --filters eval_id select no common eval")
        f["eval_id"] = ids
    frame = db.evals(f or None)
    if eval_ids:
        missing = sorted(set(f["eval_id"]) - set(frame["eval_id"]))
        if missing:
            raise InputError(f"--eval-id {missing[0]}: no such eval in {db.path} (see: analyze.py evals)")
    out: dict[str, list[str]] = {}
    without = []
    for r in frame.itertuples(index=False):
        label = f"{r.label} ({r.eval_id})"
        if isinstance(r.hf_id, str) and r.hf_id:  # pandas shows a missing hf_id as None or NaN
            try:
                out.setdefault(check_hf_id(r.hf_id), []).append(label)
            except InputError:  # a malformed hf_id in evals.json must not become a path or a URL
                without.append(f"{label} (invalid hf_id {r.hf_id[:60]!r})")
        else:
            without.append(label)
    return out, without


def _parse(filters: dict[str, Any] | str | None) -> dict[str, Any]:
    from reasonscape.pointsdb import compile_filters, parse_filters

    compile_filters(filters)
    return parse_filters(filters)


def _repo_dir(output_dir: Path, hf_id: str) -> Path:
    return output_dir / hf_id.replace("/", "__")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return {}
        doc = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _license(readme: Path) -> str | None:
    try:
        head = readme.read_text(encoding="utf-8", errors="replace")[:20000]
    except OSError:
        return None
    m = re.match(r"^---\s*\n(.*?)\n---", head, re.S)
    if not m:
        return None
    lic = re.search(r"^license:\s*(\S.*)$", m.group(1), re.M)
    return lic.group(1).strip().strip("'\"") if lic else None


def summarise(hf_id: str, folder: Path) -> dict[str, Any]:
    cfg = _read_json(folder / "config.json")
    text_cfg = cfg.get("text_config") if isinstance(cfg.get("text_config"), dict) else {}
    row: dict[str, Any] = {"hf_id": hf_id}
    for label, keys in SUMMARY_FIELDS.items():
        v = next((c[k] for k in keys for c in (cfg, text_cfg) if k in c), None)
        row[label] = ", ".join(map(str, v)) if isinstance(v, list) else v
    row["license"] = _license(folder / "README.md")
    row["files"] = sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    return row


@dataclass
class ModelInfoResult:
    verb = "modelinfo"
    frame: pd.DataFrame
    options: dict[str, Any] = field(default_factory=dict)
    offline: str | None = None
    without_hf_id: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return envelope(self.verb, self.options, offline=self.offline, models=records(self.frame),
                        without_hf_id=self.without_hf_id)

    def tables(self) -> list[Table]:
        note = "Downloaded from the Hugging Face Hub by `analyze.py modelinfo`."
        if self.offline:
            note += f" Offline ({self.offline}): cached files only."
        if self.without_hf_id:
            note += " Evals without an hf_id: " + ", ".join(self.without_hf_id) + "."
        show = self.frame.drop(columns=["folder"], errors="ignore")
        lists = {"files": lambda v: ", ".join(v) or "-", "evals": lambda v: ", ".join(v) or "-"}
        return [Table("Model info", show, lists, level=1, note=note)]

    def parts(self) -> list[tuple[str | None, Any]]:
        return [(None, self)]


def _is_offline_error(exc: BaseException) -> bool:
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    if isinstance(exc, OfflineModeIsEnabled):
        return True
    if isinstance(exc, HfHubHTTPError):
        return False
    # httpx (or the httpx2 fork huggingface_hub may ship with): connection, DNS, TLS and timeout errors
    # all derive from a class named TransportError; matched by name so either package works.
    if any(c.__name__ in ("TransportError", "TimeoutException") for c in type(exc).__mro__):
        return True
    return isinstance(exc, ConnectionError | TimeoutError)


MAX_MODELS = 1000


def fetch(hf_ids: dict[str, list[str]], output_dir: str | Path, without_hf_id: list[str] | None = None,
          warn: Callable[[str], None] | None = None) -> ModelInfoResult:
    """Download the wanted files of every repo into `output_dir/<org>__<name>/` and summarise them."""
    warn = warn or (lambda s: print(s, file=sys.stderr))
    if len(hf_ids) > MAX_MODELS:
        raise InputError(f"modelinfo: {len(hf_ids)} models selected, at most {MAX_MODELS} per run (use --filters)")
    from reasonscape.analysis.render import prepare_dir

    out = prepare_dir(output_dir)
    endpoint = os.environ.get("HF_ENDPOINT") or None
    offline: str | None = "HF_HUB_OFFLINE is set" if os.environ.get("HF_HUB_OFFLINE", "").lower() in (
        "1", "true", "yes", "on") else None
    if offline:
        warn(f"modelinfo: offline ({offline}); using the files cached in {out}")
    rows = []
    for hf_id, labels in hf_ids.items():
        check_hf_id(hf_id)
        folder = _repo_dir(out, hf_id)
        status = "cached"
        if offline is None:
            try:
                status = _download(hf_id, folder, endpoint)
            except Exception as exc:  # noqa: BLE001 - classified below; never a traceback
                if _is_offline_error(exc):
                    offline = f"cannot reach {endpoint or 'huggingface.co'}: {type(exc).__name__}"
                    warn(f"modelinfo: offline ({offline}); using the files cached in {out}")
                else:
                    status = _http_status(exc)
                    warn(f"modelinfo: {hf_id}: {status}")
        row = summarise(hf_id, folder)
        if status == "cached" and not row["files"]:
            status = "not cached"
        rows.append({**row, "status": status, "evals": labels, "folder": str(folder)})
    cols = ["hf_id", "status", "evals", *SUMMARY_FIELDS, "license", "files", "folder"]
    frame = pd.DataFrame(rows, columns=cols)
    return ModelInfoResult(frame, {"output_dir": str(out)}, offline, list(without_hf_id or []))


def _http_status(exc: BaseException) -> str:
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    if isinstance(exc, GatedRepoError):
        return "gated (needs a token with access)"
    if isinstance(exc, RepositoryNotFoundError):
        return "not found on the Hub"
    if isinstance(exc, HfHubHTTPError):
        code = getattr(getattr(exc, "response", None), "status_code", None)
        return "not found on the Hub" if code == 404 else f"Hub error (HTTP {code})"
    if isinstance(exc, OSError):
        raise RuntimeFailure(f"modelinfo: cannot write the downloaded files ({exc})") from None
    return f"failed ({type(exc).__name__})"


def _download(hf_id: str, folder: Path, endpoint: str | None) -> str:
    from huggingface_hub import HfApi, hf_hub_download

    info = HfApi(endpoint=endpoint).model_info(hf_id, timeout=TIMEOUT_S)
    names = sorted(s.rfilename for s in (info.siblings or []) if wanted(s.rfilename))
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        hf_hub_download(hf_id, name, local_dir=folder, endpoint=endpoint, etag_timeout=TIMEOUT_S)
    return f"downloaded {len(names)} file(s)"


def write_summary(result: ModelInfoResult) -> Path:
    from reasonscape.analysis.render import markdown

    path = Path(result.options["output_dir"]) / "MODELINFO.md"
    try:
        path.write_text(markdown(result), encoding="utf-8")
    except OSError as exc:
        raise RuntimeFailure(f"{path}: cannot write ({exc.strerror or exc})") from None
    return path
