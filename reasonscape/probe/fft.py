"""probe.py fft: the spectrum of prompt token-id sequences, per 1-dim view of the config.

Recomputed from the raw NDJSON (nothing is precomputed: the token ids depend on the tokenizer). For
every test the question is tokenised, its ids (mean removed) transformed with a real FFT, and the
magnitude (divided by √length, so long and short prompts compare) interpolated onto a common grid of
frequencies 0 … 0.5 cycles per token. Spectra are averaged per (view, eval, value of the view's axis):
structure in the prompt (repeated rows, nesting) shows up as peaks; a shift of the spectrum along the
axis shows how the difficulty parameter changes the input's texture.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from reasonscape.analysis.dimensions import check_dimension, dimension_sql, natural_key
from reasonscape.analysis.query import eval_labels
from reasonscape.analysis.render import Table, envelope, records
from reasonscape.analysis.surface import check_present, config_views
from reasonscape.errors import InputError
from reasonscape.pointsdb import PointsDB, compile_filters
from reasonscape.probe.locate import PointInfo, points_tests

BINS = 65  # frequencies 0, 1/128, ..., 0.5 cycles per token
MAX_POINTS = 5000
BYTES = "bytes"


def load_tokenizer(spec: str | None) -> tuple[str, Callable[[str], list[int]]]:
    """(name, text -> token ids): a tokenizer.json (or a folder holding one) via `tokenizers`, else a
    transformers tokenizer from a local path or the local Hugging Face cache (never downloads); None or
    "bytes" = the UTF-8 bytes (no tokenizer needed)."""
    if spec is None or spec == BYTES:
        return BYTES, lambda text: list(text.encode("utf-8", "surrogatepass"))
    p = Path(spec)
    tj = p / "tokenizer.json" if p.is_dir() else p
    if tj.is_file() and tj.suffix == ".json":
        from tokenizers import Tokenizer

        try:
            tok = Tokenizer.from_file(str(tj))
        except Exception as exc:  # tokenizers raises its own Exception type for a bad file
            raise InputError(f"--tokenizer {spec}: not a tokenizer.json ({str(exc).splitlines()[0][:120]})") from None
        return str(spec), lambda text: tok.encode(text, add_special_tokens=False).ids
    import os

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        from transformers import AutoTokenizer

        hf = AutoTokenizer.from_pretrained(spec, local_files_only=True)
    except Exception as exc:  # transformers raises OSError/ValueError/... depending on what is missing
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"--tokenizer {spec}: cannot load a tokenizer from that path or the local Hugging Face "
                         f"cache ({first[:160]})") from None
    return str(spec), lambda text: hf.encode(text, add_special_tokens=False)


def spectrum(ids: list[int] | np.ndarray, bins: int = BINS) -> np.ndarray | None:
    """|FFT| of a token-id sequence (mean removed, / √n) on `bins` frequencies 0..0.5 (None if < 4 ids)."""
    x = np.asarray(ids, dtype=np.float64)
    if x.size < 4:
        return None
    mag = np.abs(np.fft.rfft(x - x.mean())) / np.sqrt(x.size)
    freq = np.fft.rfftfreq(x.size)
    return np.interp(np.linspace(0, 0.5, bins), freq, mag)


@dataclass
class FFTResult:
    verb = "fft"
    frame: Any
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return envelope(self.verb, self.options, frequencies=np.linspace(0, 0.5, BINS).round(5).tolist(),
                        rows=records(self.frame))

    def tables(self) -> list[Table]:
        f = self.frame.drop(columns=["spectrum"])
        return [Table("Prompt token spectra" + (f" ({self.options.get('split_by')} = {k})" if k is not None else ""),
                      g.drop(columns=["split"]), {"peak_frequency": ".3f", "centroid": ".3f", "mean_tokens": ".0f"})
                for k, g in _split(f)] or [Table("Prompt token spectra", f)]

    def parts(self) -> list[tuple[str | None, Any]]:
        if not self.options.get("split_by"):
            return [(None, self)]
        return [("none" if k is None else k, FFTResult(g.reset_index(drop=True), self.options))
                for k, g in _split(self.frame)]


def _split(frame: Any) -> list[tuple[Any, Any]]:
    if not len(frame):
        return []
    keys = sorted(set(frame["split"]), key=natural_key)
    return [(k, frame[frame["split"].isna()] if k is None else frame[frame["split"] == k]) for k in keys]


def fft(db: PointsDB, filters: Any = None, views: tuple[str, ...] | list[str] = (), split_by: str | None = "base_task",
        tokenizer: str | None = None, config: Path | None = None) -> FFTResult:
    """Mean prompt spectrum per (split, 1-dim view, eval, value of the view's axis)."""
    import orjson
    import pandas as pd

    split = check_dimension(split_by, "--split-by", allow_none=True) if split_by is not None else None
    check_present(db, filters, [split])
    specs = config_views(db, config, 1, tuple(views), filters)
    name, encode = load_tokenizer(tokenizer)
    labels = eval_labels(db)
    selected: list[tuple[Any, Any, str, PointInfo]] = []  # (view, split value, axis value, point)
    for v in specs:
        sx, px = dimension_sql(v.group_by[0])
        ss, ps = dimension_sql(split) if split else ("NULL", [])
        w1, p1 = compile_filters(filters)
        w2, p2 = compile_filters({**v.filter_dict, "base_task": v.task})
        rows = db.con.execute(
            f"SELECT {ss}, {sx}, CAST(id AS VARCHAR), eval_id, model, template, sampler, base_task, "
            f"CAST(params AS VARCHAR), CAST(manifold AS VARCHAR) FROM points WHERE ({w1}) AND ({w2}) ORDER BY id",
            ps + px + p1 + p2).fetchall()
        for r in rows:
            selected.append((v, r[0], r[1], PointInfo(r[2], r[3], r[4], r[5], r[6], r[7], orjson.loads(r[8]),
                                                      orjson.loads(r[9]))))
    if len({s[3].id for s in selected}) > MAX_POINTS:
        raise InputError(f"fft: {len(selected):,} points selected (at most {MAX_POINTS:,} are read from NDJSON); "
                         "narrow with --filters or --view")
    tests = points_tests(db, list({s[3].id: s[3] for s in selected}.values())) if selected else {}
    acc: dict[tuple, list] = {}
    for v, sv, axis, info in selected:
        key = (sv, v.task, v.view, v.group_by[0], info.eval_id, axis)
        slot = acc.setdefault(key, [np.zeros(BINS), 0, 0])
        for _, t in tests[info.id]:
            q = t.get("question")
            if t.get("status") == "error" or not isinstance(q, str):
                continue
            ids = encode(q)
            s = spectrum(ids)
            if s is not None:
                slot[0] += s
                slot[1] += 1
                slot[2] += len(ids)
    rows = []
    freqs = np.linspace(0, 0.5, BINS)
    for (sv, task, view, dim, e, axis), (total, n, ntok) in acc.items():
        if not n:
            continue
        mean = total / n
        rows.append({"split": sv, "task": task, "view": view, "dimension": dim, "eval_id": e,
                     "label": labels.get(e, e), "value": axis, "tests": n, "mean_tokens": ntok / n,
                     "peak_frequency": float(freqs[1:][np.argmax(mean[1:])]),
                     "centroid": float((freqs * mean).sum() / mean.sum()) if mean.sum() else None,
                     "spectrum": mean.round(5).tolist()})
    cols = ["split", "task", "view", "dimension", "eval_id", "label", "value", "tests", "mean_tokens",
            "peak_frequency", "centroid", "spectrum"]
    frame = pd.DataFrame(rows, columns=cols)
    if len(frame):
        order = sorted(range(len(frame)), key=lambda i: (natural_key(frame["split"].iat[i]), frame["task"].iat[i],
                                                         frame["view"].iat[i], frame["label"].iat[i],
                                                         natural_key(frame["value"].iat[i])))
        frame = frame.iloc[order].reset_index(drop=True)
    return FFTResult(frame, {"filters": filters or {}, "views": list(views), "split_by": split, "tokenizer": name,
                             "config": str(config) if config else None})
