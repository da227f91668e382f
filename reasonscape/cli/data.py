"""data.py: pull | push | status | prune result folders and PointsDB files as content-addressed blobs."""

from __future__ import annotations

import json
from pathlib import Path

import click

from reasonscape.cli.common import run_command
from reasonscape.errors import InputError

SCOPE = click.Choice(["eval", "cohort", "dataset"])


def _data_dir(explicit: str | None, target: str | None, scope: str | None) -> Path:
    """--data-dir, else the nearest ancestor named `data` of a cohort/dataset path, else ./data."""
    if explicit:
        return Path(explicit)
    if target and scope in ("cohort", "dataset"):
        p = Path(target).resolve()
        for q in (p, *p.parents):
            if q.name == "data":
                return q
    return Path("data")


def _store(data_dir: str | None, target: str | None, scope: str | None, quiet: bool, need_remote: bool = True):
    from reasonscape.blobstore import Store, load_remote

    d = _data_dir(data_dir, target, scope)
    if not d.is_dir():
        raise InputError(f"{d}: data directory not found (run from the repository root or pass --data-dir)")
    return Store(d, load_remote(d) if need_remote else None, quiet=quiet)


def _check_target(scope: str | None, target: str | None) -> None:
    if scope and not target:
        raise click.UsageError(f"missing the {scope} to act on (e.g. data.py pull {scope} "
                               f"{ {'eval': 'a1b2c3', 'cohort': 'data/r12/Model', 'dataset': 'data/r12.json'}[scope] })")
    if target and not scope:
        raise click.UsageError("give a scope before the target: eval, cohort or dataset")


