"""Content-addressed blobs for sharing result folders and PointsDB files (see docs/data.md).

`archive`: deterministic .tar.zst and a hostile-input-proof unpacker; `manifest`: data/manifest.json;
`remotes`: local directory, S3 and Hugging Face Hub; `store`: the push/pull/status/prune operations.
Names are imported lazily, so `import reasonscape.blobstore.archive` does not pay for pydantic or boto3.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "PackResult": "archive", "UnsafeArchive": "archive", "pack": "archive", "tree_hash": "archive",
    "unpack": "archive", "Entry": "manifest", "Manifest": "manifest", "load_manifest": "manifest",
    "save_manifest": "manifest", "HuggingFace": "remotes", "LocalDir": "remotes", "Remote": "remotes",
    "S3": "remotes", "load_remote": "remotes", "Item": "store", "Store": "store",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'reasonscape.blobstore' has no attribute {name!r}")
    return getattr(importlib.import_module(f"reasonscape.blobstore.{_WHERE[name]}"), name)
