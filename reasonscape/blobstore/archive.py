"""Deterministic zstd-compressed tar blobs, and an unpacker that trusts nothing in the archive.

Why hand-written headers: a blob is named by the sha256 of its bytes, so the same tree must give the same
bytes on every machine. Entries are sorted by path; mtime, uid, gid, owner names are zeroed; modes are
normalised (0755 for directories and executables, 0644 otherwise); the format is GNU tar (long names as
`././@LongLink`, never pax records, which carry timestamps). Compression runs in zstd's multi-threaded
mode (ZSTD_THREADS workers, pinned): that mode's bytes depend on the level and the input alone, not on the
number of workers nor on how the input is cut into writes (zstd issues #2238, #2327), so the blob is the
same everywhere while a worker compresses beside the thread that reads and hashes. Blobs written by the
former single-threaded packer (threads=0) have other bytes for the same tree; they still unpack (a zstd
frame is a zstd frame), and pushes compare trees by `tree`, so they are never re-uploaded because of it.

Besides the blob hash (`blob`, of the compressed bytes) the packer returns `tree`, the sha256 of the
uncompressed tar stream: a local folder is compared with the manifest by `tree` without compressing.

Unpacking reads a stream (a blob may be larger than memory), refuses absolute paths, `..`, links that could
leave the target, device files and FIFOs, and extracts into a staging directory that is removed when
anything is wrong, so a rejected archive leaves nothing behind.

Speed (bench/data.py compares with `tar --zstd`): the heavy steps release the GIL and overlap like
`tar | zstd`. Pack: the calling thread reads files into one reused buffer and hashes it while zstd's worker
compresses. Unpack: a reader thread reads the blob ahead and hashes every byte, an inflater thread only
decompresses (the slowest stage, as in `zstd -d`) into a small pool of reused buffers, and the calling
thread parses headers with `tarfile` and writes file contents straight from those buffers with `os.write`
(no copies through Python).
"""

from __future__ import annotations

import hashlib
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
CHUNK = 2 << 20
ZSTD_LEVEL = 3
#: zstd workers. Any value >= 1 gives the same bytes (0, single-threaded mode, would not); pinned so that
#: no machine property reaches the compressor. One worker beside the reading/hashing thread measured best
#: on a busy 2-core machine (two cost more CPU for zstd's job hand-offs than they saved).
ZSTD_THREADS = 1
#: Longest tar header data (GNU long name, pax records) the unpacker reads into memory.
MAX_HEADER = 1 << 20
#: Chunks in flight between the unpacker's threads (read -> decompress, decompress -> write), each CHUNK.
AHEAD = 4
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


class _Stopped(Exception):
    """Raised inside the decompressor when the unpacker gives up (its reader thread has stopped)."""


class _Reader:
    """Reads the blob ahead on a thread and hashes every byte it reads (hashlib releases the GIL), then
    hands the compressed chunks to the decompressor (`read`, on the inflater's thread) through a bounded
    queue: the decompressing thread, the slowest stage, does nothing else."""

    def __init__(self, fh: BinaryIO):
        self.fh = fh
        self.sha = hashlib.sha256()
        self.q: queue.Queue = queue.Queue(maxsize=AHEAD)
        self.left = memoryview(b"")
        self.eof = self.stopping = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self) -> None:
        try:
            while not self.stopping:
                data = self.fh.read(CHUNK)
                self._put(data)  # bytes never change: the decompressor may start while it is hashed
                self.sha.update(data)
                if not data:
                    return
        except BaseException as exc:  # raised in the decompressor
            self._put(exc)

    def _put(self, item) -> None:
        while not self.stopping:
            try:
                self.q.put(item, timeout=0.05)
                return
            except queue.Full:
                pass

    def read(self, n: int) -> bytes | memoryview:
        """Up to `n` bytes of the blob; b"" at its end."""
        while not self.left and not self.eof:
            try:
                item = self.q.get(timeout=0.05)
            except queue.Empty:
                if self.stopping:
                    raise _Stopped() from None
                continue
            if isinstance(item, BaseException):
                raise item
            self.eof = not item
            self.left = memoryview(item)
        out, self.left = self.left[:n], self.left[n:]
        return out

    def digest(self) -> str:
        """sha256 of every byte of the blob, once it has all been read."""
        self.t.join()
        return self.sha.hexdigest()

    def stop(self) -> None:
        self.stopping = True
        self.t.join()


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


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


