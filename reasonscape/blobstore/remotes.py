"""Where blobs are shared: a local directory, an S3 bucket (any endpoint) or a Hugging Face dataset repo.

Chosen by `$REASONSCAPE_REMOTE` (a URL) or `data/remote.json` (`{"url": ..., ...}`), else a local directory
under the user's data home (works offline). URLs: a path or `file:///abs/dir`, `s3://bucket/prefix`,
`hf://datasets/<org>/<name>[/prefix]`. Credentials are never part of the config: boto3 and huggingface_hub
find them where they always do (env, ~/.aws, HF_TOKEN, the token cache), and every error text that leaves
this module is scrubbed of them.

A remote stores a blob under `<prefix>/blobs/<aa>/<sha256>.tar.zst`. Uploads are atomic per blob (a local
rename, an S3 PUT or completed multipart upload, a Hub commit), so a killed push never leaves a torn blob
under its final name.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, Field

from reasonscape.errors import InputError, RuntimeFailure
from reasonscape.secrets import Scrubber

ENV_REMOTE = "REASONSCAPE_REMOTE"
REMOTE_FILE = "remote.json"
CHUNK = 1 << 20
#: Blobs at least this large go up to S3 in parts (S3's minimum part is 5 MiB).
MULTIPART_MB = 64

Progress = Callable[[int], None]


BLOB_EXT = ".tar.zst"
#: Parquet copies of a PointsDB are stored raw (not in a tar), so readers can fetch byte ranges.
PARQUET_EXT = ".parquet"


def blob_key(sha: str, ext: str = BLOB_EXT) -> str:
    return f"blobs/{sha[:2]}/{sha}{ext}"


def scrubber() -> Scrubber:
    """Masks every credential the libraries might put into an error text."""
    names = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID", "HF_TOKEN",
             "HUGGING_FACE_HUB_TOKEN")
    return Scrubber(extra=[os.environ.get(n) for n in names])


def _fail(what: str, exc: BaseException) -> RuntimeFailure:
    lines = (str(exc) or type(exc).__name__).strip().splitlines()
    text = scrubber().scrub(lines[0] if lines else type(exc).__name__)
    return RuntimeFailure(f"{what}: {text}")


class Remote(ABC):
    """One place blobs live. `label` is shown to users and never holds a credential."""

    label = "remote"

    @abstractmethod
    def size(self, sha: str, ext: str = BLOB_EXT) -> int | None:
        """Size of the stored blob, or None when the remote does not have it."""

    @abstractmethod
    def put(self, sha: str, path: Path, progress: Progress | None = None, ext: str = BLOB_EXT) -> None:
        """Store the file at `path` as the object of blob `sha`."""

    @abstractmethod
    def get(self, sha: str, dest: Path, progress: Progress | None = None, ext: str = BLOB_EXT) -> None:
        """Write the blob to `dest` (a temp file the caller verifies before use)."""

    @abstractmethod
    def read_range(self, sha: str, ext: str, start: int, length: int) -> bytes:
        """`length` bytes of a stored object from `start` (what a Parquet reader asks for)."""


def _copy(src, dst, progress: Progress | None) -> None:
    while chunk := src.read(CHUNK):
        dst.write(chunk)
        if progress:
            progress(len(chunk))


class LocalDir(Remote):
    def __init__(self, root: Path):
        self.root = Path(root)
        self.label = f"local directory {self.root}"

    def _path(self, sha: str, ext: str = BLOB_EXT) -> Path:
        return self.root / blob_key(sha, ext)

    def size(self, sha: str, ext: str = BLOB_EXT) -> int | None:
        p = self._path(sha, ext)
        return p.stat().st_size if p.is_file() else None

    def read_range(self, sha: str, ext: str, start: int, length: int) -> bytes:
        with open(self._path(sha, ext), "rb") as fh:
            fh.seek(start)
            return fh.read(length)

    def put(self, sha: str, path: Path, progress: Progress | None = None, ext: str = BLOB_EXT) -> None:
        dest = self._path(sha, ext)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
            with open(path, "rb") as src, open(tmp, "wb") as dst:
                _copy(src, dst, progress)
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(tmp, dest)
        except OSError as exc:
            raise RuntimeFailure(f"{self.root}: cannot store blob {sha[:12]} ({exc.strerror or exc})") from None

    def get(self, sha: str, dest: Path, progress: Progress | None = None, ext: str = BLOB_EXT) -> None:
        try:
            with open(self._path(sha, ext), "rb") as src, open(dest, "wb") as dst:
                _copy(src, dst, progress)
        except FileNotFoundError:
            raise RuntimeFailure(f"{self.label}: has no blob {sha[:12]} (was it pushed?)") from None


class S3(Remote):
    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None, region: str | None = None,
                 multipart_mb: int = MULTIPART_MB):
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        self.bucket, self.prefix = bucket, prefix.strip("/")
        where = f" at {endpoint_url}" if endpoint_url else ""
        self.label = f"s3://{bucket}/{self.prefix}{where}".replace(f"{bucket}/{where}", f"{bucket}{where}")
        self.client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region,
                                   config=Config(retries={"max_attempts": 5, "mode": "standard"}))
        part = max(5, multipart_mb) * 1024 * 1024
        self.transfer = TransferConfig(multipart_threshold=part, multipart_chunksize=part, max_concurrency=4)

    def _key(self, sha: str, ext: str = BLOB_EXT) -> str:
        return f"{self.prefix}/{blob_key(sha, ext)}" if self.prefix else blob_key(sha, ext)

    def read_range(self, sha: str, ext: str, start: int, length: int) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            r = self.client.get_object(Bucket=self.bucket, Key=self._key(sha, ext),
                                       Range=f"bytes={start}-{start + length - 1}")
            return r["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise _fail(f"{self.label}: read of {sha[:12]}{ext}", exc) from None

    def size(self, sha: str, ext: str = BLOB_EXT) -> int | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(sha, ext))
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                return None
            raise _fail(self.label, exc) from None
        except BotoCoreError as exc:
            raise _fail(self.label, exc) from None
        return int(head["ContentLength"])

    def put(self, sha: str, path: Path, progress: Progress | None = None, ext: str = BLOB_EXT) -> None:
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.upload_file(str(path), self.bucket, self._key(sha, ext), Config=self.transfer,
                                    Callback=progress)
        except (ClientError, BotoCoreError, S3UploadFailedError) as exc:
            raise _fail(f"{self.label}: upload of blob {sha[:12]}", exc) from None

    def get(self, sha: str, dest: Path, progress: Progress | None = None, ext: str = BLOB_EXT) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            with open(dest, "wb") as fh:
                self.client.download_fileobj(self.bucket, self._key(sha, ext), fh, Config=self.transfer,
                                             Callback=progress)
        except (ClientError, BotoCoreError) as exc:
            raise _fail(f"{self.label}: download of blob {sha[:12]}", exc) from None


class HuggingFace(Remote):
    """A Hub dataset repo; HF_ENDPOINT moves it (a mirror, an enterprise Hub, a test server)."""

    def __init__(self, repo: str, prefix: str = "", revision: str = "main"):
        from huggingface_hub import constants

        self.repo, self.prefix, self.revision = repo, prefix.strip("/"), revision
        self.endpoint = os.environ.get("HF_ENDPOINT", constants.ENDPOINT).rstrip("/")
        self.label = f"hf://datasets/{repo}" + (f"/{self.prefix}" if self.prefix else "")

    def _key(self, sha: str, ext: str = BLOB_EXT) -> str:
        return f"{self.prefix}/{blob_key(sha, ext)}" if self.prefix else blob_key(sha, ext)

    def _url(self, sha: str, ext: str = BLOB_EXT) -> str:
        return (f"{self.endpoint}/datasets/{self.repo}/resolve/{quote(self.revision, safe='')}/"
                f"{quote(self._key(sha, ext))}")

    def read_range(self, sha: str, ext: str, start: int, length: int) -> bytes:
        session, headers = self._session()
        try:
            r = session.get(self._url(sha, ext), headers={**headers, "Range": f"bytes={start}-{start + length - 1}"},
                            follow_redirects=True)
        except Exception as exc:  # the HTTP client's own errors
            raise _fail(self.label, exc) from None
        if r.status_code >= 400:
            raise RuntimeFailure(f"{self.label}: HTTP {r.status_code} reading {sha[:12]}{ext}")
        return r.content if r.status_code == 206 else r.content[start:start + length]

    def _session(self) -> tuple[Any, dict[str, str]]:
        from huggingface_hub.utils import build_hf_headers, get_session

        return get_session(), build_hf_headers()

    def size(self, sha: str, ext: str = BLOB_EXT) -> int | None:
        session, headers = self._session()
        try:
            r = session.head(self._url(sha, ext), headers=headers, follow_redirects=False)
        except Exception as exc:  # the HTTP client's own errors: connection refused, timeouts
            raise _fail(self.label, exc) from None
        if r.status_code == 404:
            return None
        if r.status_code >= 400:
            raise RuntimeFailure(f"{self.label}: HTTP {r.status_code} for blob {sha[:12]}"
                                 + (" (no access: set HF_TOKEN or run hf auth login)"
                                    if r.status_code in (401, 403) else ""))
        size = r.headers.get("X-Linked-Size") or r.headers.get("Content-Length")
        return int(size) if size and size.isdigit() else 0

    def put(self, sha: str, path: Path, progress: Progress | None = None, ext: str = BLOB_EXT) -> None:
        from huggingface_hub import HfApi

        try:
            HfApi(endpoint=self.endpoint).upload_file(
                path_or_fileobj=str(path), path_in_repo=self._key(sha, ext), repo_id=self.repo, repo_type="dataset",
                revision=self.revision, commit_message=f"data.py: blob {sha[:12]}")
        except Exception as exc:  # huggingface_hub raises its own HTTP error classes
            raise _fail(f"{self.label}: upload of blob {sha[:12]}", exc) from None
        if progress:
            progress(path.stat().st_size)

    def get(self, sha: str, dest: Path, progress: Progress | None = None, ext: str = BLOB_EXT) -> None:
        session, headers = self._session()
        try:
            with session.stream("GET", self._url(sha, ext), headers=headers, follow_redirects=True) as r:
                if r.status_code >= 400:
                    raise RuntimeFailure(f"{self.label}: HTTP {r.status_code} for blob {sha[:12]}")
                with open(dest, "wb") as fh:
                    for chunk in r.iter_bytes(CHUNK):
                        fh.write(chunk)
                        if progress:
                            progress(len(chunk))
        except RuntimeFailure:
            raise
        except OSError:
            raise
        except Exception as exc:
            raise _fail(f"{self.label}: download of blob {sha[:12]}", exc) from None


class RemoteConfig(BaseModel):
    """data/remote.json. Credentials are not accepted here (unknown keys are an error)."""

    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1)
    endpoint_url: str | None = None
    region: str | None = None
    revision: str = "main"
    multipart_mb: int = Field(default=MULTIPART_MB, ge=5, le=5120)


def default_local_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "reasonscape" / "remote"


def remote_from_url(url: str, where: str, base: Path, cfg: RemoteConfig | None = None) -> Remote:
    """Build a remote from a URL (`where` names the setting in errors; `base` anchors relative paths)."""
    cfg = cfg or RemoteConfig(url=url)
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise InputError(f"{where}: the remote URL must not carry credentials; use the library's usual "
                         "sources (AWS_* / ~/.aws, HF_TOKEN)")
    if parts.scheme == "s3":
        if not parts.netloc:
            raise InputError(f"{where}: s3 URL needs a bucket (s3://bucket/prefix)")
        endpoint = cfg.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        return S3(parts.netloc, parts.path, endpoint, cfg.region, cfg.multipart_mb)
    if parts.scheme == "hf":
        segs = [s for s in (parts.netloc + parts.path).split("/") if s]
        if segs[:1] == ["datasets"]:
            segs = segs[1:]
        if len(segs) < 2:
            raise InputError(f"{where}: hf URL needs a dataset repo (hf://datasets/<org>/<name>[/prefix])")
        return HuggingFace("/".join(segs[:2]), "/".join(segs[2:]), cfg.revision)
    if parts.scheme == "file":
        return LocalDir(Path(parts.path))
    if parts.scheme and len(parts.scheme) > 1:
        raise InputError(f"{where}: unknown remote scheme '{parts.scheme}' (use a path, file://, s3:// or hf://)")
    p = Path(url).expanduser()
    return LocalDir(p if p.is_absolute() else (base / p))


def load_remote(data_dir: Path) -> Remote:
    """The remote in force: $REASONSCAPE_REMOTE, else data/remote.json, else the default local directory."""
    env = os.environ.get(ENV_REMOTE)
    if env:
        return remote_from_url(env, f"${ENV_REMOTE}", Path.cwd())
    path = Path(data_dir) / REMOTE_FILE
    if path.exists():
        from reasonscape.datasets import load_json_model

        cfg = load_json_model(path, RemoteConfig)
        return remote_from_url(cfg.url, f"{path}: url", path.parent, cfg)
    return LocalDir(default_local_dir())
