"""push / pull / status / prune of result folders and dataset DBs as content-addressed blobs.

Layout: `data/manifest.json` (tracked), `data/.blobs/<aa>/<sha256>.tar.zst` (the local blob cache),
`data/.blobs/state.json` (which local folder/DB is known to equal which tree, keyed by a cheap stat
signature, so status and pull need not re-read unchanged data), `data/.blobs/lock` (one data.py at a time
per checkout: two pulls at once queue instead of racing), `data/.blobs/tmp/` (downloads in flight).

Crash safety (kill -9 anywhere): a download lands in tmp/ and is renamed into the cache only after its
sha256 matched the manifest; a folder is unpacked into a hidden sibling and swapped in with one rename (an
atomic exchange when one replaces an existing folder); the manifest and state are replaced atomically and
a manifest entry is written only after its blob is on the remote. Leftovers of a killed run are removed by
the next one, which then finishes the work.
"""

from __future__ import annotations

import ctypes
import fcntl
import glob as globmod
import hashlib
import json
import os
import shutil
import stat
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reasonscape.blobstore.archive import UnsafeArchive, file_sha256, pack, tree_hash, tree_members, unpack
from reasonscape.blobstore.manifest import Entry, Manifest, load_manifest, save_manifest
from reasonscape.blobstore.remotes import PARQUET_EXT, Remote
from reasonscape.errors import InputError, RuntimeFailure

SCOPES = ("eval", "cohort", "dataset")


class _DamagedCache(RuntimeFailure):
    """A cached blob whose bytes no longer hash to its name."""


# ----------------------------------------------------------------------------------------------- progress
def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


