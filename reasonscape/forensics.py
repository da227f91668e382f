"""Per-point forensic precompute: compression, hazard (token-bucket terminations), FFT inputs.

Kept cheap because `evaluate.py` runs it on every test it reads (docs/evaluate.md, "Forensics"; the
hazard counts are NumPy bincounts over whole chunks of tests, see evaluate._Aggregator.flush):

* Outcome of a test: `truncated` when the completion hit the length limit, else its status
  (correct / incorrect / invalid). Errors (requests that failed for good) have no outcome.
* Hazard: for each outcome, how many completions ended in each completion-token bucket of
  HAZARD_BUCKET tokens (bucket k holds k*256 .. k*256+255). It is also the completion-length histogram.
  The last of HAZARD_MAX_BUCKETS buckets holds every longer completion too (an overflow bucket, from
  131,072 tokens on), so a wild token count cannot make the histogram huge.
  `hazard_curves` turns the counts into survival and hazard rates.
* Compression: for the first COMPRESSION_SAMPLE tests of a point (test index < 32, the first round at
  any precision level) the answer's UTF-8 length and its zstd (level 3, no frame checksum/size)
  compressed length, with the outcome and completion tokens. Low compressed/raw ratios mean repetitive
  text (loops); comparing outcomes shows under- and over-thinking. Compressing every test would cost
  more than parsing it, hence the fixed, order-independent sample. Even so it is about a quarter of
  evaluate's per-test CPU: ~5 us per ~400-byte answer, zstd's own compression time at that size (the
  per-call overhead is ~0.2 us); level 1 is only ~8% cheaper, negative levels ~2x cheaper but a
  different (and incompatible) measure.
* FFT: not precomputed. The spectrum is over prompt *token ids*, which need the model's tokenizer;
  `probe.py fft` recomputes it from the NDJSON. PointsDB keeps the prompt token sum per point.
"""

from __future__ import annotations

import numpy as np

OUTCOMES = ("correct", "incorrect", "invalid", "truncated")
TRUNCATED = 3
HAZARD_BUCKET = 256
HAZARD_MAX_BUCKETS = 512  # bucket 511 is the overflow bucket: completions of 130,816 tokens or more
COMPRESSION_SAMPLE = 32
ZSTD_LEVEL = 3


def compressor():
    """A reusable zstd compressor (a fresh context per call would cost more than the compression)."""
    import zstandard

    return zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=False, write_content_size=False)


def compressed_size(cctx, text: str | bytes) -> tuple[int, int]:
    """(UTF-8 bytes, compressed bytes) of a text (str, or its UTF-8 bytes); empty text compresses to 0."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    return len(raw), (len(cctx.compress(raw)) if raw else 0)


def hazard_counts(outcome: np.ndarray, completion_tokens: np.ndarray, buckets: int | None = None,
                  bucket: int = HAZARD_BUCKET) -> np.ndarray:
    """(4, buckets) counts of completions ending in each token bucket, per outcome."""
    outcome = np.asarray(outcome, dtype=np.int64)
    b = np.minimum(np.maximum(np.asarray(completion_tokens, dtype=np.int64), 0) // bucket, HAZARD_MAX_BUCKETS - 1)
    nb = int(b.max()) + 1 if b.size else 0
    nb = max(nb, buckets or 0)
    return np.bincount(outcome * nb + b, minlength=4 * nb).reshape(4, nb) if nb else np.zeros((4, 0), np.int64)


def hazard_curves(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Survival and hazard from (4, buckets) counts (summed over points, if you like).

    at_risk[k] = completions still running at the start of bucket k; hazard[o][k] = completions of
    outcome o ending in bucket k / at_risk[k]; survival[k] = at_risk[k] / total.
    """
    counts = np.asarray(counts, dtype=np.float64)
    ended = counts.sum(axis=0)
    total = ended.sum()
    at_risk = total - np.concatenate([[0.0], np.cumsum(ended)[:-1]])
    with np.errstate(invalid="ignore", divide="ignore"):
        hazard = np.where(at_risk > 0, counts / np.where(at_risk > 0, at_risk, 1.0), 0.0)
    survival = at_risk / total if total else np.zeros_like(at_risk)
    return {"at_risk": at_risk, "survival": survival,
            **{f"hazard_{name}": hazard[i] for i, name in enumerate(OUTCOMES)}}


def compression_summary(outcome: np.ndarray, chars: np.ndarray, compressed: np.ndarray) -> dict[str, dict]:
    """Per outcome: count, mean raw bytes and mean compressed/raw ratio of a compression sample."""
    outcome = np.asarray(outcome, dtype=np.int64)
    chars = np.asarray(chars, dtype=np.float64)
    compressed = np.asarray(compressed, dtype=np.float64)
    ratio = np.where(chars > 0, compressed / np.where(chars > 0, chars, 1.0), np.nan)
    out = {}
    for i, name in enumerate(OUTCOMES):
        m = outcome == i
        k = int(m.sum())
        out[name] = {"count": k, "mean_bytes": float(chars[m].mean()) if k else float("nan"),
                     "mean_ratio": float(np.nanmean(ratio[m])) if k and np.isfinite(ratio[m]).any() else float("nan")}
    return out