class _TarSink:
    """Where the tar stream goes: it is assembled in one reused CHUNK buffer (file contents are read straight
    into it), and each full buffer is hashed (`tree`) and, with a compressor, handed to zstd's workers; the
    compressed bytes are hashed (`blob`) and written to `fd` (None: hash only).

    Hashing stays on the calling thread: zstd's workers compress meanwhile, and one Python thread has no
    GIL hand-offs to wait for when the machine is busy."""

    def __init__(self, comp, fd: int | None):
        self.comp, self.fd = comp, fd
        self.tree, self.blob = hashlib.sha256(), hashlib.sha256()
        self.buf = memoryview(bytearray(CHUNK))
        self.used = 0
        self.count = self.size = 0

    def write(self, b: bytes) -> None:
        """Small pieces: headers and padding."""
        view = memoryview(b)
        while view:
            k = min(len(view), CHUNK - self.used)
            self.buf[self.used:self.used + k] = view[:k]
            view = view[k:]
            self._advance(k)

    def read_from(self, fh: BinaryIO, n: int) -> int:
        """Read up to `n` bytes of `fh` into the stream; how many were read (0 at the end of the file)."""
        k = min(n, CHUNK - self.used)
        got = fh.readinto(self.buf[self.used:self.used + k]) or 0
        self._advance(got)
        return got

    def _advance(self, k: int) -> None:
        self.used += k
        self.count += k
        if self.used == CHUNK:
            self._emit()

    def _emit(self) -> None:
        data = self.buf[:self.used]
        self.used = 0
        self.tree.update(data)
        if self.comp is not None:
            self._out(self.comp.compress(data))

    def _out(self, data: bytes) -> None:
        if data:
            self.blob.update(data)
            self.size += len(data)
            if self.fd is not None:
                _write_all(self.fd, data)

    def finish(self) -> None:
        if self.used:
            self._emit()
        if self.comp is not None:
            self._out(self.comp.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH))


def _tar_stream(members: list[tuple[str, Path | None, int, bool, bool]], sink: _TarSink,
                progress: Progress | None,
                open_file: Callable[[Path], BinaryIO] = lambda p: open(p, "rb", buffering=0)
                ) -> tuple[int, int]:
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
                got = sink.read_from(fh, size - done)
                if not got:
                    break
                done += got
                if progress:
                    progress(got)
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


def _compressor():
    """zstd in multi-threaded mode (see the module docstring: its bytes do not depend on ZSTD_THREADS)."""
    return zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=ZSTD_THREADS, write_checksum=True).compressobj()


def pack(source: Path, dest: Path | None, progress: Progress | None = None,
         single_file: bool = False) -> PackResult:
    """Pack a folder (or, with `single_file`, one file as entry `db`) into `dest` (.tar.zst).

    `dest=None` computes the hashes without writing; the tar is the same either way.
    """
    members = _describe(Path(source), single_file)
    fd = None if dest is None else os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        sink = _TarSink(_compressor(), fd)
        total, files = _tar_stream(members, sink, progress)
        _finish_tar(sink, sink.count)
        sink.finish()
        if fd is not None:
            os.fsync(fd)
    finally:
        if fd is not None:
            os.close(fd)
    return PackResult(sink.blob.hexdigest(), sink.size, sink.tree.hexdigest(), total, files)


def tree_hash(source: Path, single_file: bool = False) -> tuple[str, int, int]:
    """(tree sha256, content bytes, files) of what `pack` would archive, without compressing."""
    sink = _TarSink(None, None)
    total, files = _tar_stream(_describe(Path(source), single_file), sink, None)
    _finish_tar(sink, sink.count)
    sink.finish()
    return sink.tree.hexdigest(), total, files


def file_sha256(path: Path, progress: Progress | None = None) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
            if progress:
                progress(len(chunk))
    return h.hexdigest()


#: Decompression buffers kept between unpacks (a pull unpacks many blobs; fresh 2 MiB buffers cost page
#: faults on the critical path). At most 2 * AHEAD are kept; unpacks running at once each take their own.
_SPARE: list[bytearray] = []
_SPARE_LOCK = threading.Lock()


class _Inflater:
    """A thread that decompresses what `reader` reads (all frames, like `zstd -d`) into at most AHEAD
    reused CHUNK buffers (no allocation or page faults per piece; the pool bounds memory) that the
    extracting thread takes with `get()` and gives back with `release()`. A failure on the thread (or on the
    reader's) is raised by `get()`; `abort()` stops both."""

    def __init__(self, reader: _Reader):
        self.reader = reader
        self.free: queue.Queue = queue.Queue()
        self.made = 0  # buffers taken into this pool (made on the thread, when first needed)
        self.q: queue.Queue = queue.Queue()  # bounded by the pool
        self.stopping = False
        self.ended = False  # get() has returned the end (or raised)
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _buffer(self) -> bytearray | None:
        if self.made < AHEAD and self.free.empty():
            self.made += 1
            with _SPARE_LOCK:
                while _SPARE:
                    if len(buf := _SPARE.pop()) == CHUNK:
                        return buf
            return bytearray(CHUNK)
        while not self.stopping:
            try:
                return self.free.get(timeout=0.05)
            except queue.Empty:
                pass
        return None

    def _run(self) -> None:
        try:
            reader = zstandard.ZstdDecompressor().stream_reader(self.reader, read_size=CHUNK, closefd=False)
            while (buf := self._buffer()) is not None:
                n = reader.readinto(buf)
                if not n:
                    break
                self.q.put((buf, n))
        except BaseException as exc:  # raised on the extracting side
            self.q.put(exc)
        self.q.put(None)

    def get(self) -> tuple[bytearray, int] | None:
        """The next decompressed piece (buffer, length); None at the end of the stream."""
        item = self.q.get()
        if isinstance(item, BaseException):
            self.stopping = self.ended = True
            raise item
        if item is None:
            self.stopping = self.ended = True
        return item

    def release(self, buf: bytearray) -> None:
        self.free.put(buf)

    def done(self) -> None:
        """The tar has ended: the rest of the stream (tar padding) is still decompressed, so a blob with a
        broken tail is refused, and hashed."""
        while not self.ended and (item := self.get()) is not None:
            self.release(item[0])
        self.t.join()

    def __enter__(self) -> _Inflater:
        return self

    def __exit__(self, *exc) -> None:
        self.abort()

    def abort(self) -> None:
        self.stopping = True
        self.reader.stopping = True
        self.t.join()
        self.reader.stop()
        # only buffers nothing points into any more: given back, or filled and never taken
        spare = [self.free.get() for _ in range(self.free.qsize())]
        pending = [self.q.get() for _ in range(self.q.qsize())]
        spare += [item[0] for item in pending if isinstance(item, tuple)]
        with _SPARE_LOCK:
            _SPARE.extend(spare[:2 * AHEAD - len(_SPARE)])