def common(f):
    f = click.option("--data-dir", help="The data/ folder holding manifest.json (default: the target's, else ./data).")(f)
    f = click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")(f)
    return f


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Share result folders and PointsDB files as content-addressed blobs (local dir, S3, Hugging Face)."""


@cli.command("pull")
@click.argument("scope", type=SCOPE)
@click.argument("target", required=False)
@click.option("--full", is_flag=True, help="dataset: also every cohort result folder, not just the DB.")
@click.option("--force", is_flag=True, help="Replace local copies that differ from the manifest.")
@common
def pull_cmd(scope: str, target: str | None, full: bool, force: bool, data_dir: str | None, quiet: bool) -> None:
    """Download, verify and unpack the blobs of an eval, a cohort or a dataset (default: its DB only)."""
    from reasonscape.blobstore import load_manifest
    from reasonscape.blobstore.store import human
    from reasonscape.errors import RuntimeFailure

    _check_target(scope, target)
    store = _store(data_dir, target, scope, quiet)
    entries = store.manifest_items(load_manifest(store.manifest_path), scope, target, full)
    if not entries:
        raise InputError(f"{scope} {target}: nothing of it is in {store.manifest_path}")
    res = store.pull(entries, force=force)
    click.echo(f"pulled {res['pulled']} of {res['items']} ({res['up_to_date']} already up to date, "
               f"{human(res['downloaded_bytes'])} downloaded from {store.remote.label})")
    if res["kept_local"]:
        raise RuntimeFailure(f"{len(res['kept_local'])} local copies differ from the manifest and were kept "
                             f"({res['kept_local'][0]}...); use --force to replace them")


@cli.command("push")
@click.argument("scope", type=SCOPE)
@click.argument("target", required=False)
@click.option("--full", is_flag=True, help="dataset: also every cohort result folder, not just the DB.")
@click.option("--parquet", is_flag=True, help="dataset: also push the DB as Parquet tables that analyze can "
              "read remotely, column by column.")
@common
def push_cmd(scope: str, target: str | None, full: bool, parquet: bool, data_dir: str | None, quiet: bool) -> None:
    """Pack, upload and record in data/manifest.json; unchanged data uploads nothing."""
    from reasonscape.blobstore.store import human

    _check_target(scope, target)
    if parquet and scope != "dataset":
        raise click.UsageError("--parquet applies to 'push dataset' only")
    store = _store(data_dir, target, scope, quiet)
    items = store.local_items(scope, target, full)
    res = store.push(items)
    click.echo(f"pushed {res['items']} item(s) to {store.remote.label}: {res['uploaded']} uploaded "
               f"({human(res['uploaded_bytes'])}), {res['unchanged']} already there; "
               f"commit {store.manifest_path.relative_to(store.root)}")
    if parquet:
        pq = store.push_parquet(next(i for i in items if i.kind == "db"))
        click.echo(f"pushed the DB as Parquet: {pq['uploaded']} table(s) uploaded ({human(pq['uploaded_bytes'])}), "
                   f"{pq['unchanged']} already there")


@cli.command("status")
@click.argument("scope", type=SCOPE, required=False)
@click.argument("target", required=False)
@click.option("--full", is_flag=True, help="dataset: include the cohort result folders.")
@click.option("--format", "fmt", type=click.Choice(["markdown", "json"]), default="markdown", show_default=True)
@click.option("--offline", is_flag=True, help="Do not ask the remote (remote column shows '-').")
@common
def status_cmd(scope: str | None, target: str | None, full: bool, fmt: str, offline: bool, data_dir: str | None,
               quiet: bool) -> None:
    """Local vs remote state of each manifest item (and local result folders not pushed yet)."""
    from reasonscape.blobstore import load_manifest

    _check_target(scope, target)
    store = _store(data_dir, target, scope, quiet, need_remote=not offline)
    manifest = load_manifest(store.manifest_path)
    entries = store.manifest_items(manifest, scope, target, full) if scope != "dataset" else []
    extra = []
    if scope == "dataset":
        try:
            entries = store.manifest_items(manifest, scope, target, full)
        except InputError:
            entries = []
    if scope in ("cohort", "eval") or (scope == "dataset" and full):
        try:
            extra = store.local_items(scope, target, full)
        except InputError:
            extra = []
    rows = store.status(entries, extra, check_remote=not offline)
    if fmt == "json":
        click.echo(json.dumps({"remote": store.remote.label if store.remote else None, "items": rows}, indent=2,
                              sort_keys=True))
        return
    click.echo(_markdown(rows, store.remote.label if store.remote else "(not checked)"))


def _markdown(rows: list[dict], remote: str) -> str:
    from reasonscape.blobstore.store import human

    head = ["path", "kind", "evals", "blob", "size", "local", "cached", "remote"]
    lines = [f"remote: {remote}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        vals = [r["path"], r["kind"], r["evals"], r["blob"], human(r["size"]) if r["size"] is not None else "",
                r["local"], "yes" if r["cached"] else "no", r["remote"]]
        lines.append("| " + " | ".join(str(v).replace("|", "\\|") for v in vals) + " |")
    if not rows:
        lines.append("| (nothing in the manifest for this scope) |" + " |" * (len(head) - 1))
    return "\n".join(lines)


@cli.command("prune")
@click.option("--yes", is_flag=True, help="Remove them (default: only list what would go).")
@common
def prune_cmd(yes: bool, data_dir: str | None, quiet: bool) -> None:
    """Cached blobs in data/.blobs/ that no manifest entry uses (the remote is not touched)."""
    from reasonscape.blobstore import load_manifest
    from reasonscape.blobstore.store import human

    store = _store(data_dir, None, None, quiet, need_remote=False)
    found = store.prune(load_manifest(store.manifest_path), remove=yes)
    for path, size in found:
        click.echo(f"{'removed' if yes else 'would remove'} {path.relative_to(store.root)} ({human(size)})")
    total = human(sum(s for _, s in found))
    if yes:
        click.echo(f"removed {len(found)} blob(s), {total}")
    else:
        click.echo(f"{len(found)} unreferenced blob(s), {total}; run with --yes to remove them")


def main(args: list[str] | None = None) -> None:
    run_command(cli, args)
