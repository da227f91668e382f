"""The step record survives round trips, old/new schemas, and crashes mid-write."""

import pytest

from reasonscape.errors import InputError
from reasonscape.records import StepRecord, StepWriter, TestResult, iter_step_dicts, read_steps


def _record(i=0):
    return StepRecord(model="m", template="t", sampler="s", base_task="arithmetic", params={"length": 8},
                      manifold={"id": "g", "target_tokens": None}, seed=42,
                      tests=[TestResult(index=i, question="1+1", reference="2", answer="<answer>2</answer>",
                                        extracted="2", status="correct", completion_tokens=5)])


def test_round_trip_keeps_unknown_fields_and_defaults_missing_ones(tmp_path):
    d = _record().to_dict()
    d["future_field"] = {"x": 1}
    d["tests"][0]["future_test_field"] = 3
    del d["manifold"]
    rec = StepRecord.from_dict(d)
    assert rec.manifold == {}
    out = rec.to_dict()
    assert out["future_field"] == {"x": 1} and out["tests"][0]["future_test_field"] == 3
    assert "error" not in out["tests"][0]


def test_torn_last_line_is_repaired_before_appending(tmp_path):
    path = tmp_path / "result-steps.ndjson"
    with StepWriter(path, fsync=False) as w:
        w.write(_record(0))
    with open(path, "ab") as fh:
        fh.write(b'{"model": "m", "tests": [')  # crash mid-write
    assert [r.tests[0].index for r in read_steps(path)] == [0]
    with StepWriter(path, fsync=False) as w:
        w.write(_record(1))
    assert [r.tests[0].index for r in read_steps(path)] == [0, 1]


def test_malformed_line_names_file_and_line(tmp_path):
    path = tmp_path / "x.ndjson"
    path.write_bytes(_record().to_line() + b"{not json}\n" + _record(1).to_line())
    with pytest.raises(InputError, match=r"x.ndjson:2: malformed"):
        list(iter_step_dicts(path))
    assert [n for n, _ in iter_step_dicts(path, strict=False)] == [1, 3]


def test_compressed_steps_read_like_plain_ones(tmp_path):
    import zstandard

    from reasonscape.records import steps_file

    folder = tmp_path / "run"
    folder.mkdir()
    data = _record(0).to_line() + _record(1).to_line()
    (folder / "result-steps.ndjson.zst").write_bytes(zstandard.ZstdCompressor().compress(data))
    path = steps_file(folder)
    assert path.name == "result-steps.ndjson.zst"
    assert [r.tests[0].index for r in read_steps(path)] == [0, 1]
    (folder / "result-steps.ndjson").write_bytes(data[:10])  # a plain file wins: it is the live one
    assert steps_file(folder).name == "result-steps.ndjson"


