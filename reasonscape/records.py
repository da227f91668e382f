"""The NDJSON step record: one line per completed point-batch, append-only, flushed per line.

This is the contract between the runner (writer), evaluate.py, probe.py and the web apps (readers).
Readers keep fields they do not know (a newer writer's) and fill defaults for fields an older writer
did not have, so old result folders stay readable. Never put credentials in a record.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import IO, Any

import orjson

from reasonscape.errors import InputError

SCHEMA_VERSION = 1
STEPS_FILE = "result-steps.ndjson"
#: The same records compressed with zstd (how finished result folders are shipped and archived).
STEPS_FILE_ZST = STEPS_FILE + ".zst"
METADATA_FILE = "metadata.json"


@dataclass(slots=True)
class TestResult:
    """One test inside a step record (see DESIGN.md, "Step record")."""

    __test__ = False

    index: int
    question: str
    reference: str
    answer: str = ""
    extracted: str | None = None
    status: str = "invalid"
    truncated: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    guess_chance: float = 0.0
    latency_s: float = 0.0
    cache_key: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    #: Set when the request failed for good (e.g. prompt longer than the server's context).
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TestResult:
        known = {k: d[k] for k in _TEST_FIELDS if k in d and k != "extra"}
        extra = {k: v for k, v in d.items() if k not in _TEST_FIELDS}
        return cls(**known, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        d = {f: getattr(self, f) for f in _TEST_FIELDS if f != "extra"}
        if d["error"] is None:
            del d["error"]
        d.update(self.extra)
        return d


_TEST_FIELDS = tuple(f.name for f in fields(TestResult))


@dataclass(slots=True)
class StepRecord:
    """A batch of tests of one point, as written by one round of the runner."""

    model: str
    template: str
    sampler: str
    base_task: str
    params: dict[str, Any]
    manifold: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    tests: list[TestResult] = field(default_factory=list)
    schema: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StepRecord:
        known = {k: d[k] for k in _STEP_FIELDS if k in d and k not in ("extra", "tests")}
        extra = {k: v for k, v in d.items() if k not in _STEP_FIELDS}
        tests = [TestResult.from_dict(t) for t in d.get("tests", [])]
        known.setdefault("manifold", {})
        return cls(**known, tests=tests, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        d = {f: getattr(self, f) for f in _STEP_FIELDS if f not in ("extra", "tests")}
        d["tests"] = [t.to_dict() for t in self.tests]
        d.update(self.extra)
        return d

    def to_line(self) -> bytes:
        return orjson.dumps(self.to_dict()) + b"\n"


_STEP_FIELDS = tuple(f.name for f in fields(StepRecord))


def open_steps(path: str | Path) -> IO[bytes]:
    """A binary line-iterable stream of a steps file, plain or zstd-compressed (`.zst`).

    A compressed file is checked as it is read: garbage, or a stream cut short (a copy or download
    that did not finish), raises InputError naming the file instead of yielding the part that was
    there (which would read as a valid, shorter run)."""
    if str(path).endswith(".zst"):
        return io.BufferedReader(_ZstdReader(path), buffer_size=1 << 20)
    return open(path, "rb")


class _ZstdReader(io.RawIOBase):
    """Raw reader of a zstd file (one or more frames) that fails on a torn or corrupt stream."""

    def __init__(self, path: str | Path, start: int = 0, chunk: int = 1 << 20) -> None:
        import zstandard

        self.path = str(path)
        self._fh = open(path, "rb")
        self._dctx = zstandard.ZstdDecompressor()
        self._error = zstandard.ZstdError
        self._obj: Any = None  # the frame being decompressed
        self._buf = memoryview(b"")
        self._done = False
        self._plain = 0  # plain bytes produced so far
        self._chunk = chunk  # compressed bytes read at a time (small for located reads)
        #: (compressed offset, plain offset) where each zstd frame starts: the seek points of the file
        self.frames: list[tuple[int, int]] = []
        if start:
            self._fh.seek(start)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buf and not self._done:
            self._fill()
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def _fill(self) -> None:
        at = self._fh.tell()
        chunk = self._fh.read(self._chunk)
        size = len(chunk)
        made = 0
        if not chunk:
            if self._obj is not None:
                raise InputError(f"{self.path}: truncated zstd stream (the file was cut short; "
                                 "copy or pull it again)")
            self._done = True
            return
        out = []
        while chunk:
            if self._obj is None:
                self._obj = self._dctx.decompressobj()
                self.frames.append((at + size - len(chunk), self._plain + made))
            try:
                out.append(self._obj.decompress(chunk))
                made += len(out[-1])
            except self._error as exc:
                raise InputError(f"{self.path}: not a valid zstd stream ({exc})") from None
            if self._obj.eof:
                chunk = self._obj.unused_data
                self._obj = None
            else:
                chunk = b""
        self._buf = memoryview(b"".join(out))
        self._plain += made

    def close(self) -> None:
        if not self.closed:
            self._fh.close()
        super().close()


def steps_file(folder: str | Path) -> Path:
    """The steps file of a result folder: plain if present, else its compressed form."""
    folder = Path(folder)
    plain = folder / STEPS_FILE
    return plain if plain.exists() or not (folder / STEPS_FILE_ZST).exists() else folder / STEPS_FILE_ZST


def iter_step_dicts(path: str | Path, *, strict: bool = True) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, raw dict) for every record line of an NDJSON file (`.ndjson` or `.ndjson.zst`).

    A malformed line raises InputError naming file:line when `strict`; otherwise it is skipped. A last
    line without its newline is a write cut short by a crash: it is ignored, not an error.
    """
    with open_steps(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            if not line.endswith(b"\n"):
                return  # torn final write
            try:
                d = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                if strict:
                    raise InputError(f"{path}:{lineno}: malformed NDJSON line ({exc.args[0]})") from None
                continue
            if not isinstance(d, dict):
                if strict:
                    raise InputError(f"{path}:{lineno}: record is not a JSON object")
                continue
            yield lineno, d


def read_steps(path: str | Path, *, strict: bool = True) -> Iterator[StepRecord]:
    for _, d in iter_step_dicts(path, strict=strict):
        yield StepRecord.from_dict(d)


@dataclass(frozen=True, slots=True)
class TestLocation:
    """Where one NDJSON line holding some of a point's tests sits (PointsDB.test_locations).

    `offset`/`length` are bytes of the plain text (the line without its newline). For a `.zst` file
    (`compression == "zst"`) they count decompressed bytes: the reader seeks to `frame_offset`, the
    compressed position of the zstd frame holding the line's start (whose first plain byte is
    `frame_start`), and decompresses from there, so a file written as many small frames
    (`compress_steps`) costs about one frame per line, a single-frame file a stream from its start.
    """

    __test__ = False

    point_id: str
    path: Path
    offset: int
    length: int
    compression: str = "plain"  # "plain" or "zst"
    frame_offset: int = 0
    frame_start: int = 0


#: Plain bytes per zstd frame written by `compress_steps` (the most a located read decompresses
#: besides the line itself).
FRAME_BYTES = 1 << 20


#: Compressed bytes a located read decompresses at a time (a line plus at most this much past it).
LOCATED_CHUNK = 1 << 15


def read_point_tests(locations: Iterable[TestLocation], *, raw: bool = False) -> Iterator[StepRecord | dict[str, Any]]:
    """The step records at `locations` (StepRecord, or the decoded dict with `raw=True`), reading only
    those lines: a seek per line for plain files, one frame's decompression per line for `.zst`.

    A missing file, or a line that is no longer the point's record (the file was rewritten since
    evaluate.py ran), is an InputError naming the file and offset."""
    by_file: dict[Path, list[TestLocation]] = {}
    for loc in locations:
        by_file.setdefault(loc.path, []).append(loc)
    for path, locs in by_file.items():
        locs.sort(key=lambda x: x.offset)
        if not path.is_file():
            raise InputError(f"{path}: not found (its cohort's result files are not here: pull them with "
                             "data.py pull, or run evaluate.py again if the dataset moved)")
        reader = _zst_lines if locs[0].compression == "zst" else _plain_lines
        for loc, line in reader(path, locs):
            yield _located_record(loc, line, raw)


def _plain_lines(path: Path, locs: list[TestLocation]) -> Iterator[tuple[TestLocation, bytes]]:
    with open(path, "rb") as fh:
        for loc in locs:
            fh.seek(loc.offset)
            yield loc, fh.read(loc.length + 1)


def _zst_lines(path: Path, locs: list[TestLocation]) -> Iterator[tuple[TestLocation, bytes]]:
    reader: _ZstdReader | None = None
    pos = 0  # plain position of `reader`
    try:
        for loc in locs:
            if reader is None or loc.frame_start > pos:  # (re)start at the frame holding the line
                if reader is not None:
                    reader.close()
                far = loc.offset - loc.frame_start > 2 * FRAME_BYTES  # a big frame: stream through it
                reader = _ZstdReader(path, start=loc.frame_offset, chunk=1 << 20 if far else LOCATED_CHUNK)
                pos = loc.frame_start
            pos += _skip(reader, loc.offset - pos)
            line = _read_exact(reader, loc.length + 1)
            pos += len(line)
            yield loc, line
    finally:
        if reader is not None:
            reader.close()


def _skip(reader: _ZstdReader, n: int) -> int:
    done = 0
    buf = bytearray(min(max(n, 1), 1 << 20))
    while done < n:
        got = reader.readinto(memoryview(buf)[: min(len(buf), n - done)])
        if not got:
            break
        done += got
    return done


def _read_exact(reader: _ZstdReader, n: int) -> bytes:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = reader.readinto(view[got:])
        if not k:
            break
        got += k
    return bytes(buf[:got])


def _located_record(loc: TestLocation, line: bytes, raw: bool) -> StepRecord | dict[str, Any]:
    where = f"{loc.path} at byte {loc.offset}"
    stale = (f"{where}: not the record evaluate.py indexed for point {loc.point_id} (the file changed "
             "since; run evaluate.py again)")
    if len(line) != loc.length + 1 or not line.endswith(b"\n"):
        raise InputError(stale)
    try:
        d = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise InputError(stale) from None
    if not isinstance(d, dict):
        raise InputError(stale)
    from reasonscape.identity import point_id

    try:
        pid = point_id(d["model"], d["template"], d["sampler"], d["base_task"], d["params"])
    except (KeyError, TypeError, ValueError):
        raise InputError(stale) from None
    if pid != loc.point_id:
        raise InputError(stale)
    return d if raw else StepRecord.from_dict(d)


def compress_steps(src: str | Path, dst: str | Path, frame_bytes: int = FRAME_BYTES, level: int = 9) -> int:
    """Compress a steps file as independent zstd frames of about `frame_bytes` plain bytes, cut at line
    ends: any zstd tool reads it as one stream, and a located read (`read_point_tests`) decompresses
    one frame instead of the file up to the line. Returns the number of frames."""
    import zstandard

    cctx = zstandard.ZstdCompressor(level=level)
    frames = 0
    tmp = Path(str(dst) + ".tmp")
    with open(src, "rb") as fin, open(tmp, "wb") as fout:
        pending: list[bytes] = []
        size = 0
        for line in fin:
            pending.append(line)
            size += len(line)
            if size >= frame_bytes:
                fout.write(cctx.compress(b"".join(pending)))
                frames += 1
                pending, size = [], 0
        if pending or not frames:
            fout.write(cctx.compress(b"".join(pending)))
            frames += 1
    os.replace(tmp, dst)
    return frames


class StepWriter:
    """Append-only NDJSON writer: one line per record, flushed (and fsynced) before returning.

    Opening an existing file first cuts a torn last line left by a crash, so a resumed run appends
    cleanly after the last complete record.
    """

    def __init__(self, path: str | Path, *, fsync: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        repair_torn_tail(self.path)
        self._fh = open(self.path, "ab")
        self._fsync = fsync

    def write(self, record: StepRecord | dict[str, Any]) -> None:
        line = record.to_line() if isinstance(record, StepRecord) else orjson.dumps(record) + b"\n"
        self._fh.write(line)
        self._fh.flush()
        if self._fsync:
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> StepWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def repair_torn_tail(path: Path) -> None:
    """Truncate a file after its last newline (drops a partial line from an interrupted write)."""
    if not path.exists():
        return
    size = path.stat().st_size
    if size == 0:
        return
    with open(path, "rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return
        chunk = 1 << 16
        pos = size
        while pos > 0:
            start = max(0, pos - chunk)
            fh.seek(start)
            buf = fh.read(pos - start)
            nl = buf.rfind(b"\n")
            if nl != -1:
                fh.truncate(start + nl + 1)
                return
            pos = start
        fh.truncate(0)


def write_json_atomic(path: str | Path, value: Any) -> None:
    """Write JSON via a temp file + rename so readers never see half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    os.replace(tmp, path)


def read_json(path: str | Path) -> Any:
    try:
        return orjson.loads(Path(path).read_bytes())
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{path}: malformed JSON ({exc.args[0]})") from None


__all__ = ["FRAME_BYTES", "TestLocation", "read_point_tests", "compress_steps", "SCHEMA_VERSION", "STEPS_FILE", "STEPS_FILE_ZST", "METADATA_FILE", "open_steps", "steps_file", "TestResult", "StepRecord", "StepWriter",
           "iter_step_dicts", "read_steps", "repair_torn_tail", "write_json_atomic", "read_json", "asdict"]
