"""A small Hugging Face Hub stand-in on 127.0.0.1 for modelinfo's tests (stdlib only).

Point huggingface_hub at it with HF_ENDPOINT=<url>. It serves the two calls modelinfo makes:
`GET /api/models/<org>/<name>[/revision/<rev>]` (model info with its file list) and
`HEAD|GET /<org>/<name>/resolve/<rev>/<file>` (file metadata and bytes, with the X-Repo-Commit and
ETag headers huggingface_hub checks). Unknown repos answer 404 `RepoNotFound`, repos listed in `gated`
answer 401 `GatedRepo`. It records every request path.
"""

from __future__ import annotations

import hashlib
import json
from urllib.parse import unquote, urlsplit

from hub_stub import HubHandler, HubServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub(HubServer):
    def __init__(self, repos: dict[str, dict[str, bytes]], gated: tuple[str, ...] = ()):
        super().__init__()
        self.repos = repos
        self.gated = set(gated)
        self.requests: list[str] = []


class _Handler(HubHandler):
    hub: FakeHub

    def _repo(self, parts: list[str], head: bool) -> str | None:
        repo = "/".join(parts)
        if repo in self.hub.gated:
            self._error(401, "GatedRepo", head)
            return None
        if repo not in self.hub.repos:
            self._error(404, "RepoNotFound", head)
            return None
        return repo

    def _handle(self, head: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        self.hub.requests.append(f"{self.command} {path}")
        parts = [p for p in path.split("/") if p]
        if parts[:2] == ["api", "models"]:
            rest = parts[2:]
            if "revision" in rest:
                rest = rest[: rest.index("revision")]
            repo = self._repo(rest, head)
            if repo is None:
                return
            doc = {"id": repo, "modelId": repo, "sha": COMMIT, "private": False,
                   "siblings": [{"rfilename": f} for f in sorted(self.hub.repos[repo])]}
            self._send(200, json.dumps(doc).encode(), {"Content-Type": "application/json"}, head)
            return
        if "resolve" in parts:
            i = parts.index("resolve")
            repo = self._repo(parts[:i], head)
            if repo is None:
                return
            name = "/".join(parts[i + 2:])
            data = self.hub.repos[repo].get(name)
            if data is None:
                self._error(404, "EntryNotFound", head)
                return
            etag = '"' + hashlib.sha256(data).hexdigest() + '"'
            self._send(200, data, {"X-Repo-Commit": COMMIT, "ETag": etag,
                                   "Content-Type": "application/octet-stream"}, head)
            return
        self._error(404, "NotFound", head)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._handle(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._handle(head=True)


FakeHub.handler = _Handler
