"""Canonical JSON and the hashes derived from it: point seeds, eval ids and cache keys.

Every identity in ReasonScape is a hash of canonical JSON (sorted keys, no whitespace), so the same
coordinates always produce the same tests, the same eval_id and the same cache key on any machine.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson

_CANON_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def canonical_json(value: Any) -> str:
    """Serialise `value` with sorted keys and no whitespace (the form every hash is taken over)."""
    return orjson.dumps(value, option=_CANON_OPTS).decode()


def canonical_bytes(value: Any) -> bytes:
    return orjson.dumps(value, option=_CANON_OPTS)


def sha256_hex(data: str | bytes) -> str:
    if isinstance(data, str):
        data = data.encode()
    return hashlib.sha256(data).hexdigest()


def identity_params(params: dict[str, Any]) -> dict[str, Any]:
    """Params as they identify a point: everything but `count`, which only says how many tests."""
    return {k: v for k, v in params.items() if k != "count"}


def params_key(params: dict[str, Any]) -> str:
    """Canonical JSON of a point's identity params (the `params` column of PointsDB)."""
    return canonical_json(identity_params(params))


def point_seed(global_seed: int, params: dict[str, Any]) -> int:
    """Seed of a point's RNG: global seed + last 8 hex digits of sha256(canonical params without count).

    Because the seed ignores `count`, a point's tests form one fixed sequence and any count is a
    prefix of any larger one (hierarchical sampling).
    """
    return int(global_seed) + int(sha256_hex(params_key(params))[-8:], 16)


def eval_id(model: str, template: str, sampler: str) -> str:
    """Six hex digits naming an evaluation: sha256 of "model|template|sampler"."""
    return sha256_hex(f"{model}|{template}|{sampler}")[:6]


def cache_key(request_body: dict[str, Any]) -> str:
    """Key of a request in the response cache: sha256 of its canonical JSON body."""
    return hashlib.sha256(canonical_bytes(request_body)).hexdigest()


#: Hex digits of a point id (64 bits: a collision among 10^7 points has odds of about 3 in 10^6).
POINT_ID_CHARS = 16


def point_id(model: str, template: str, sampler: str, base_task: str, params: dict[str, Any] | str) -> str:
    """The stable id of a point: the first 16 hex digits of sha256 over the compact JSON array
    `[model, template, sampler, base_task, params]`, params being the canonical params JSON *text*
    (sorted keys, no `count`; a dict is canonicalised first). Equal on every machine and every run."""
    key = params if isinstance(params, str) else params_key(params)
    return sha256_hex(canonical_json([model, template, sampler, base_task, key]))[:POINT_ID_CHARS]


_POINT_ID = re.compile(f"[0-9a-f]{{{POINT_ID_CHARS}}}")


def normalize_point_id(value: Any) -> str | None:
    """The canonical form of a point id as a user gives it (any case, surrounding blanks ignored), or
    None when it is not one."""
    text = value.strip().lower() if isinstance(value, str) else None
    return text if text is not None and _POINT_ID.fullmatch(text) else None
