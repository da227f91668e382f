"""Per-point accumulators: counters, de-duplication by test index and question, hazard
histograms and the compression sample, folded in a chunk of tests at a time with NumPy."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from reasonscape import forensics
from reasonscape.evaluate.decode import _FIELD, _QKEY, ERROR, _answer_bytes, _code
from reasonscape.identity import canonical_json
from reasonscape.identity import eval_id as make_eval_id

ANSWERED_BIT, ERROR_BIT = 2, 1
COUNTED_BIT = 4  # aggregator only: the slot's test is the one counted for its question
BLOOM = 1 << 23  # bytes of an aggregator's filter of (point, question) keys seen (8 MiB, zero pages until used)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)

Key = tuple[str, str, str, str, str]  # model, template, sampler, base_task, params (canonical JSON)

@dataclass
class PointAcc:
    """Aggregate of one point from one or more ranges: the unit that is merged and written."""

    key: Key
    manifold: bytes
    state: np.ndarray  # per test index: ERROR_BIT | ANSWERED_BIT
    counts: np.ndarray  # per outcome (correct, incorrect, invalid, truncated)
    guess: np.ndarray  # guess mass of untruncated, truncated tests
    ptok: int
    ctok: np.ndarray  # completion tokens per outcome
    hazard: np.ndarray  # (4, buckets)
    comp: dict[int, tuple[int, int, int, int]]  # index -> (outcome, bytes, compressed, tokens)
    dups: int  # answers of an index already answered (not counted)
    qh: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint32))  # per index: question hash, 0 = none
    qdups: int = 0  # answered indexes whose question an earlier index of the point already asked (not counted)
    counted: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # per index: counted in n
    correct: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # per index: counted and correct
    locs: dict[str, list[int]] = field(default_factory=dict)  # path -> [offset, length, offset, length, ...]

    def merge(self, other: PointAcc) -> bool:
        """Add another range's partial; False (and nothing changed) when both answered the same index
        or asked the same question (which of them counts depends on both: the point is recounted)."""
        m = min(self.state.size, other.state.size)
        if ((self.state[:m] & other.state[:m]) & ANSWERED_BIT).any():
            return False
        a, b = self.qh[self.qh != 0], other.qh[other.qh != 0]
        if a.size and b.size and np.intersect1d(a, b, assume_unique=False).size:
            return False
        qh = np.zeros(max(self.qh.size, other.qh.size), np.uint32)
        qh[: self.qh.size] = self.qh
        qh[: other.qh.size] |= other.qh
        self.qh = qh
        self.qdups += other.qdups
        big, small = (self.state, other.state) if self.state.size >= other.state.size else (other.state, self.state)
        big = big.copy()
        big[: small.size] |= small
        self.state = big
        if self.manifold == b"{}":
            self.manifold = other.manifold
        self.counts = self.counts + other.counts
        self.guess = self.guess + other.guess
        self.ptok += other.ptok
        self.ctok = self.ctok + other.ctok
        nb = max(self.hazard.shape[1], other.hazard.shape[1])
        h = np.zeros((4, nb), np.int64)
        h[:, : self.hazard.shape[1]] += self.hazard
        h[:, : other.hazard.shape[1]] += other.hazard
        self.hazard = h
        for i, v in other.comp.items():
            self.comp.setdefault(i, v)
        self.dups += other.dups
        self.counted, self.correct = _union(self.counted, other.counted), _union(self.correct, other.correct)
        for path, flat in other.locs.items():
            self.locs.setdefault(path, []).extend(flat)
        return True

    def row(self) -> dict[str, Any]:
        """The PointsDB row of this point (without id and eval metadata)."""
        model, template, sampler, base_task, params = self.key
        c0, c1, c2, c3 = self.counts.tolist()
        k0, k1, k2, k3 = self.ctok.tolist()
        g0, g1 = self.guess.tolist()
        h = self.hazard
        used = h.any(axis=0)
        nb = int(used.size - used[::-1].argmax()) if used.size and used.any() else 0
        hc, hi, hv, ht = h[:, :nb].tolist()
        comp = sorted(self.comp.items())
        outcome, nbytes, ncomp, tokens = (list(v) for v in zip(*(v for _, v in comp), strict=True)) if comp \
            else ([], [], [], [])
        return {
            "eval_id": _eval_id(model, template, sampler), "model": model, "template": template,
            "sampler": sampler, "base_task": base_task, "params": params,
            "manifold": _canonical(self.manifold),
            "n": c0 + c1 + c2 + c3, "correct": c0, "incorrect": c1, "invalid": c2, "truncated": c3,
            "errors": int(np.count_nonzero(self.state == ERROR_BIT)), "duplicates": int(self.qdups),
            "guess": round(g0, 9), "guess_truncated": round(g1, 9),
            "prompt_tokens": int(self.ptok), "completion_tokens": k0 + k1 + k2 + k3,
            "completion_tokens_correct": k0, "completion_tokens_incorrect": k1,
            "completion_tokens_invalid": k2, "completion_tokens_truncated": k3,
            "hazard_bucket": forensics.HAZARD_BUCKET,
            "hazard_correct": hc, "hazard_incorrect": hi, "hazard_invalid": hv, "hazard_truncated": ht,
            "compression_index": [i for i, _ in comp], "compression_outcome": outcome,
            "compression_bytes": nbytes, "compression_compressed": ncomp, "compression_tokens": tokens,
        }


def _union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise OR of two boolean arrays of possibly different lengths."""
    big, small = (a, b) if a.size >= b.size else (b, a)
    out = big.copy()
    out[: small.size] |= small
    return out


