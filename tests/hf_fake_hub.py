"""A Hugging Face Hub stand-in for dataset repos on 127.0.0.1 (stdlib only), for data.py's Hub remote.

Point huggingface_hub at it with HF_ENDPOINT=<url>. It serves what an upload and a download need:
`POST /api/datasets/<repo>/preupload/<rev>` (a file smaller than `lfs_threshold` is a regular git blob
the commit carries base64-encoded; a larger one is "lfs"), the LFS batch API `POST
/datasets/<repo>.git/info/lfs/objects/batch` (basic transfer: an upload href for an unknown oid, no
action for one already stored), `PUT /lfs-upload/<oid>` (the body's sha256 must equal the oid),
`POST /api/datasets/<repo>/commit/<rev>` (NDJSON header + `file` and `lfsFile` entries) and `HEAD|GET
/datasets/<repo>/resolve/<rev>/<path>` (with `Range: bytes=a-b` answered 206). Writes need
`Authorization: Bearer <token>` (the LFS PUT, like a presigned URL, does not); reads are public.
The Hub's Xet transfer (hf_xet) is NOT served: tests that reach the LFS path set HF_HUB_DISABLE_XET=1.
"""

from __future__ import annotations

import base64
import hashlib
import json
from urllib.parse import unquote, urlsplit

from hub_stub import HubHandler, HubServer


class FakeDatasetHub(HubServer):
    def __init__(self, repos: tuple[str, ...], token: str, lfs_threshold: int | None = None):
        super().__init__()
        self.files: dict[str, dict[str, bytes]] = {r: {} for r in repos}
        self.token = token
        self.lfs_threshold = lfs_threshold  # None: every file is a regular blob
        self.lfs: dict[str, bytes] = {}  # LFS storage by sha256 oid
        self.lfs_puts = 0
        self.commits = 0
        self.served = 0  # body bytes sent by resolve (ranges count their length)
        self.requests: list[str] = []


class _Handler(HubHandler):
    hub: FakeDatasetHub

    def _split(self, parts: list[str], marker: str) -> tuple[str, list[str]] | None:
        if marker not in parts:
            return None
        i = parts.index(marker)
        return "/".join(parts[:i]), parts[i + 1:]

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _lfs_batch(self, path: str, body: bytes) -> bool:
        """The LFS batch API (basic transfer); True when `path` was one of its URLs."""
        if not (path.startswith("/datasets/") and path.endswith(".git/info/lfs/objects/batch")):
            return False
        repo = path[len("/datasets/"):-len(".git/info/lfs/objects/batch")]
        if repo not in self.hub.files:
            self._error(404, "RepoNotFound")
            return True
        doc = json.loads(body)
        objects = []
        for obj in doc["objects"]:
            entry = {"oid": obj["oid"], "size": obj["size"]}
            if obj["oid"] not in self.hub.lfs:
                entry["actions"] = {"upload": {"href": f"{self.hub.url}/lfs-upload/{obj['oid']}"}}
            objects.append(entry)
        self._json(200, {"transfer": "basic", "objects": objects})
        return True

    def do_PUT(self) -> None:  # noqa: N802
        path = unquote(urlsplit(self.path).path)
        self.hub.requests.append(f"PUT {path}")
        body = self._body()
        oid = path.rsplit("/", 1)[-1]
        if not path.startswith("/lfs-upload/") or hashlib.sha256(body).hexdigest() != oid:
            self._error(400, "BadLfsUpload")
            return
        self.hub.lfs[oid] = body
        self.hub.lfs_puts += 1
        self._send(200, b"")

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        path = unquote(urlsplit(self.path).path)
        self.hub.requests.append(f"POST {path}")
        body = self._body()
        if self.headers.get("authorization") != f"Bearer {self.hub.token}":
            self._error(401, "Unauthorized")
            return
        if self._lfs_batch(path, body):
            return
        parts = [p for p in path.split("/") if p][2:]  # drop api/datasets
        for marker in ("preupload", "commit"):
            hit = self._split(parts, marker)
            if hit is None:
                continue
            repo, _rev = hit
            if repo not in self.hub.files:
                self._error(404, "RepoNotFound")
                return
            if marker == "preupload":
                files = json.loads(body)["files"]
                limit = self.hub.lfs_threshold
                self._json(200, {"files": [{"path": f["path"], "shouldIgnore": False,
                                            "uploadMode": "lfs" if limit is not None and f["size"] >= limit
                                            else "regular"} for f in files]})
                return
            for line in body.splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    v = item["value"]
                    self.hub.files[repo][v["path"]] = base64.b64decode(v["content"])
                elif item["key"] == "lfsFile":
                    v = item["value"]
                    if v["oid"] not in self.hub.lfs:  # the Hub refuses a pointer to content it never got
                        self._error(422, "LfsObjectMissing")
                        return
                    self.hub.files[repo][v["path"]] = self.hub.lfs[v["oid"]]
            self.hub.commits += 1
            oid = hashlib.sha1(str(self.hub.commits).encode()).hexdigest()
            self._json(200, {"commitUrl": f"{self.hub.url}/datasets/{repo}/commit/{oid}", "commitOid": oid})
            return
        self._error(404, "NotFound")

    def _resolve(self, head: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        self.hub.requests.append(f"{self.command} {path}")
        parts = [p for p in path.split("/") if p]
        hit = self._split(parts[1:], "resolve") if parts[:1] == ["datasets"] else None
        if hit is None or hit[0] not in self.hub.files:
            self._error(404, "RepoNotFound", head)
            return
        repo, rest = hit
        data = self.hub.files[repo].get("/".join(rest[1:]))
        if data is None:
            self._error(404, "EntryNotFound", head)
            return
        headers = {"X-Repo-Commit": "0" * 40, "ETag": '"' + hashlib.sha256(data).hexdigest() + '"',
                   "Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
        rng = self.headers.get("Range", "")
        if rng.startswith("bytes=") and not head:
            first, _, last = rng[6:].partition("-")
            start, end = int(first), min(int(last) if last else len(data) - 1, len(data) - 1)
            self.hub.served += end - start + 1
            self._send(206, data[start:end + 1], {**headers, "Content-Range": f"bytes {start}-{end}/{len(data)}"})
            return
        if not head:
            self.hub.served += len(data)
        self._send(200, data, headers, head)

    def do_GET(self) -> None:  # noqa: N802
        self._resolve(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._resolve(head=True)


FakeDatasetHub.handler = _Handler
