"""`python -m reasonscape.items describe CONFIG`: what each `items:` task of a config holds.

Why: items whose difficulty falls in no bucket are skipped (`unbucketed: skip`), and a bucket's size
caps how many tests its point can have; this prints both, per task, before anything is run.
"""

from __future__ import annotations

import argparse
import sys

from reasonscape.errors import InputError


def describe(config: str) -> str:
    """Markdown: per items task, its source, then bucket / range / items, and the skipped count."""
    from reasonscape.manifold import load_config
    from reasonscape.tasks.registry import get_task

    cfg = load_config(config)
    out = []
    for t in cfg.tasks:
        if not t.name.startswith("items:"):
            continue
        items = get_task(t.name).items
        spec = items.spec
        out.append(f"## {t.name}\n\nsource: {items.origin} (sha256 {items.source_sha[:12]}), "
                   f"{len(items.ids):,} items, difficulty = {spec.difficulty_text}\n")
        out.append("| bucket | range | items |\n|---|---|---:|")
        for b in spec.buckets:
            out.append(f"| {b.label} | {b.range_text()} | {len(items.bucket_rows[b.label]):,} |")
        out.append(f"| (no bucket: skipped) | | {items.skipped:,} |\n")
    if not out:
        raise InputError(f"{config}: no items:<name> task in this config")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m reasonscape.items", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="verb", required=True)
    d = sub.add_parser("describe", help="per-bucket item counts of a config's items tasks")
    d.add_argument("config")
    args = ap.parse_args(argv)
    try:
        print(describe(args.config))
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
