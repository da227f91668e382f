"""Deterministic zstd-compressed tar blobs, and an unpacker that trusts nothing in the archive.

Why hand-written headers: a blob is named by the sha256 of its bytes, so the same tree must give the same
bytes on every machine. Entries are sorted by path; mtime, uid, gid, owner names are zeroed; modes are
normalised (0755 for directories and executables, 0644 otherwise); the format is GNU tar (long names as
`././@LongLink`, never pax records, which carry timestamps). zstd output does not depend on the number of
worker threads, so compression may use several.

Besides the blob hash (`blob`, of the compressed bytes) the packer returns `tree`, the sha256 of the
uncompressed tar stream: a local folder is compared with the manifest by `tree` without compressing.

Unpacking reads a stream (a blob may be larger than memory), refuses absolute paths, `..`, links that could
leave the target, device files and FIFOs, and extracts into a staging directory that is removed when
anything is wrong, so a rejected archive leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import queue
import shutil
import stat
import tarfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import zstandard

from reasonscape.errors import InputError, RuntimeFailure

BLOCK = 512
RECORD = 20 * BLOCK
CHUNK = 1 << 20
ZSTD_LEVEL = 3
#: Name of the single entry of a DB blob (the DB's own name is the manifest's business).
DB_ENTRY = "db"

Progress = Callable[[int], None]


class UnsafeArchive(InputError):
    """A blob whose tar entries would write outside the target or create something we never pack."""


@dataclass(frozen=True)
class PackResult:
    blob: str  # sha256 of the compressed bytes
    size: int  # compressed bytes
    tree: str  # sha256 of the uncompressed tar stream
    bytes: int  # bytes of file content
    files: int


class _Hasher:
    """sha256 digests computed on a background thread (hashlib releases the GIL on large updates), so the
    hashing overlaps compression and I/O; the bounded queue keeps memory flat."""

    def __init__(self, names: tuple[str, ...]):
        self.sha = {n: hashlib.sha256() for n in names}
        self.count = dict.fromkeys(names, 0)
        self.q: queue.Queue = queue.Queue(maxsize=16)
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self) -> None:
        while (item := self.q.get()) is not None:
            self.sha[item[0]].update(item[1])

    def feed(self, name: str, data) -> None:
        data = bytes(data)
        self.count[name] += len(data)
        self.q.put((name, data))

    def close(self) -> dict[str, str]:
        if self.t.is_alive():
            self.q.put(None)
            self.t.join()
        return {n: h.hexdigest() for n, h in self.sha.items()}


def tree_members(root: Path) -> list[tuple[str, Path]]:
    """(archive name, path) of every directory and regular file under `root`, sorted by name.

    A symlink, socket, FIFO or device inside a result folder is an error: blobs carry plain trees only.
    """
    root = Path(root)
    out: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            arc = name if rel == "." else f"{Path(rel).as_posix()}/{name}"
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                raise InputError(f"{p}: is a symlink; blobs carry plain files only (copy the target in)")
            if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
                raise InputError(f"{p}: is not a regular file or directory; it cannot be packed")
            out.append((arc, p))
    out.sort(key=lambda m: m[0])
    return out


def _header(name: str, path: Path | None, size: int, is_dir: bool, executable: bool) -> bytes:
    ti = tarfile.TarInfo(name)
    ti.type = tarfile.DIRTYPE if is_dir else tarfile.REGTYPE
    ti.size = 0 if is_dir else size
    ti.mode = 0o755 if (is_dir or executable) else 0o644
    ti.mtime = 0
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    return ti.tobuf(format=tarfile.GNU_FORMAT, encoding="utf-8", errors="strict")


class _ThreadedWriter(io.RawIOBase):
    """Hands writes to a thread that pushes them into `out` (the compressor), so reading files and
    compressing overlap like `tar | zstd`; a failure on that thread is raised here."""

    def __init__(self, out):
        self.out = out
        self.q: queue.Queue = queue.Queue(maxsize=8)
        self.error: BaseException | None = None
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self) -> None:
        while (data := self.q.get()) is not None:
            if self.error is None:
                try:
                    self.out.write(data)
                except BaseException as exc:  # handed to the writing thread
                    self.error = exc

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:  # type: ignore[override]
        if self.error is not None:
            raise self.error
        self.q.put(bytes(b))
        return len(b)

    def finish(self) -> None:
        if self.t.is_alive():
            self.q.put(None)
            self.t.join()
        if self.error is not None:
            raise self.error


class _ThreadedReader(io.RawIOBase):
    """Reads `src` (the decompressor) ahead on a thread, so decompressing and writing files overlap."""

    def __init__(self, src):
        self.src = src
        self.q: queue.Queue = queue.Queue(maxsize=8)
        self.buf = b""
        self.eof = False
        self.stop = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self) -> None:
        try:
            while not self.stop:
                data = self.src.read(CHUNK)
                self.q.put(data)
                if not data:
                    return
        except BaseException as exc:  # raised on the reading side
            self.q.put(exc)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if not self.buf and not self.eof:
            item = self.q.get()
            if isinstance(item, BaseException):
                self.eof = True
                raise item
            if not item:
                self.eof = True
            self.buf = memoryview(item)  # slicing a view copies nothing
        n = min(len(b), len(self.buf))
        b[:n] = self.buf[:n]
        self.buf = self.buf[n:]
        return n

    def finish(self) -> None:
        self.stop = True
        while self.t.is_alive():
            try:
                self.q.get(timeout=0.05)
            except queue.Empty:
                pass
        self.t.join()


class _HashingWriter(io.RawIOBase):
    """Feeds what passes through to a hasher on its way to `out` (None: hash only)."""

    def __init__(self, out: BinaryIO | None, hasher: _Hasher, name: str):
        self.out, self.hasher, self.name = out, hasher, name

    @property
    def count(self) -> int:
        return self.hasher.count[self.name]

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:  # type: ignore[override]
        self.hasher.feed(self.name, b)
        if self.out is not None:
            self.out.write(b)
        return len(b)


def _tar_stream(members: list[tuple[str, Path | None, int, bool, bool]], sink, progress: Progress | None,
                open_file: Callable[[Path], BinaryIO] = lambda p: open(p, "rb")) -> tuple[int, int]:
    """Write a tar of `members` (name, path, size, is_dir, executable) into `sink`; (bytes, files)."""
    total = files = 0
    for name, path, size, is_dir, executable in members:
        sink.write(_header(name, path, size, is_dir, executable))
        if is_dir:
            continue
        files += 1
        done = 0
        assert path is not None
        with open_file(path) as fh:
            while done < size:
                chunk = fh.read(min(CHUNK, size - done))
                if not chunk:
                    break
                sink.write(chunk)
                done += len(chunk)
                if progress:
                    progress(len(chunk))
            if done != size or fh.read(1):
                raise RuntimeFailure(f"{path}: changed size while being packed (is something writing it?)")
        total += size
        if size % BLOCK:
            sink.write(b"\0" * (BLOCK - size % BLOCK))
    return total, files


def _finish_tar(sink, written: int) -> None:
    end = written + 2 * BLOCK
    sink.write(b"\0" * (2 * BLOCK + (-end) % RECORD))


def _describe(root: Path, single_file: bool) -> list[tuple[str, Path | None, int, bool, bool]]:
    if single_file:
        st = os.stat(root)
        return [(DB_ENTRY, root, st.st_size, False, False)]
    out = []
    for name, p in tree_members(root):
        st = os.lstat(p)
        is_dir = stat.S_ISDIR(st.st_mode)
        out.append((name, p, 0 if is_dir else st.st_size, is_dir, bool(st.st_mode & 0o111) and not is_dir))
    return out


def pack(source: Path, dest: Path | None, progress: Progress | None = None,
         single_file: bool = False) -> PackResult:
    """Pack a folder (or, with `single_file`, one file as entry `db`) into `dest` (.tar.zst).

    `dest=None` computes the hashes without writing; the tar is the same either way.
    """
    members = _describe(Path(source), single_file)
    out = open(dest, "wb") if dest is not None else None
    hasher = _Hasher(("blob", "tree"))
    try:
        blob_w = _HashingWriter(out, hasher, "blob")
        # single-threaded zstd: its bytes are fixed by (level, input) alone; hashing runs beside it
        comp = zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=0, write_checksum=True)
        zw = comp.stream_writer(blob_w, closefd=False, write_size=CHUNK)
        piped = _ThreadedWriter(zw)
        tree_w = _HashingWriter(piped, hasher, "tree")
        buffered = io.BufferedWriter(tree_w, buffer_size=CHUNK)
        try:
            total, files = _tar_stream(members, buffered, progress)
            buffered.flush()
            _finish_tar(buffered, tree_w.count)
            buffered.flush()
        finally:
            piped.finish()
        zw.flush(zstandard.FLUSH_FRAME)
        zw.close()
        if out is not None:
            out.flush()
            os.fsync(out.fileno())
    finally:
        digests = hasher.close()
        if out is not None:
            out.close()
    return PackResult(digests["blob"], hasher.count["blob"], digests["tree"], total, files)


def tree_hash(source: Path, single_file: bool = False) -> tuple[str, int, int]:
    """(tree sha256, content bytes, files) of what `pack` would archive, without compressing."""
    members = _describe(Path(source), single_file)
    hasher = _Hasher(("tree",))
    try:
        w = _HashingWriter(None, hasher, "tree")
        buffered = io.BufferedWriter(w, buffer_size=CHUNK)
        total, files = _tar_stream(members, buffered, None)
        buffered.flush()
        _finish_tar(buffered, w.count)
        buffered.flush()
    finally:
        digest = hasher.close()["tree"]
    return digest, total, files


def file_sha256(path: Path, progress: Progress | None = None) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
            if progress:
                progress(len(chunk))
    return h.hexdigest()


class _HashingReader(io.RawIOBase):
    def __init__(self, src, hasher: _Hasher, name: str):
        self.src, self.hasher, self.name = src, hasher, name

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        data = self.src.read(len(b))
        n = len(data)
        b[:n] = data
        self.hasher.feed(self.name, data)
        return n


def _safe_name(name: str, blob: str) -> str:
    if not name or "\x00" in name:
        raise UnsafeArchive(f"blob {blob[:12]}: entry with an empty or NUL-containing name")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or name.startswith("\\"):
        raise UnsafeArchive(f"blob {blob[:12]}: entry {name!r} has an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchive(f"blob {blob[:12]}: entry {name!r} contains '..'")
    if not parts:
        return "."
    return "/".join(parts)


def _check_link(name: str, target: str, blob: str) -> None:
    """A symlink may only point down from its own directory: relative and without `..` (a `..` can climb
    out through another link even when the text normalises to a path inside)."""
    if not target or target.startswith("/") or ".." in target.split("/") or "\x00" in target:
        raise UnsafeArchive(f"blob {blob[:12]}: link {name!r} -> {target!r} escapes the target")


def iter_members(tf: tarfile.TarFile, blob: str) -> Iterator[tuple[tarfile.TarInfo, str]]:
    seen: set[str] = set()
    for m in tf:
        name = _safe_name(m.name, blob)
        if m.isdev() or m.isfifo() or not (m.isreg() or m.isdir() or m.issym() or m.islnk()):
            raise UnsafeArchive(f"blob {blob[:12]}: entry {m.name!r} is a device, FIFO or special file")
        if name in seen and not m.isdir():
            raise UnsafeArchive(f"blob {blob[:12]}: entry {m.name!r} appears twice")
        seen.add(name)
        yield m, name


def unpack(blob_path: Path, staging: Path, blob: str, max_bytes: int | None = None,
           progress: Progress | None = None, single_file: bool = False) -> str:
    """Extract a blob into the new directory `staging`; returns the sha256 of the blob bytes it read.

    The caller compares it with the manifest before using `staging` (one pass over the data verifies and
    extracts; the blob hash covers the content, so the tree is not hashed again). On any error `staging` is removed. `max_bytes` bounds the content written (the
    manifest's `bytes`), so a blob that decompresses to far more than it claims stops early.
    """
    staging = Path(staging)
    staging.mkdir(parents=False, exist_ok=False)
    real_dirs: set[str] = {"."}
    links: set[str] = set()
    written = 0
    hasher = _Hasher(("blob",))
    pipes: list[_ThreadedReader] = []
    try:
        with open(blob_path, "rb") as raw:
            blob_reader = _HashingReader(raw, hasher, "blob")
            reader = zstandard.ZstdDecompressor().stream_reader(blob_reader, read_size=CHUNK)
            ahead = _ThreadedReader(reader)
            pipes.append(ahead)
            buffered = io.BufferedReader(ahead, buffer_size=CHUNK)
            try:
                tf = tarfile.open(fileobj=buffered, mode="r|", bufsize=CHUNK)
            except (tarfile.TarError, zstandard.ZstdError) as exc:
                raise UnsafeArchive(f"blob {blob[:12]}: not a tar archive ({exc})") from None
            entries = 0
            for m, name in iter_members(tf, blob):
                entries += 1
                if single_file and (name != DB_ENTRY or not m.isreg() or entries > 1):
                    raise UnsafeArchive(f"blob {blob[:12]}: a DB blob must hold one file '{DB_ENTRY}', "
                                        f"found {m.name!r}")
                parent = posixpath.dirname(name) or "."
                if any(p in links for p in _ancestors(parent)):
                    raise UnsafeArchive(f"blob {blob[:12]}: entry {m.name!r} passes through a link")
                dest = staging / name
                if m.isdir():
                    if name in links:
                        raise UnsafeArchive(f"blob {blob[:12]}: entry {m.name!r} appears twice")
                    if name != ".":
                        dest.mkdir(parents=True, exist_ok=True)
                        _mark_dirs(real_dirs, name)
                    continue
                if name == "." or name in real_dirs:
                    raise UnsafeArchive(f"blob {blob[:12]}: entry {m.name!r} names a directory of the archive")
                dest.parent.mkdir(parents=True, exist_ok=True)
                _mark_dirs(real_dirs, parent)
                if m.issym():
                    _check_link(name, m.linkname, blob)
                    os.symlink(m.linkname, dest)
                    links.add(name)
                elif m.islnk():
                    src = _safe_name(m.linkname, blob)
                    if src == "." or src in links or not (staging / src).is_file():
                        raise UnsafeArchive(f"blob {blob[:12]}: hard link {m.name!r} -> {m.linkname!r} "
                                            "does not name a file of the archive")
                    os.link(staging / src, dest)
                else:
                    written += m.size
                    if max_bytes is not None and written > max_bytes:
                        raise UnsafeArchive(f"blob {blob[:12]}: holds more than the {max_bytes} bytes the "
                                            "manifest records")
                    fh_in = tf.extractfile(m)
                    assert fh_in is not None
                    with open(dest, "wb") as out:
                        while chunk := fh_in.read(CHUNK):
                            out.write(chunk)
                            if progress:
                                progress(len(chunk))
                    os.chmod(dest, 0o755 if m.mode & 0o111 else 0o644)
            if single_file and entries != 1:
                raise UnsafeArchive(f"blob {blob[:12]}: a DB blob must hold exactly one file")
            while buffered.read(CHUNK):
                pass
            ahead.finish()
            while blob_reader.read(CHUNK):  # bytes after the zstd frame still count towards the blob hash
                pass
        digests = hasher.close()
        return digests["blob"]
    except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise UnsafeArchive(f"blob {blob[:12]}: entries collide ({exc.strerror}: "
                            f"{os.path.relpath(exc.filename or '?', staging)})") from None
    except tarfile.TarError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise UnsafeArchive(f"blob {blob[:12]}: broken tar archive ({exc})") from None
    except zstandard.ZstdError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise UnsafeArchive(f"blob {blob[:12]}: broken zstd stream ({exc})") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        for p in pipes:
            p.finish()
        hasher.close()


def _ancestors(path: str) -> list[str]:
    out = []
    while path not in ("", "."):
        out.append(path)
        path = posixpath.dirname(path)
    return out


def _mark_dirs(real_dirs: set[str], path: str) -> None:
    real_dirs.update(_ancestors(path))
