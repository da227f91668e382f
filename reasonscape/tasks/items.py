"""`items:<name>`: a task whose tests are the items of a collection (JSONL, JSON array, Parquet or a
Hugging Face dataset) instead of a generator's draws.

Why a task: an item file with a difficulty per item (GSM8K: the number of `<<calc>>` blocks in the
reference solution) is a manifold with one axis, `bucket`; a point is a bucket and its tests are the
bucket's items in a seeded order, drawn without replacement. So coordinate seeding, the prefix property
(any count is a prefix of a larger one), resume, the statistics and every analyze verb work unchanged.

The config entry's `source:` block says where the items are and how to read them (docs/items.md is the
reference; reading and indexing live in reasonscape/items/source.py). `bind` (called by
`manifold.load_config`) parses it, loads and indexes the file once (cached by path, mtime and size) and
registers the bound task; `resolve` hands out the task, bound or not:
grading needs only a test's meta (`answer_type`), so evaluate regrades without any config.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, create_model

from reasonscape.errors import InputError
from reasonscape.items.source import (
    ANSWER_FORMATS,
    DEFAULT_DESCRIPTION,
    Bucket,
    ItemSet,
    SourceSpec,
    load_items,
    parse_source,
)
from reasonscape.tasks.answers import canonical_number, normalize_string, parse_number
from reasonscape.tasks.base import Task, TaskParams, TestCase

# -- the task ------------------------------------------------------------------------------------------

class UnboundParams(TaskParams):
    bucket: str = Field(min_length=1, max_length=32, description="bucket label (declared by the source)")


def _params_model(member: str, labels: tuple[str, ...]) -> type[TaskParams]:
    """A params model whose one field, `bucket`, must be one of the declared labels (strict)."""
    return create_model(  # type: ignore[call-overload, no-any-return]
        f"ItemsParams_{re.sub(r'[^A-Za-z0-9_]', '_', member)}", __base__=TaskParams,
        bucket=(Literal[labels], Field(description="bucket label (declared by source.buckets)")),
    )


def draw_order(n: int, seed: int) -> list[int]:
    """A seeded permutation of range(n): the order a point draws its bucket's items in.

    NumPy's legacy RandomState stream is frozen (unlike Generator's), so the order is the same on every
    machine and NumPy version; the whole permutation is one C call, and any count is a prefix of a larger
    one because the permutation does not depend on the count. The seed's 64 bits are the key words.
    """
    s = int(seed) % (1 << 64)
    return np.random.RandomState([s & 0xFFFFFFFF, s >> 32]).permutation(n).tolist()


def _bucket_tests(it: ItemSet, label: str, rows: list[int], seed: int) -> Iterator[TestCase]:
    """Tests of one bucket in `draw_order`, with the meta built inline (this is the hot loop)."""
    questions, refs, ids, values, extras = it.questions, it.references, it.ids, it.difficulty_values, it.extras
    answer_type = it.spec.answer_type
    for j in draw_order(len(rows), seed):
        k = rows[j]
        meta = {"item_id": ids[k], "bucket": label, "difficulty": values[k], "answer_type": answer_type}
        if extras is not None:
            meta.update(extras[k])  # type: ignore[arg-type]
        yield TestCase(questions[k], refs[k], 0.0, meta)


class ItemsTask(Task):
    """An `items:<name>` task: bound to a source (generation and grading) or unbound (grading only)."""

    answer_needs_meta = True

    def __init__(self, member: str, items: ItemSet | None = None, spec: SourceSpec | None = None):
        self.member = member
        self.name = f"items:{member}"
        self.label = member
        self.items = items
        if items is None:
            self.Params = UnboundParams
            self.description = DEFAULT_DESCRIPTION
            self.answer_format = ANSWER_FORMATS["string"]
            self.answer_type = "string"
            self._rank: dict[str, float] = {}
        else:
            spec = spec or items.spec  # the binding config's spec (the cached ItemSet may be shared)
            self.Params = _params_model(member, tuple(b.label for b in spec.buckets))
            self.description = spec.description
            self.answer_format = spec.answer_format
            self.answer_type = spec.answer_type
            self._rank = _bucket_difficulty(spec.buckets)

    def _bound(self) -> ItemSet:
        if self.items is None:
            raise InputError(f"task '{self.name}' has no source: declare source: (path: or hf:) in the config's "
                             "task entry (docs/items.md)")
        return self.items

    def _case(self, k: int) -> TestCase:
        it = self.items
        return TestCase(it.questions[k], it.references[k], 0.0, it.meta(k))  # type: ignore[union-attr]

    def generate(self, rng: random.Random, params: TaskParams) -> TestCase:
        """One item of the bucket drawn with replacement (few-shot examples; tests use iter_tests)."""
        rows = self._bound().bucket_rows[params.bucket]  # type: ignore[attr-defined]
        return self._case(rows[rng.randrange(len(rows))])

    def iter_tests(self, seed: int, params: TaskParams) -> Iterator[TestCase]:
        """The bucket's items in a seeded order without replacement; the sequence ends with the bucket."""
        it = self._bound()
        label = params.bucket  # type: ignore[attr-defined]
        return _bucket_tests(it, label, it.bucket_rows[label], seed)

    def parse_answer(self, text: str, meta: dict[str, Any] | None = None) -> str | None:
        kind = meta.get("answer_type") if isinstance(meta, dict) else None
        if kind not in ("number", "string"):
            kind = self.answer_type
        return parse_number(text) if kind == "number" else normalize_string(text)

    def wrong_answer(self, rng: random.Random, test: TestCase) -> str:
        if test.meta.get("answer_type") == "number":
            v = Decimal(test.reference)
            step = rng.choice((-1, 1)) * rng.randint(1, max(2, int(abs(v)) // 4 + 1))
            return canonical_number(str(v + step)) or test.reference + "1"
        return test.reference + "x"

    def difficulty(self, params: TaskParams) -> float:
        """The bucket's place on the sim's axis: 0.2 + 0.8 * (r - r_min) / (r_max - r_min), r = the bucket's
        representative difficulty (midpoint of [low, high]; low when high is open, high when low is open),
        so the easiest bucket is 0.2 and the hardest 1.0 whatever the expression's scale (docs/items.md)."""
        return self._rank.get(getattr(params, "bucket", ""), 0.5)


def _bucket_difficulty(buckets: tuple[Bucket, ...]) -> dict[str, float]:
    reps = {}
    for b in buckets:
        if b.low is not None and b.high is not None:
            reps[b.label] = (b.low + b.high) / 2
        else:
            reps[b.label] = b.low if b.low is not None else (b.high if b.high is not None else 0.0)
    lo, hi = min(reps.values()), max(reps.values())
    if hi == lo:
        return {k: 0.5 for k in reps}
    return {k: 0.2 + 0.8 * (v - lo) / (hi - lo) for k, v in reps.items()}


_TASKS: dict[str, ItemsTask] = {}


def resolve(member: str) -> Task:
    """The `items:<member>` task: the one a config bound last, else an unbound one that grades only."""
    task = _TASKS.get(member)
    if task is None:
        task = _TASKS[member] = ItemsTask(member)
    return task


def bind(member: str, source: dict[str, Any] | None, base_dir: Path, where: str) -> None:
    """Parse a config entry's `source:`, load and index its items, and register the bound task."""
    if source is None:
        raise InputError(f"{where}: task 'items:{member}' needs a source: block (path: FILE.jsonl or hf: DATASET, "
                         "with difficulty: and buckets:; see docs/items.md)")
    spec = parse_source(source, Path(base_dir), where)
    _TASKS[member] = ItemsTask(member, load_items(spec), spec)


def bound_items(member: str) -> ItemSet | None:
    """The indexed items behind `items:<member>` (None when no config bound it in this process)."""
    task = _TASKS.get(member)
    return task.items if task is not None else None