class _TarSource:
    """The decompressed stream as the forward-only file `tarfile` reads headers from; member contents are
    written from the decompressed pieces straight to the output file (`copy_to`)."""

    def __init__(self, inflater: _Inflater):
        self.inflater = inflater
        self.buf: bytearray | None = None
        self.view = memoryview(b"")
        self.pos = 0
        self.eof = False

    def _fill(self) -> bool:
        """Give the spent buffer back and take the next piece (nothing may still point into the old one)."""
        if self.buf is not None:
            self.inflater.release(self.buf)
            self.buf = None
        if not self.eof:
            item = self.inflater.get()
            if item is None:
                self.eof = True
                self.view = memoryview(b"")
            else:
                self.buf, n = item
                self.view = memoryview(self.buf)[:n]
        return bool(self.view)

    def read(self, n: int = -1) -> bytes:
        if n < 0 or n > MAX_HEADER + CHUNK:
            raise tarfile.ReadError(f"a header or read of {n} bytes is beyond what a result tree needs")
        parts = []
        need = n
        while need and (self.view or self._fill()):
            part = self.view[:need]
            self.view = self.view[len(part):]
            parts.append(bytes(part))
            need -= len(part)
        self.pos += n - need
        return b"".join(parts)

    def tell(self) -> int:
        return self.pos

    def seek(self, pos: int, whence: int = 0) -> int:
        if whence != 0 or pos < self.pos:
            raise tarfile.ReadError("the archive asks to read backwards")
        need = pos - self.pos
        while need and (self.view or self._fill()):
            k = min(need, len(self.view))
            self.view = self.view[k:]
            need -= k
        self.pos = pos - need
        return self.pos

    def copy_to(self, fd: int, n: int, progress: Progress | None) -> None:
        while n:
            if not (self.view or self._fill()):
                raise tarfile.ReadError("unexpected end of data")
            part = self.view[:n]
            self.view = self.view[len(part):]
            _write_all(fd, part)
            n -= len(part)
            self.pos += len(part)
            if progress:
                progress(len(part))


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
    extracts; the blob hash covers the content, so the tree is not hashed again). On any error `staging` is
    removed. `max_bytes` bounds the content written (the manifest's `bytes`), so a blob that decompresses to
    far more than it claims stops early.
    """
    staging = Path(staging)
    staging.mkdir(parents=False, exist_ok=False)
    real_dirs: set[str] = {"."}
    links: set[str] = set()
    written = 0
    try:
        # leaving the `with` stops the threads before the file is closed
        with open(blob_path, "rb", buffering=0) as raw, _Inflater(_Reader(raw)) as inflater:
            source = _TarSource(inflater)
            try:
                tf = tarfile.TarFile(fileobj=source, mode="r")  # type: ignore[arg-type]
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
                    raise UnsafeArchive(f"blob {blob[:12]}: entry {m.name!r} names a directory of the "
                                        "archive")
                if parent not in real_dirs:  # every directory in real_dirs was made by this unpack
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
                    fd = os.open(dest, _NEW_FILE, 0o600)
                    try:
                        if m.sparse is not None:  # GNU sparse (we never write one): tarfile fills the holes
                            fh_in = tf.extractfile(m)
                            assert fh_in is not None
                            while chunk := fh_in.read(CHUNK):
                                _write_all(fd, chunk)
                                if progress:
                                    progress(len(chunk))
                        else:
                            source.copy_to(fd, m.size, progress)
                        os.fchmod(fd, 0o755 if m.mode & 0o111 else 0o644)
                    finally:
                        os.close(fd)
            if single_file and entries != 1:
                raise UnsafeArchive(f"blob {blob[:12]}: a DB blob must hold exactly one file")
            inflater.done()
            return inflater.reader.digest()
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


_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _ancestors(path: str) -> list[str]:
    out = []
    while path not in ("", "."):
        out.append(path)
        path = posixpath.dirname(path)
    return out


def _mark_dirs(real_dirs: set[str], path: str) -> None:
    real_dirs.update(_ancestors(path))
