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