class Progress:
    """Bytes done of a total, rate and ETA on stderr (a live line on a terminal, else a line every 5 s)."""

    def __init__(self, label: str, total: int, quiet: bool):
        self.label, self.total, self.quiet = label, max(total, 0), quiet
        self.done = 0
        self.start = self.last = time.monotonic()
        self.tty = sys.stderr.isatty()

    def __call__(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if not self.quiet and now - self.last >= (0.2 if self.tty else 5.0):
            self.last = now
            self._show(now, final=False)

    def line(self, now: float) -> str:
        dt = max(now - self.start, 1e-9)
        rate = self.done / dt
        eta = (self.total - self.done) / rate if rate > 0 and self.total > self.done else 0.0
        total = f"/{human(self.total)}" if self.total else ""
        return f"{self.label}: {human(self.done)}{total}, {human(rate)}/s, ETA {eta:.0f}s"

    def _show(self, now: float, final: bool) -> None:
        text = self.line(now)
        if self.tty:
            sys.stderr.write("\r\x1b[K" + text + ("\n" if final else ""))
        else:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()

    def finish(self) -> None:
        if not self.quiet and (self.tty or self.done):
            self._show(time.monotonic(), final=True)


def log(quiet: bool, text: str) -> None:
    if not quiet:
        print(text, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------- items
@dataclass
class Item:
    """A thing that becomes one blob: a result folder or a dataset DB, by repository-relative path."""

    path: str
    kind: str  # "results" | "db"
    cohort: str | None = None
    evals: list[str] = field(default_factory=list)
    dataset: str | None = None


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False when unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return fn(-100, os.fsencode(a), -100, os.fsencode(b), 2) == 0


def signature(path: Path) -> str | None:
    """Cheap identity of a local folder/file (names, sizes, mtimes, inodes); None when it does not exist."""
    if not path.exists():
        return None
    h = hashlib.sha256()
    entries = [(".", path)] if path.is_file() else tree_members(path)
    for name, p in entries:
        st = os.lstat(p)
        h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\0{stat.S_IFMT(st.st_mode)}\0"
                 f"{st.st_mode & 0o111}\n".encode())
    return h.hexdigest()


class Store:
    def __init__(self, data_dir: Path, remote: Remote | None, quiet: bool = False):
        self.data_dir = Path(data_dir).resolve()
        if not self.data_dir.is_dir():
            raise InputError(f"{data_dir}: data directory not found")
        self.root = self.data_dir.parent
        self.manifest_path = self.data_dir / "manifest.json"
        self.blobs = self.data_dir / ".blobs"
        self.tmp = self.blobs / "tmp"
        self.state_path = self.blobs / "state.json"
        self.remote = remote
        self.quiet = quiet

    # ---------------------------------------------------------------------------------------- helpers
    def rel(self, path: Path | str) -> str:
        p = Path(path).resolve()
        try:
            return p.relative_to(self.root).as_posix()
        except ValueError:
            raise InputError(f"{path}: is outside the repository {self.root} (data dir {self.data_dir})") from None

    def abs(self, rel: str) -> Path:
        return self.root / rel

    def cache_path(self, sha: str) -> Path:
        return self.blobs / sha[:2] / f"{sha}.tar.zst"

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold data/.blobs/lock; the kernel drops it when the process dies, so a killed run never blocks."""
        self.blobs.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.blobs / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log(self.quiet, f"waiting for another data.py run (lock {self.blobs / 'lock'})")
                fcntl.flock(fd, fcntl.LOCK_EX)
            shutil.rmtree(self.tmp, ignore_errors=True)  # whoever wrote here died: we hold the lock
            self.tmp.mkdir(parents=True, exist_ok=True)
            yield
        finally:
            os.close(fd)

    def load_state(self) -> dict[str, dict[str, str]]:
        try:
            raw = json.loads(self.state_path.read_text(encoding="utf-8"))
            return raw if isinstance(raw, dict) else {}
        except (OSError, ValueError):
            return {}

    def save_state(self, state: dict[str, dict[str, str]]) -> None:
        tmp = self.state_path.with_name(f"state.json.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.state_path)

    def local_tree(self, item_path: str, kind: str, state: dict[str, dict[str, str]]) -> str | None:
        """Tree sha256 of the local copy (None when absent), from state when its signature still holds."""
        p = self.abs(item_path)
        sig = signature(p)
        if sig is None:
            return None
        rec = state.get(item_path)
        if rec and rec.get("sig") == sig:
            return rec.get("tree")
        tree, _, _ = tree_hash(p, single_file=(kind == "db"))
        state[item_path] = {"sig": sig, "tree": tree}
        return tree

    # -------------------------------------------------------------------------------------- scopes
    def local_items(self, scope: str, target: str, full: bool = False) -> list[Item]:
        """What `push` packs: the result folders of an eval/cohort, or a dataset's DB (+ cohorts)."""
        from reasonscape.datasets import find_cohorts, load_cohort, load_dataset

        if scope == "eval":
            for cp in find_cohorts(self.data_dir):
                cohort = load_cohort(cp)
                for e in cohort.evals:
                    if e.eval_id == target:
                        return self._cohort_items(cohort, only=target)
            raise InputError(f"eval {target!r}: no evals.json under {self.data_dir} lists it")
        if scope == "cohort":
            return self._cohort_items(load_cohort(target))
        ds = load_dataset(target)
        if not ds.db.is_file():
            raise InputError(f"{target}: its PointsDB {ds.db} does not exist (run: python evaluate.py --dataset "
                             f"{target})")
        wal = ds.db.with_name(ds.db.name + ".wal")
        if wal.exists():
            raise InputError(f"{wal}: the DB has an unfinished write-ahead log; let evaluate.py finish first")
        items = [Item(self.rel(ds.db), "db", dataset=self.rel(ds.path))]
        if full:
            for c in ds.cohorts:
                items += self._cohort_items(c)
        return _dedupe(items)

    def _cohort_items(self, cohort: Any, only: str | None = None) -> list[Item]:
        from reasonscape.records import read_json

        crel = self.rel(cohort.dir)
        folders: dict[str, Item] = {}
        for e in cohort.evals:
            for f in e.result_files():
                folder = f.parent
                if (folder / "evals.json").exists():
                    raise InputError(f"{f}: result files must sit in their own folder, not beside evals.json")
                meta = folder / "metadata.json"
                if meta.is_file():
                    try:
                        if _identity(read_json(meta)) not in (None, (e.model, e.template, e.sampler)):
                            continue
                    except Exception:  # an unreadable metadata.json does not change which folder it is
                        pass
                item = folders.setdefault(self.rel(folder), Item(self.rel(folder), "results", cohort=crel))
                if e.eval_id not in item.evals:
                    item.evals.append(e.eval_id)
        items = [i for i in folders.values() if only is None or only in i.evals]
        if only is None and not items:
            raise InputError(f"{cohort.path}: no result folder of this cohort exists locally; nothing to push")
        return sorted(items, key=lambda i: i.path)

    def manifest_items(self, manifest: Manifest, scope: str | None, target: str | None,
                       full: bool = False) -> list[tuple[str, Entry]]:
        """What `pull`/`status` act on: manifest entries of an eval, a cohort or a dataset (all: None)."""
        entries = manifest.entries
        if scope is None:
            return sorted(entries.items())
        if scope == "eval":
            out = [(k, e) for k, e in entries.items() if target in e.evals]
            if not out:
                known = sorted({x for e in entries.values() for x in e.evals})
                from reasonscape.errors import close_matches_hint

                raise InputError(f"eval {target!r}: not in {self.manifest_path}{close_matches_hint(target, known)}")
            return sorted(out)
        if scope == "cohort":
            from reasonscape.datasets import load_cohort

            crel = self.rel(load_cohort(target).dir)
            return sorted((k, e) for k, e in entries.items() if e.cohort == crel)
        from reasonscape.datasets import load_dataset

        ds = load_dataset(target)
        drel, dbrel = self.rel(ds.path), self.rel(ds.db)
        out = [(k, e) for k, e in entries.items() if e.kind == "db" and (k == dbrel or e.dataset == drel)]
        if not out:
            raise InputError(f"{target}: its DB {dbrel} is not in {self.manifest_path} (push it first: "
                             f"python data.py push dataset {target})")
        if full:
            cohorts = {self.rel(c.dir) for c in ds.cohorts}
            out += [(k, e) for k, e in entries.items() if e.kind == "results" and e.cohort in cohorts]
        return sorted(dict(out).items())

    # ---------------------------------------------------------------------------------------- push
    def push(self, items: list[Item]) -> dict[str, int]:
        assert self.remote is not None
        prefix = self.rel(self.data_dir) + "/"
        for item in items:
            if not item.path.startswith(prefix):
                raise InputError(f"{item.path}: outside {prefix}; data.py shares result folders and DBs kept "
                                 f"under the data directory")
        counts = {"items": len(items), "uploaded": 0, "uploaded_bytes": 0, "unchanged": 0, "packed": 0}
        with self.locked():
            state = self.load_state()
            for item in items:
                manifest = load_manifest(self.manifest_path)
                old = manifest.entries.get(item.path)
                tree = self.local_tree(item.path, item.kind, state) if old is not None else None
                if old is not None and tree == old.tree:
                    entry = old.model_copy(update=_meta(item))
                    if self.remote.size(entry.blob) is None:
                        src = self.cache_path(entry.blob)
                        if not (src.is_file() and src.stat().st_size == entry.size):
                            entry = self._pack(item, state)
                            counts["packed"] += 1
                        self._upload(entry, item.path)
                        counts["uploaded"] += 1
                        counts["uploaded_bytes"] += entry.size
                    else:
                        counts["unchanged"] += 1
                else:
                    entry = self._pack(item, state)
                    counts["packed"] += 1
                    if self.remote.size(entry.blob) is None:
                        self._upload(entry, item.path)
                        counts["uploaded"] += 1
                        counts["uploaded_bytes"] += entry.size
                    else:
                        counts["unchanged"] += 1
                if manifest.entries.get(item.path) != entry:
                    manifest.entries[item.path] = entry
                    save_manifest(self.manifest_path, manifest)
                self.save_state(state)
        return counts

    def push_parquet(self, item: Item) -> dict[str, int]:
        """Export the DB's tables to Parquet and upload each raw, so analyze can read a remote DB column by
        column (reasonscape.blobstore.remote_db); recorded as `<db path>.parquet`."""
        from reasonscape.blobstore.remote_db import export_parquet

        assert self.remote is not None
        counts = {"uploaded": 0, "uploaded_bytes": 0, "unchanged": 0}
        with self.locked():
            out = self.tmp / f"parquet-{uuid.uuid4().hex[:8]}"
            out.mkdir()
            try:
                tables = export_parquet(self.abs(item.path), out)
                for name, (path, rows) in sorted(tables.items()):
                    sha, size = file_sha256(path), path.stat().st_size
                    if self.remote.size(sha, PARQUET_EXT) is None:
                        prog = Progress(f"push {item.path} [{name}.parquet]", size, self.quiet)
                        self.remote.put(sha, path, prog, ext=PARQUET_EXT)
                        prog.finish()
                        counts["uploaded"] += 1
                        counts["uploaded_bytes"] += size
                    else:
                        counts["unchanged"] += 1
                    tables[name] = (sha, size, rows)  # type: ignore[assignment]
            finally:
                shutil.rmtree(out, ignore_errors=True)
            spec = {n: {"blob": sha, "size": size, "rows": rows} for n, (sha, size, rows) in tables.items()}
            digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
            entry = Entry(kind="parquet", blob=digest, size=sum(t["size"] for t in spec.values()), tree=digest,
                          bytes=self.abs(item.path).stat().st_size, files=len(spec), dataset=item.dataset,
                          tables=spec)
            manifest = load_manifest(self.manifest_path)
            key = item.path + ".parquet"
            if manifest.entries.get(key) != entry:
                manifest.entries[key] = entry
                save_manifest(self.manifest_path, manifest)
        return counts

    def _pack(self, item: Item, state: dict[str, dict[str, str]]) -> Entry:
        src = self.abs(item.path)
        sig = signature(src)
        total = src.stat().st_size if src.is_file() else sum(p.stat().st_size for _, p in tree_members(src)
                                                               if p.is_file())
        prog = Progress(f"pack {item.path}", total, self.quiet)
        tmp = self.tmp / f"pack-{uuid.uuid4().hex}.tar.zst"
        res = pack(src, tmp, prog, single_file=(item.kind == "db"))
        prog.finish()
        if signature(src) != sig:
            tmp.unlink(missing_ok=True)
            raise RuntimeFailure(f"{src}: changed while being packed; run push again when it is finished")
        dest = self.cache_path(res.blob)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, dest)
        state[item.path] = {"sig": sig or "", "tree": res.tree}
        return Entry(kind=item.kind, blob=res.blob, size=res.size, tree=res.tree, bytes=res.bytes, files=res.files,
                     **_meta(item))

    def _upload(self, entry: Entry, path: str) -> None:
        assert self.remote is not None
        prog = Progress(f"push {path}", entry.size, self.quiet)
        self.remote.put(entry.blob, self.cache_path(entry.blob), prog)
        prog.finish()
        got = self.remote.size(entry.blob)
        if got is not None and got not in (0, entry.size):
            raise RuntimeFailure(f"{self.remote.label}: blob {entry.blob[:12]} has {got} bytes after upload, "
                                 f"expected {entry.size}")

    # ---------------------------------------------------------------------------------------- pull
    def check_target(self, path: str, entry: Entry) -> None:
        """A manifest comes through git: its entries may only write result folders and DBs inside the data
        directory, never a cohort directory (its evals.json) or a tracked config."""
        prefix = self.rel(self.data_dir) + "/"
        target = self.abs(path)
        if not path.startswith(prefix):
            raise InputError(f"{self.manifest_path}: entries.{path}: outside {prefix} (data.py only writes there)")
        if path.endswith(".json") or (target / "evals.json").exists() or target.resolve() == self.data_dir:
            raise InputError(f"{self.manifest_path}: entries.{path}: names a config or cohort directory, not "
                             "a result folder or DB")
        if entry.kind == "results" and target.is_file():
            raise InputError(f"{self.manifest_path}: entries.{path}: is a file here, the manifest says a folder")

    def pull(self, entries: list[tuple[str, Entry]], force: bool = False) -> dict[str, Any]:
        counts: dict[str, Any] = {"items": len(entries), "pulled": 0, "up_to_date": 0, "downloaded_bytes": 0,
                                  "kept_local": []}
        with self.locked():
            state = self.load_state()
            for path, _entry in entries:
                self.check_target(path, _entry)
            for path, entry in entries:
                target = self.abs(path)
                _clean_leftovers(target)
                have = self.local_tree(path, entry.kind, state)
                if have == entry.tree:
                    counts["up_to_date"] += 1
                    continue
                if have is not None and not force:
                    counts["kept_local"].append(path)
                    log(self.quiet, f"warning: {path}: local copy differs from the manifest; kept "
                                    "(--force replaces it)")
                    continue
                counts["downloaded_bytes"] += self._materialize(entry, path, target)
                state[path] = {"sig": signature(target) or "", "tree": entry.tree}
                self.save_state(state)
                counts["pulled"] += 1
        return counts

    def _materialize(self, entry: Entry, path: str, target: Path) -> int:
        """Blob into the cache (downloads verified first), then verified again while unpacking: a cached
        copy damaged on disk is fetched once more. Returns bytes downloaded."""
        downloaded = self._fetch(entry, path)
        try:
            self._install(entry, path, target)
        except _DamagedCache:
            if downloaded:
                raise
            log(self.quiet, f"warning: {self.cache_path(entry.blob)}: damaged cache copy; fetching it again")
            self.cache_path(entry.blob).unlink(missing_ok=True)
            downloaded = self._fetch(entry, path)
            self._install(entry, path, target)
        return downloaded

    def _fetch(self, entry: Entry, path: str) -> int:
        """Make the blob present in the cache (a download is verified before it goes there); bytes
        downloaded."""
        dest = self.cache_path(entry.blob)
        if dest.is_file():
            if dest.stat().st_size == entry.size:
                return 0
            dest.unlink()
        if self.remote is None:
            raise RuntimeFailure(f"blob {entry.blob[:12]} of {path} is not cached and no remote is set")
        tmp = self.tmp / f"get-{entry.blob[:16]}-{uuid.uuid4().hex[:8]}.part"
        prog = Progress(f"pull {path}", entry.size, self.quiet)
        try:
            self.remote.get(entry.blob, tmp, prog)
            prog.finish()
            got_size = tmp.stat().st_size
            got = file_sha256(tmp)
            if got != entry.blob or got_size != entry.size:
                raise RuntimeFailure(f"{path}: blob from {self.remote.label} fails verification (sha256 "
                                     f"{got[:12]}..., {got_size} bytes; manifest says {entry.blob[:12]}..., "
                                     f"{entry.size} bytes); discarded")
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return entry.size

    def _install(self, entry: Entry, path: str, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.parent / f".{target.name}.pull-{uuid.uuid4().hex[:8]}"
        prog = Progress(f"unpack {path}", entry.bytes, self.quiet)
        cached = self.cache_path(entry.blob)
        try:
            blob = unpack(cached, staging, entry.blob, max_bytes=entry.bytes, progress=prog,
                                single_file=(entry.kind == "db"))
        except UnsafeArchive:
            if file_sha256(cached) != entry.blob:
                raise _DamagedCache(f"{cached}: sha256 does not match the manifest") from None
            raise
        prog.finish()
        if blob != entry.blob:
            shutil.rmtree(staging, ignore_errors=True)
            raise _DamagedCache(f"{cached}: sha256 {blob[:12]} does not match the manifest ({entry.blob[:12]})")
        if entry.kind == "db":
            os.replace(staging / "db", target)
            staging.rmdir()
            return
        if target.exists() or target.is_symlink():
            if _exchange(staging, target):
                shutil.rmtree(staging)
                return
            old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(target, old)
            os.rename(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(staging, target)

    # -------------------------------------------------------------------------------------- status
    def status(self, entries: list[tuple[str, Entry]], extra: list[Item] = (), check_remote: bool = True
               ) -> list[dict[str, Any]]:
        rows = []
        state = self.load_state()
        for path, e in entries:
            remote = "-"
            if e.kind == "parquet":
                local = "remote only"
                if check_remote and self.remote is not None:
                    have_all = all(self.remote.size(t.blob, PARQUET_EXT) is not None
                                   for t in (e.tables or {}).values())
                    remote = "yes" if have_all else "no"
            else:
                have = self.local_tree(path, e.kind, state)
                local = "missing" if have is None else ("ok" if have == e.tree else "modified")
                if check_remote and self.remote is not None:
                    remote = "yes" if self.remote.size(e.blob) is not None else "no"
            rows.append({"path": path, "kind": e.kind, "evals": ",".join(e.evals), "blob": e.blob[:12],
                         "size": e.size, "bytes": e.bytes, "local": local,
                         "cached": self.cache_path(e.blob).is_file(), "remote": remote})
        known = {p for p, _ in entries}
        for item in extra:
            if item.path not in known:
                rows.append({"path": item.path, "kind": item.kind, "evals": ",".join(item.evals), "blob": "",
                             "size": None, "bytes": None, "local": "not pushed", "cached": False,
                             "remote": "-"})
        if self.blobs.is_dir():
            self.save_state(state)  # atomic replace: safe beside a running pull (status takes no lock)
        return sorted(rows, key=lambda r: r["path"])

    # --------------------------------------------------------------------------------------- prune
    def prune(self, manifest: Manifest, remove: bool) -> list[tuple[Path, int]]:
        """Cached blobs no manifest entry uses (and removes them with `remove`)."""
        used = {e.blob for e in manifest.entries.values()}
        out: list[tuple[Path, int]] = []
        if not self.blobs.is_dir():
            return out
        with self.locked():
            for sub in sorted(self.blobs.iterdir()) if self.blobs.is_dir() else []:
                if not sub.is_dir() or len(sub.name) != 2:
                    continue
                for f in sorted(sub.iterdir()):
                    sha = f.name.removesuffix(".tar.zst")
                    if sha not in used:
                        out.append((f, f.stat().st_size))
                        if remove:
                            f.unlink()
                if remove and not any(sub.iterdir()):
                    sub.rmdir()
        return out


def _identity(meta: Any) -> tuple[str, str, str] | None:
    """(model, template, sampler) a metadata.json names (template/sampler as a name or {"name": ...})."""
    if not isinstance(meta, dict):
        return None
    out = []
    for k in ("model", "template", "sampler"):
        v = meta.get(k)
        v = v.get("name") if isinstance(v, dict) else v
        if not isinstance(v, str):
            return None
        out.append(v)
    return out[0], out[1], out[2]


def _meta(item: Item) -> dict[str, Any]:
    return {"cohort": item.cohort, "evals": sorted(item.evals), "dataset": item.dataset}


def _dedupe(items: list[Item]) -> list[Item]:
    seen: dict[str, Item] = {}
    for i in items:
        seen.setdefault(i.path, i)
    return list(seen.values())


def _clean_leftovers(target: Path) -> None:
    """Remove staging/old copies a killed pull left beside `target`."""
    parent = target.parent
    if not parent.is_dir():
        return
    for p in parent.glob(globmod.escape(f".{target.name}") + ".pull-*"):
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    for p in parent.glob(globmod.escape(f".{target.name}") + ".old-*"):
        shutil.rmtree(p, ignore_errors=True)
