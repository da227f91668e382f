"""Print one golden item as a JSONL line, built from a real generated test.

    python tests/golden/new_item.py --task sort --params '{"length": 4}' --seed 7 --index 0 \
        --answer-file reply.txt --status correct --extracted-reference --note "Answer: then a list" \
        >> tests/golden/hand.jsonl

The question, reference and meta come from the task's generator (reasonscape.tasks.base.generate_tests),
so the item is a test the runner could have asked. The label is yours: what a careful human reads as
the final answer. Never take it from the grader.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from reasonscape.errors import InputError
from reasonscape.tasks.base import generate_tests
from reasonscape.tasks.registry import get_task


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", required=True)
    ap.add_argument("--params", default="{}", help="JSON object of the task's params")
    ap.add_argument("--seed", type=int, default=20261201)
    ap.add_argument("--index", type=int, default=0, help="position in the point's test sequence")
    ap.add_argument("--answer-file", required=True, help="file holding the model's reply, verbatim")
    ap.add_argument("--status", required=True, choices=("correct", "incorrect", "invalid"))
    ap.add_argument("--extracted", help="canonical answer a human reads (incorrect items)")
    ap.add_argument("--extracted-reference", action="store_true", help="the reference (correct items)")
    ap.add_argument("--truncated", action="store_true", help="the reply was cut by the token limit")
    ap.add_argument("--source", default="hand")
    ap.add_argument("--note", required=True, help="what the answer does, or why it is invalid")
    a = ap.parse_args(argv)
    try:
        params = json.loads(a.params)
        if not isinstance(params, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        raise InputError(f"--params: {exc}") from None
    task = get_task(a.task)
    test = generate_tests(task, params, a.seed, a.index + 1, start=a.index)[0]
    extracted = test.reference if a.extracted_reference else a.extracted
    if (a.status == "invalid") != (extracted is None):
        raise InputError("--extracted (or --extracted-reference) is required unless --status invalid")
    item = {"task": a.task, "source": a.source, "note": a.note, "params": params, "seed": a.seed,
            "index": a.index, "question": test.question, "reference": test.reference, "meta": test.meta,
            "answer": Path(a.answer_file).read_text(encoding="utf-8"), "truncated": a.truncated,
            "expected_status": a.status, "expected_extracted": extracted}
    print(json.dumps(item, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (InputError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