def test_a_torn_or_garbage_zst_steps_file_is_an_error_naming_it(tmp_path):
    """A compressed steps file cut short (or not zstd at all) must not read as a shorter run."""
    import zstandard

    from reasonscape.errors import InputError
    from reasonscape.records import open_steps

    data = b"".join(b'{"model": "m", "i": %d}\n' % i for i in range(20000))
    packed = zstandard.ZstdCompressor().compress(data)
    good = tmp_path / "good.ndjson.zst"
    good.write_bytes(packed + packed)  # two frames read as one stream
    with open_steps(good) as fh:
        assert fh.read() == data + data
    for name, damaged, words in (("torn", packed[: len(packed) // 2], "truncated zstd stream"),
                                 ("garbage", b"not zstd" * 40, "not a valid zstd stream"),
                                 ("tail", packed + b"junk", "not a valid zstd stream")):
        path = tmp_path / f"{name}.ndjson.zst"
        path.write_bytes(damaged)
        with pytest.raises(InputError, match=words) as info, open_steps(path) as fh:
            for _ in fh:
                pass
        assert str(path) in str(info.value)
    empty = tmp_path / "empty.ndjson.zst"
    empty.write_bytes(b"")
    with open_steps(empty) as fh:
        assert fh.read() == b""


# -- located reads (PointsDB.test_locations + read_point_tests) ------------------------------------

def _dataset_in(tmp_path, form):
    import zstandard
    from test_evaluate import make_dataset

    from reasonscape import evaluate as ev
    from reasonscape.records import compress_steps

    ds, recs = make_dataset(tmp_path, per_line=4)
    for plain in sorted((tmp_path / "data").rglob("result-steps.ndjson")):
        if form == "zst-one-frame":
            (plain.parent / (plain.name + ".zst")).write_bytes(zstandard.ZstdCompressor().compress(plain.read_bytes()))
            plain.unlink()
        elif form == "zst-frames":
            assert compress_steps(plain, plain.parent / (plain.name + ".zst"), frame_bytes=2000) > 3
            plain.unlink()
    ev.evaluate_dataset(ds, parallel=1, progress=False)
    return tmp_path / "data" / "pointsdb-demo.db", recs


def _by_point(recs):
    from reasonscape.identity import point_id

    out = {}
    for r in recs:
        out.setdefault(point_id(r.model, r.template, r.sampler, r.base_task, r.params), []).append(r.to_dict())
    return out


@pytest.mark.parametrize("form", ["plain", "zst-one-frame", "zst-frames"])
def test_located_reads_return_exactly_the_records_of_each_point(tmp_path, form):
    from reasonscape.pointsdb import PointsDB
    from reasonscape.records import read_point_tests

    db, recs = _dataset_in(tmp_path, form)
    want = _by_point(recs)
    seeks = set()
    with PointsDB(db) as d:
        for pid, dicts in want.items():
            locs = d.test_locations(pid)
            assert len(locs) == len(dicts) and {loc.compression for loc in locs} == {form.split("-")[0]}
            seeks |= {loc.frame_offset for loc in locs}
            got = sorted((t.index, t.answer) for r in read_point_tests(locs) for t in r.tests)
            assert got == sorted((t["index"], t["answer"]) for r in dicts for t in r["tests"])
            raw = list(read_point_tests(reversed(locs), raw=True))
            assert sorted(map(repr, raw)) == sorted(map(repr, dicts))
    # several frames: lines are reached by seeking to their frame, not by decompressing from the start
    assert len(seeks) > 1 if form == "zst-frames" else seeks == {0}


def test_locations_survive_moving_the_dataset_and_name_missing_or_changed_files(tmp_path):
    import shutil

    from reasonscape.pointsdb import PointsDB
    from reasonscape.records import read_point_tests

    db, recs = _dataset_in(tmp_path / "a", "plain")
    pid = next(iter(_by_point(recs)))
    shutil.copytree(tmp_path / "a" / "data", tmp_path / "b" / "data")
    shutil.rmtree(tmp_path / "a")
    moved = tmp_path / "b" / "data" / "pointsdb-demo.db"
    with PointsDB(moved) as d:
        locs = d.test_locations(pid)
        assert all(str(loc.path).startswith(str(tmp_path / "b")) for loc in locs)
        assert sum(len(r.tests) for r in read_point_tests(locs)) > 0
        with pytest.raises(InputError, match="not found") as info:
            d.test_locations("0123456789abcdef")
        assert "\n" not in str(info.value)
        for bad in ("12", "not-an-id", 7, None):
            with pytest.raises(InputError, match="point id"):
                d.test_locations(bad)
    steps = locs[0].path
    lines = steps.read_bytes().splitlines(keepends=True)
    steps.write_bytes(b"".join(reversed(lines)))  # rewritten: the offsets now point at other records
    with pytest.raises(InputError, match="changed since") as info:
        list(read_point_tests(locs))
    assert "\n" not in str(info.value)
    steps.unlink()
    with pytest.raises(InputError, match="not found.*pull"):
        list(read_point_tests(locs))


def test_locations_follow_a_file_rewritten_by_offline_inplace(tmp_path):
    from test_evaluate import arith, write_folder

    from reasonscape import evaluate as ev
    from reasonscape.pointsdb import PointsDB
    from reasonscape.records import read_point_tests

    recs = write_folder(tmp_path / "run", "ModelA", [(arith(3), range(0, 24)), (arith(5), range(0, 24))], per_line=5)
    steps = tmp_path / "run" / "result-steps.ndjson"
    import json

    spaced = [json.dumps(json.loads(line)) for line in steps.read_text().splitlines()]
    steps.write_text("\n".join(spaced) + "\n")  # with spaces: the compact rewrite moves every line
    db = tmp_path / "i.db"
    ev.evaluate_interview(str(steps), db, parallel=1, progress=False, offline=True, inplace=True)
    assert steps.stat().st_size < sum(len(x) + 1 for x in spaced)
    with PointsDB(db) as d:
        ids = [r[0] for r in d.con.execute("SELECT id FROM points").fetchall()]
        got = sorted(t.index for pid in ids for r in read_point_tests(d.test_locations(pid)) for t in r.tests)
    assert got == sorted(t.index for r in recs for t in r.tests)


def test_a_point_without_recorded_locations_is_a_one_line_error(tmp_path):
    import duckdb

    from reasonscape.pointsdb import PointsDB

    db, recs = _dataset_in(tmp_path, "plain")
    pid = next(iter(_by_point(recs)))
    con = duckdb.connect(str(db))
    con.execute("DELETE FROM point_locations WHERE id = ?", [pid])
    con.close()
    with PointsDB(db) as d, pytest.raises(InputError, match="no test locations recorded.*run evaluate.py") as info:
        d.test_locations(pid)
    assert "\n" not in str(info.value)
