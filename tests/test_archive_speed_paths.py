"""The fast paths of reasonscape.blobstore.archive: multi-threaded zstd, the reused pack buffer, the
unpacker's decompressing thread and its zero-copy writes. Speed itself is bench/data.py's business; these
check that the fast paths keep the format's guarantees (same tree -> same bytes, old blobs unpack, hostile
blobs fail cleanly)."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest
import zstandard
from data_fixtures import tree_digest

from reasonscape.blobstore import UnsafeArchive, archive, pack, tree_hash, unpack


def _text(seed: int, n: int) -> bytes:
    """Trace-like bytes that compress about 2:1 (a seeded hash stream spelled in a small alphabet)."""
    out = bytearray()
    block = hashlib.sha256(str(seed).encode()).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += b'{"answer": "' + bytes(97 + (c % 20) for c in block) + b'"}\n'
    return bytes(out[:n])


def _tree(root: Path, big: int = 0) -> Path:
    """Sizes around every boundary of the fast paths: empty, one block, CHUNK +- 1, long names, exec bits."""
    root.mkdir(parents=True)
    (root / "empty.txt").write_bytes(b"")
    (root / "block.bin").write_bytes(_text(1, 512))
    (root / "odd.bin").write_bytes(_text(2, 513))
    for i, n in enumerate((archive.CHUNK - 1, archive.CHUNK, archive.CHUNK + 1)):
        (root / f"chunk{i}.ndjson").write_bytes(_text(10 + i, n))
    deep = root / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    (deep / ("long-name-" + "x" * 120 + ".json")).write_bytes(_text(3, 3000))
    (root / "empty-dir").mkdir()
    (root / "run.sh").write_bytes(b"#!/bin/sh\necho hi\n")
    os.chmod(root / "run.sh", 0o755)
    if big:
        (root / "big.ndjson").write_bytes(_text(4, big))
    return root


def _modes(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): stat.S_IMODE(p.stat().st_mode)
            for p in root.rglob("*") if p.is_file()}


def test_blob_bytes_do_not_depend_on_worker_count_or_buffer_size(tmp_path, monkeypatch):
    # 20 MB: more than two of zstd's jobs at level 3, so the workers really split the stream
    src = _tree(tmp_path / "src", big=20_000_000)
    blobs = {}
    for threads, chunk in ((1, archive.CHUNK), (2, archive.CHUNK), (4, 64 << 10), (3, 1 << 20)):
        monkeypatch.setattr(archive, "ZSTD_THREADS", threads)
        monkeypatch.setattr(archive, "CHUNK", chunk)
        dest = tmp_path / f"b-{threads}-{chunk}.tar.zst"
        res = pack(src, dest)
        blobs[(threads, chunk)] = (dest.read_bytes(), res)
    (first, res), *others = blobs.values()
    assert all(b == first and r == res for b, r in others)
    assert res.blob == hashlib.sha256(first).hexdigest() and res.size == len(first)
    # `tree` is the sha256 of exactly the tar inside the blob
    tar = zstandard.ZstdDecompressor().decompress(first, max_output_size=64 << 20)
    assert res.tree == hashlib.sha256(tar).hexdigest() == tree_hash(src)[0]
    assert len(tar) % archive.RECORD == 0 and len(first) < len(tar) * 0.7


def test_round_trip_at_every_buffer_boundary_keeps_bytes_and_modes(tmp_path, monkeypatch):
    src = _tree(tmp_path / "src")
    for chunk in (archive.CHUNK, 4096, 1000):  # 1000: pieces that split tar headers and blocks anywhere
        monkeypatch.setattr(archive, "CHUNK", chunk)
        blob, out = tmp_path / f"b{chunk}.tar.zst", tmp_path / f"out{chunk}"
        seen: list[int] = []
        res = pack(src, blob, progress=seen.append)
        assert sum(seen) == res.bytes == sum(p.stat().st_size for p in src.rglob("*") if p.is_file())
        seen.clear()
        digest = unpack(blob, out, res.blob, max_bytes=res.bytes, progress=seen.append)
        assert digest == res.blob == hashlib.sha256(blob.read_bytes()).hexdigest()
        assert sum(seen) == res.bytes
        assert tree_digest(out) == tree_digest(src)
        assert _modes(out) == {k: (0o755 if k == "run.sh" else 0o644) for k in _modes(src)}


def _old_blob(tar: bytes, path: Path) -> None:
    """A blob as the former packer wrote it: single-threaded zstd fed through a stream writer."""
    comp = zstandard.ZstdCompressor(level=3, threads=0, write_checksum=True)
    with open(path, "wb") as fh:
        w = comp.stream_writer(fh, closefd=False, write_size=1 << 20)
        for i in range(0, len(tar), 1 << 20):
            w.write(tar[i:i + (1 << 20)])
        w.flush(zstandard.FLUSH_FRAME)


def test_blobs_of_the_single_threaded_packer_still_unpack(tmp_path):
    src = _tree(tmp_path / "src", big=3_000_000)
    new = tmp_path / "new.tar.zst"
    res = pack(src, new)
    tar = zstandard.ZstdDecompressor().decompress(new.read_bytes(), max_output_size=64 << 20)
    old = tmp_path / "old.tar.zst"
    _old_blob(tar, old)
    assert old.read_bytes() != new.read_bytes()  # same tree, other bytes: the compressor's mode differs
    digest = unpack(old, tmp_path / "out", "0" * 64, max_bytes=res.bytes)
    assert digest == hashlib.sha256(old.read_bytes()).hexdigest()
    assert tree_digest(tmp_path / "out") == tree_digest(src)


def test_every_byte_of_the_file_counts_towards_the_returned_hash(tmp_path):
    src = _tree(tmp_path / "src")
    blob = tmp_path / "b.tar.zst"
    pack(src, blob)
    # a second (empty) zstd frame after the tar: harmless, but it is part of the blob and of its hash
    blob.write_bytes(blob.read_bytes() + zstandard.ZstdCompressor().compress(b""))
    assert unpack(blob, tmp_path / "out", "0" * 64) == hashlib.sha256(blob.read_bytes()).hexdigest()


@pytest.mark.parametrize("damage", ["trailing_garbage", "truncated", "flipped_byte"])
def test_a_damaged_blob_fails_in_one_line_and_leaves_nothing(tmp_path, damage):
    src = _tree(tmp_path / "src", big=1_000_000)
    blob = tmp_path / "b.tar.zst"
    res = pack(src, blob)
    data = bytearray(blob.read_bytes())
    if damage == "trailing_garbage":
        data += b"not zstd" * 8
    elif damage == "truncated":
        data = data[: len(data) * 2 // 3]
    else:
        data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    target = tmp_path / "out" / ".staging"
    target.parent.mkdir()
    try:
        digest = unpack(blob, target, res.blob, max_bytes=res.bytes)
    except UnsafeArchive as exc:
        assert "\n" not in str(exc) and str(exc).startswith(f"blob {res.blob[:12]}")
        assert list(target.parent.iterdir()) == []
    else:  # the damage fell where tar and zstd cannot see it: the hash does, and the caller refuses
        assert digest != res.blob


def test_a_header_claiming_a_huge_long_name_is_refused_without_reading_it(tmp_path):
    ti = tarfile.TarInfo("././@LongLink")
    ti.type = tarfile.GNUTYPE_LONGNAME
    ti.size = 1 << 40
    raw = ti.tobuf(format=tarfile.GNU_FORMAT) + b"a" * 4096
    blob = tmp_path / "long.tar.zst"
    blob.write_bytes(zstandard.ZstdCompressor().compress(raw))
    with pytest.raises(UnsafeArchive, match="beyond what a result tree needs"):
        unpack(blob, tmp_path / "out", "f" * 64)
    assert not (tmp_path / "out").exists()


def test_an_entry_cannot_reuse_an_existing_path_even_through_a_link(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        ti = tarfile.TarInfo("l")
        ti.type, ti.linkname = tarfile.SYMTYPE, "victim"
        tf.addfile(ti)
        ti = tarfile.TarInfo("l")
        ti.size = 2
        tf.addfile(ti, io.BytesIO(b"hi"))
    blob = tmp_path / "b.tar.zst"
    blob.write_bytes(zstandard.ZstdCompressor().compress(buf.getvalue()))
    with pytest.raises(UnsafeArchive, match="appears twice"):
        unpack(blob, tmp_path / "out", "f" * 64)
    assert not (tmp_path / "out").exists() and not (tmp_path / "victim").exists()


def test_gnu_sparse_members_are_filled_in(tmp_path):
    if shutil.which("tar") is None:
        pytest.skip("GNU tar is needed to write a sparse archive")
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "sparse.bin", "wb") as fh:
        fh.seek(3 << 20)
        fh.write(b"middle" * 100)
        fh.seek(7 << 20)
        fh.write(b"end")
    tar = tmp_path / "s.tar"
    subprocess.run(["tar", "--sparse", "--format=gnu", "-cf", str(tar), "-C", str(src), "."], check=True)
    blob = tmp_path / "s.tar.zst"
    blob.write_bytes(zstandard.ZstdCompressor().compress(tar.read_bytes()))
    unpack(blob, tmp_path / "out", "f" * 64)
    assert (tmp_path / "out" / "sparse.bin").read_bytes() == (src / "sparse.bin").read_bytes()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("cut", ["after_member", "mid_header"])
def test_a_tar_without_its_end_blocks_ends_cleanly(tmp_path, cut):
    """GNU tar tolerates a missing end-of-archive marker; the unpacker must neither hang nor invent data."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for name, data in (("a.txt", b"first"), ("b.txt", b"second" * 300)):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    raw = buf.getvalue()
    end = 3 * 512 + 4 * 512  # a: header + 1 block; b: header + 4 blocks (1800 bytes)
    raw = raw[:end] if cut == "after_member" else raw[:end] + raw[:100]
    blob = tmp_path / "b.tar.zst"
    blob.write_bytes(zstandard.ZstdCompressor().compress(raw))
    digest = unpack(blob, tmp_path / "out", "f" * 64)
    assert digest == hashlib.sha256(blob.read_bytes()).hexdigest()
    assert (tmp_path / "out" / "b.txt").read_bytes() == b"second" * 300


def test_unpacks_at_once_in_one_process_do_not_share_buffers(tmp_path):
    """Decompression buffers are pooled between unpacks; two running together (and one that fails between
    them) must each get their own."""
    srcs = [_tree(tmp_path / f"src{i}", big=2_500_000 + 100_000 * i) for i in range(3)]
    blobs = []
    for i, src in enumerate(srcs):
        blobs.append((tmp_path / f"b{i}.tar.zst", pack(src, tmp_path / f"b{i}.tar.zst")))
    bad = tmp_path / "bad.tar.zst"
    bad.write_bytes(blobs[0][0].read_bytes()[:200_000])
    errors: list[BaseException] = []

    def job(i: int) -> None:
        try:
            for rep in range(3):
                path, res = blobs[i]
                assert unpack(path, tmp_path / f"out{i}-{rep}", res.blob) == res.blob
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=job, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    with pytest.raises(UnsafeArchive):
        unpack(bad, tmp_path / "bad-out", "0" * 64)
    for t in threads:
        t.join()
    assert errors == []
    for i, src in enumerate(srcs):
        for rep in range(3):
            assert tree_digest(tmp_path / f"out{i}-{rep}") == tree_digest(src)
