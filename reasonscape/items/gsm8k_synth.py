"""A synthetic GSM8K-format item file: word problems whose reference solutions annotate every
calculation as GSM8K does (`48/2 = <<48/2=24>>24`) and end in `#### <answer>`.

Why: the item workflow (docs/items.md) must run offline and in tests, with a known ground truth. Each
item states a starting quantity and then k operations (k = 2..8, the `steps` field); its solution has
exactly one `<<calc>>` block per operation, so `count(answer, "<<[^>]*>>")` == steps. Item i is drawn
from its own RNG (seeded by the seed and i), so `--count N` is a prefix of any larger count and the
file is identical on every machine.

    python -m reasonscape.items.gsm8k_synth --out data/items/gsm8k-synth.jsonl --count 4000 --seed 0
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson

from reasonscape.errors import InputError

#: Step counts 2..8 weighted roughly like GSM8K's (most 2-4, a tail of long ones).
STEP_WEIGHTS = {2: 24, 3: 26, 4: 20, 5: 13, 6: 8, 7: 5, 8: 4}
MAX_COUNT = 1_000_000
SHIPPED = {"count": 4000, "seed": 0, "path": "data/items/gsm8k-synth.jsonl"}

_NAMES = ("Natalia", "Weng", "Betty", "Julie", "James", "Albert", "Mark", "Ken", "Alexis", "Tina", "Randy",
          "Joy", "Marco", "Priya", "Omar", "Lena", "Hiro", "Sofia", "Dmitri", "Amara", "Carlos", "Mei",
          "Jamal", "Greta", "Ravi", "Chloe", "Tomas", "Aisha", "Noah", "Ingrid")
_PRONOUN = {n: ("she" if n in {"Natalia", "Betty", "Julie", "Alexis", "Tina", "Joy", "Priya", "Lena", "Sofia",
                                "Amara", "Mei", "Greta", "Chloe", "Aisha", "Ingrid"} else "he") for n in _NAMES}
#: (plural noun, where they are kept, a verb for getting more, a verb for losing some)
_THEMES = (
    ("clips", "in a drawer", "makes", "gives away"), ("marbles", "in a jar", "wins", "loses"),
    ("stickers", "in an album", "buys", "trades away"), ("apples", "in a basket", "picks", "eats"),
    ("books", "on a shelf", "buys", "donates"), ("cookies", "on a tray", "bakes", "shares"),
    ("stamps", "in a binder", "collects", "mails"), ("seashells", "in a bucket", "finds", "drops"),
    ("dollars", "in a savings account", "earns", "spends"), ("pencils", "in a case", "gets", "lends out"),
    ("eggs", "in the fridge", "collects", "uses"), ("cards", "in a box", "receives", "gives away"),
    ("plants", "in the garden", "plants", "removes"), ("beads", "in a bag", "buys", "uses"),
)


def _add(rng: random.Random, v: int, who: str, noun: str, more: str, less: str) -> tuple[str, str, int]:
    x = rng.randint(2, 60)
    r = v + x
    q = rng.choice((f"Then {_PRONOUN[who]} {more} {x} more {noun}.",
                    f"A friend gives {who} {x} more {noun}.",
                    f"The next day {_PRONOUN[who]} {more} another {x} {noun}."))
    return q, f"{who} gets {x} more, so {_PRONOUN[who]} has {v}+{x} = <<{v}+{x}={r}>>{r} {noun}.", r


def _sub(rng: random.Random, v: int, who: str, noun: str, more: str, less: str) -> tuple[str, str, int]:
    x = rng.randint(1, max(1, v - 1))
    r = v - x
    q = rng.choice((f"Then {_PRONOUN[who]} {less} {x} of them.", f"After that, {who} {less} {x} {noun}."))
    return q, f"After that {who} has {v}-{x} = <<{v}-{x}={r}>>{r} {noun} left.", r


def _mul(rng: random.Random, v: int, who: str, noun: str, more: str, less: str) -> tuple[str, str, int]:
    k = rng.choice([k for k in (2, 3, 4, 5) if v * k <= 20000] or [2])
    r = v * k
    word = {2: "twice", 3: "three times", 4: "four times", 5: "five times"}[k]
    q = rng.choice((f"Then the number of {noun} {who} has becomes {word} as large.",
                    f"Later {_PRONOUN[who]} ends up with {word} as many {noun} as before."))
    return q, f"Now {who} has {v}*{k} = <<{v}*{k}={r}>>{r} {noun}.", r


def _div(rng: random.Random, v: int, who: str, noun: str, more: str, less: str) -> tuple[str, str, int]:
    k = rng.choice([k for k in (2, 3, 4, 5) if v % k == 0])
    r = v // k
    q = rng.choice((f"Then {_PRONOUN[who]} splits the {noun} equally into {k} groups and keeps one group.",
                    f"{who} divides the {noun} evenly among {k} boxes and keeps only one box."))
    return q, f"One of {k} equal groups holds {v}/{k} = <<{v}/{k}={r}>>{r} {noun}.", r


def make_item(seed: int, index: int) -> dict:
    """Item `index` of the file for `seed`: {id, question, answer, steps} (pure function of both)."""
    rng = random.Random(f"gsm8k-synth:{seed}:{index}")
    steps = rng.choices(list(STEP_WEIGHTS), weights=list(STEP_WEIGHTS.values()))[0]
    who = rng.choice(_NAMES)
    noun, place, more, less = rng.choice(_THEMES)
    v = rng.randint(5, 90)
    question = [f"{who} has {v} {noun} {place}."]
    solution = []
    for _ in range(steps):
        ops = [_add, _mul] if v < 2 else [_add, _sub, _sub, _mul]
        if v > 20000:
            ops = [_sub, _sub]
        if any(v % k == 0 for k in (2, 3, 4, 5)) and v >= 4:
            ops.append(_div)
        q, s, v = rng.choice(ops)(rng, v, who, noun, more, less)
        question.append(q)
        solution.append(s)
    question.append(rng.choice((f"How many {noun} does {who} have now?",
                                f"How many {noun} does {who} end up with?")))
    solution.append(f"#### {v}")
    return {"id": f"synth-{index:05d}", "question": " ".join(question), "answer": "\n".join(solution),
            "steps": steps}


def generate(count: int, seed: int) -> Iterator[dict]:
    """The first `count` items for `seed` (a question that repeats an earlier one is skipped)."""
    seen: set[str] = set()
    index = 0
    made = 0
    while made < count:
        item = make_item(seed, index)
        index += 1
        if item["question"] in seen:
            continue
        seen.add(item["question"])
        item["id"] = f"synth-{made:05d}"
        made += 1
        yield item


def render(count: int, seed: int) -> bytes:
    """The JSONL file's bytes (one item per line, keys in a fixed order)."""
    return b"".join(orjson.dumps(item) + b"\n" for item in generate(count, seed))


def write(out: Path, count: int, seed: int) -> int:
    """Write the file atomically (temporary file + rename); returns its size in bytes."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        raise InputError(f"--count: must be a whole number in 1..{MAX_COUNT:,}, got {count!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise InputError(f"--seed: must be a whole number in 0..2**63-1, got {seed!r}")
    out = Path(out)
    if out.is_dir():
        raise InputError(f"--out: {out} is a directory (give a file name such as {out / 'items.jsonl'})")
    if not out.parent.is_dir():
        raise InputError(f"--out: {out}: folder {out.parent} does not exist")
    data = render(count, seed)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"--out: {out}: cannot write ({exc.strerror or type(exc).__name__})") from None
    return len(data)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m reasonscape.items.gsm8k_synth",
                                 description="Write a synthetic GSM8K-format item file (JSONL).")
    ap.add_argument("--out", required=True, help="output .jsonl path")
    ap.add_argument("--count", type=int, default=SHIPPED["count"], help="number of items (default 4000)")
    ap.add_argument("--seed", type=int, default=SHIPPED["seed"], help="generation seed (default 0)")
    args = ap.parse_args(argv)
    try:
        size = write(Path(args.out), args.count, args.seed)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"wrote {args.count:,} items ({size:,} bytes) to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