@functools.lru_cache(maxsize=4096)
def _eval_id(model: str, template: str, sampler: str) -> str:
    return make_eval_id(model, template, sampler)


@functools.lru_cache(maxsize=4096)
def _canonical(raw: bytes) -> str:
    return canonical_json(orjson.loads(raw))


class _Aggregator:
    """Running aggregates of every point a worker has seen, updated a chunk of tests at a time.

    Decoded test objects are buffered as they come (one list extend per line, no per-test Python
    code) and folded in per chunk: each field becomes a NumPy column through one C-level
    `np.fromiter(map(attrgetter(...)))`, then a few NumPy calls update every point at once.
    De-duplication uses one state byte per (point, test index) in a shared slot array; the
    compression sample is taken from the tests that de-duplication keeps. Memory: O(points x largest
    index) plus one chunk of tests, not O(input).

    Repeated questions: a kept test whose question (the hash of its text, `_QKEY`) an earlier
    index of the same point already asked is not counted (`qdups`): identical requests get identical
    answers, so a repeat is not a new trial. The first index counts. Each slot keeps its question key
    (`qk`); a byte filter of (point, question) keys seen so far sends only the few tests whose key may
    have been seen (or that share one within the chunk) to an exact check against the point's slots.
    When a repeat arrives at a lower index than the one already counted (out-of-order input) the
    counted one is taken out again: every counted slot keeps its outcome, tokens and guess chance
    (`s_*`) for that.
    """

    SLOT_ARRAYS = (("state", np.uint8), ("qk", np.uint64), ("s_out", np.uint8), ("s_ctok", np.int32),
                   ("s_ptok", np.int32), ("s_guess", np.float64))

    def __init__(self) -> None:
        self.kid: dict[Key, int] = {}
        self.keys: list[Key] = []
        self.manifold: list[bytes] = []
        self.comp: list[dict[int, tuple[int, int, int, int]]] = []
        self.locs: list[dict[str, list[int]]] = []  # per point: path -> [offset, length, ...] of its lines
        cap = 64
        self.base = np.zeros(cap, np.int64)
        self.cap = np.zeros(cap, np.int64)
        self.counts = np.zeros((cap, 4), np.int64)
        self.guess = np.zeros((cap, 2), np.float64)
        self.ptok = np.zeros(cap, np.int64)
        self.ctok = np.zeros((cap, 4), np.int64)
        self.dups = np.zeros(cap, np.int64)
        self.qdups = np.zeros(cap, np.int64)
        self.hazard = np.zeros((cap, 4, 16), np.int64)
        for name, dtype in self.SLOT_ARRAYS:  # per (point, test index) slot
            setattr(self, name, np.zeros(1 << 16, dtype))
        self.bloom: np.ndarray | None = None
        self.used = 0
        self.tests: list[Any] = []  # buffered test objects of this chunk, in stream order
        self.line_pid: list[int] = []  # point number of each buffered line
        self.line_len: list[int] = []  # tests of each buffered line
        self.nbuf = 0
        self.scratch = np.zeros(0, np.int64)  # slot -> position, to spot duplicates without sorting
        self.cctx = None

    def point(self, key: Key, manifold: bytes) -> int:
        pid = self.kid.get(key)
        if pid is not None:
            if manifold != b"{}" and self.manifold[pid] == b"{}":
                self.manifold[pid] = manifold
            return pid
        pid = self.kid[key] = len(self.keys)
        self.keys.append(key)
        self.manifold.append(manifold)
        self.comp.append({})
        self.locs.append({})
        if pid >= self.base.size:
            n = 2 * self.base.size
            for name in ("base", "cap", "counts", "guess", "ptok", "ctok", "dups", "qdups", "hazard"):
                old = getattr(self, name)
                new = np.zeros((n, *old.shape[1:]), old.dtype)
                new[: old.shape[0]] = old
                setattr(self, name, new)
        return pid

    def locate(self, pid: int, path: str, offset: int, length: int) -> None:
        """Remember that a line of `path` at `offset` (`length` bytes, no newline) holds tests of the point."""
        flat = self.locs[pid].get(path)
        if flat is None:
            flat = self.locs[pid][path] = []
        flat += (offset, length)

    def add(self, pid: int, tests: list[Any]) -> None:
        self.tests += tests
        self.line_pid.append(pid)
        self.line_len.append(len(tests))
        self.nbuf += len(tests)

    def _reserve(self, pid: np.ndarray, idx: np.ndarray) -> None:
        over = idx >= self.cap[pid]
        if not over.any():
            return
        top = np.full(self.base.size, -1, np.int64)
        np.maximum.at(top, pid[over], idx[over])
        for p in np.flatnonzero(top >= 0).tolist():
            need = int(top[p]) + 1
            size = max(64, 1 << (need - 1).bit_length(), 2 * int(self.cap[p]))
            if self.used + size > self.state.size:
                n = max(2 * self.state.size, self.used + size)
                for name, dtype in self.SLOT_ARRAYS:
                    grown = np.zeros(n, dtype)
                    grown[: self.used] = getattr(self, name)[: self.used]
                    setattr(self, name, grown)
            old, oldcap = int(self.base[p]), int(self.cap[p])
            for name, _ in self.SLOT_ARRAYS:
                arr = getattr(self, name)
                arr[self.used: self.used + oldcap] = arr[old: old + oldcap]
            self.base[p], self.cap[p] = self.used, size
            self.used += size

    def flush(self) -> None:
        if not self.nbuf:
            return
        n, tests = self.nbuf, self.tests
        pid = np.repeat(np.fromiter(self.line_pid, np.int64, len(self.line_pid)),
                        np.fromiter(self.line_len, np.int64, len(self.line_len)))
        f = _FIELD
        idx = np.fromiter(map(f["index"], tests), np.int64, n)
        code = np.fromiter(map(_code, map(f["status"], tests)), np.int64, n)
        trunc = np.fromiter(map(f["truncated"], tests), bool, n)
        ptok = np.fromiter(map(f["prompt_tokens"], tests), np.int64, n)
        ctok = np.fromiter(map(f["completion_tokens"], tests), np.int64, n)  # as recorded (compression sample)
        guess = np.fromiter(map(f["guess_chance"], tests), np.float64, n)
        qk = np.fromiter(map(_QKEY, map(f["question"], tests)), np.int64, n).view(np.uint64)
        self.tests, self.line_pid, self.line_len, self.nbuf = [], [], [], 0
        where = None  # positions in `tests` of the rows kept below, when some are dropped (none: the
        # decoder has checked every field's range)
        if not pid.size:
            return
        tok = np.maximum(ctok, 0)
        self._reserve(pid, idx)
        slot = self.base[pid] + idx
        answered = code != ERROR
        self.state[slot[~answered]] |= ERROR_BIT
        a = np.flatnonzero(answered)
        s = slot[a]
        if self.scratch.size < self.state.size:
            self.scratch = np.zeros(self.state.size, np.int64)
        pos = np.arange(s.size)
        self.scratch[s] = pos  # with a repeated slot, at least one of its positions is overwritten
        if (self.scratch[s] != pos).any():  # a test index repeated within the chunk: first one wins
            _, first = np.unique(s, return_index=True)
            fresh = np.zeros(a.size, bool)
            fresh[first] = True
            fresh &= (self.state[s] & ANSWERED_BIT) == 0
        else:
            fresh = (self.state[s] & ANSWERED_BIT) == 0
        P = len(self.keys)
        if not fresh.all():
            self.dups[:P] += np.bincount(pid[a[~fresh]], minlength=P)
        sel = a[fresh]
        self.state[slot[sel]] |= ANSWERED_BIT
        q = qk[sel]
        has = np.flatnonzero(q)
        if has.size:  # repeated questions: kept (the index is answered) but not counted
            self.qk[slot[sel[has]]] = q[has]
            rep = self._repeats(pid[sel[has]], idx[sel[has]], q[has])
            if rep is not None:
                self.qdups[:P] += np.bincount(pid[sel[has[rep]]], minlength=P)
                keep = np.ones(sel.size, bool)
                keep[has[rep]] = False
                sel = sel[keep]
        p, tr = pid[sel], trunc[sel]
        outcome = np.where(tr, forensics.TRUNCATED, code[sel])
        cs = slot[sel]  # what a counted test added, to take it out if a lower index repeats its question
        self.state[cs] |= COUNTED_BIT
        self.s_out[cs], self.s_ctok[cs], self.s_ptok[cs], self.s_guess[cs] = outcome, tok[sel], ptok[sel], guess[sel]
        po = p * 4 + outcome
        self.counts[:P] += np.bincount(po, minlength=4 * P).reshape(P, 4)
        self.guess[:P] += np.bincount(p * 2 + tr, weights=guess[sel], minlength=2 * P).reshape(P, 2)
        self.ptok[:P] += np.bincount(p, weights=ptok[sel], minlength=P).astype(np.int64)
        c = tok[sel]
        self.ctok[:P] += np.bincount(po, weights=c, minlength=4 * P).reshape(P, 4).astype(np.int64)
        bucket = np.minimum(c // forensics.HAZARD_BUCKET, forensics.HAZARD_MAX_BUCKETS - 1)  # last: overflow
        if bucket.size and int(bucket.max()) >= self.hazard.shape[2]:
            nb = max(2 * self.hazard.shape[2], int(bucket.max()) + 1)
            grown = np.zeros((self.hazard.shape[0], 4, nb), np.int64)
            grown[:, :, : self.hazard.shape[2]] = self.hazard
            self.hazard = grown
        flat = self.hazard.reshape(-1)
        cells = po * self.hazard.shape[2] + bucket
        if 4 * P * self.hazard.shape[2] <= 8 * cells.size:
            flat[: 4 * P * self.hazard.shape[2]] += np.bincount(cells, minlength=4 * P * self.hazard.shape[2])
        else:
            np.add.at(flat, cells, 1)
        # compression sample: the kept (first answered) occurrence of every index < COMPRESSION_SAMPLE
        low = np.flatnonzero(idx[sel] < forensics.COMPRESSION_SAMPLE)
        if low.size:
            rows = sel[low] if where is None else where[sel[low]]
            if self.cctx is None:
                self.cctx = forensics.compressor()
            cctx, size, comp = self.cctx, forensics.compressed_size, self.comp
            for j, q, i, o, k in zip(rows.tolist(), p[low].tolist(), idx[sel[low]].tolist(), outcome[low].tolist(),
                                     ctok[sel[low]].tolist(), strict=True):
                comp[q][i] = (o, *size(cctx, _answer_bytes(tests[j].answer)), k)

    def _repeats(self, p: np.ndarray, i: np.ndarray, q: np.ndarray) -> np.ndarray | None:
        """Mask of the kept tests (point p, index i, question key q) whose question the point has
        already asked at a lower index; None when there is none (the usual case: no Python loop).
        A test of this chunk that comes before the index counted so far for its question takes its
        place: the earlier counted test is taken out of the point's aggregates (`_uncount`)."""
        if self.bloom is None:
            self.bloom = np.zeros(BLOOM, np.uint8)
        h = ((q ^ (p.astype(np.uint64) * _GOLDEN)) & np.uint64(BLOOM - 1)).astype(np.intp)
        cand = self.bloom[h] != 0  # maybe seen in an earlier chunk
        self.bloom[h] = 1
        hs = np.sort(h)
        shared = hs[1:][hs[1:] == hs[:-1]]  # filter slots shared within the chunk
        if shared.size:
            cand |= np.isin(h, shared)
        c = np.flatnonzero(cand)
        if not c.size:
            return None
        rep = np.zeros(h.size, bool)
        state, qk = self.state, self.qk
        for j in c[np.lexsort((i[c], q[c], p[c]))].tolist():  # per point and question, lowest index first
            pj, x = int(p[j]), int(i[j])
            lo = int(self.base[pj])
            hi = lo + int(self.cap[pj])
            w = np.flatnonzero((qk[lo:hi] == q[j]) & ((state[lo:hi] & COUNTED_BIT) != 0))
            if not w.size:
                state[lo + x] |= COUNTED_BIT
            elif w[0] < x:
                rep[j] = True
            else:  # counted in an earlier chunk, but this index comes first: swap them
                self._uncount(pj, int(w[0]))
                state[lo + x] |= COUNTED_BIT
        return rep if rep.any() else None

    def _uncount(self, pid: int, index: int) -> None:
        """Take a counted test back out of its point's aggregates (it turned out to be a repeat)."""
        sl = int(self.base[pid]) + index
        o, k = int(self.s_out[sl]), int(self.s_ctok[sl])
        self.counts[pid, o] -= 1
        self.guess[pid, int(o == forensics.TRUNCATED)] -= self.s_guess[sl]
        self.ptok[pid] -= int(self.s_ptok[sl])
        self.ctok[pid, o] -= k
        self.hazard[pid, o, min(k // forensics.HAZARD_BUCKET, forensics.HAZARD_MAX_BUCKETS - 1)] -= 1
        self.comp[pid].pop(index, None)
        self.qdups[pid] += 1
        self.state[sl] &= ~np.uint8(COUNTED_BIT)

    def partials(self) -> dict[Key, PointAcc]:
        self.flush()
        out = {}
        for pid, key in enumerate(self.keys):
            lo, hi = self.base[pid], self.base[pid] + self.cap[pid]
            st = self.state[lo:hi]
            nz = np.flatnonzero(st)
            end = int(nz[-1]) + 1 if nz.size else 0
            qk = self.qk[lo:hi][:end]
            counted = (st[:end] & COUNTED_BIT) != 0
            correct = counted & (self.s_out[lo:hi][:end] == 0)  # outcome 0 = correct (untruncated)
            out[key] = PointAcc(key, self.manifold[pid], st[:end] & np.uint8(ANSWERED_BIT | ERROR_BIT),
                                self.counts[pid].copy(), self.guess[pid].copy(), int(self.ptok[pid]),
                                self.ctok[pid].copy(), self.hazard[pid].copy(), self.comp[pid], int(self.dups[pid]),
                                ((qk & np.uint64(0xFFFFFFFF)) | (qk != 0)).astype(np.uint32), int(self.qdups[pid]),
                                counted, correct, self.locs[pid])
        return out

