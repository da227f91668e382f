"""Calibrated tasks: target_tokens resolves to the largest num_rows whose questions fit, with a real tokenizer."""

from __future__ import annotations

import pytest
from local_tokenizer import make_local_tokenizer

from reasonscape.errors import InputError
from reasonscape.manifold import calibrate, expand_points, load_config, load_token_counter
from reasonscape.tasks.base import generate_tests
from reasonscape.tasks.registry import get_task


@pytest.fixture(scope="module")
def counter(tmp_path_factory):
    return load_token_counter(str(make_local_tokenizer(tmp_path_factory.mktemp("tok"))))


def _size(task, params, counter):
    tests = generate_tests(task, params, 42, 3)
    return sum(counter(t.question) for t in tests) / len(tests)


def test_num_rows_is_the_largest_that_fits(counter):
    tables = get_task("tables")
    base = {"format": "csv", "operation": "sum"}
    for target in (300, 1000, 3000):
        rows = calibrate(tables, base, target, counter, 42)
        assert _size(tables, {**base, "num_rows": rows}, counter) <= target
        assert _size(tables, {**base, "num_rows": rows + 1}, counter) > target


def test_calibrated_points_grow_with_target_and_keep_their_manifold(tmp_path, counter):
    cfg_path = tmp_path / "t.yaml"
    cfg_path.write_text("name: t\ntasks:\n  - name: tables\n    mode: calibrate\n    grids:\n"
                        "      csv_tall: {target_tokens: [500, 1000, 2000], format: csv}\n"
                        "      json_recs: {target_tokens: [1000], format: json}\n")
    pts = expand_points(load_config(cfg_path), token_counter=counter)
    rows = [p.params["num_rows"] for p in pts if p.manifold["id"] == "csv_tall"]
    assert rows == sorted(rows) and len(set(rows)) == 3
    json_pt = next(p for p in pts if p.manifold["id"] == "json_recs")
    assert json_pt.manifold == {"id": "json_recs", "target_tokens": 1000}
    assert json_pt.params["num_rows"] < rows[1]  # JSON spends more tokens per row than CSV


def test_calibrate_mode_without_a_tokenizer_is_a_one_line_error(tmp_path):
    cfg_path = tmp_path / "t.yaml"
    cfg_path.write_text("name: t\ntasks:\n  - name: tables\n    mode: calibrate\n    grids: {g: {target_tokens: 500}}\n")
    with pytest.raises(InputError, match="calibrate mode: pass --tokenizer"):
        expand_points(load_config(cfg_path))


def test_missing_tokenizer_is_a_one_line_error(tmp_path):
    with pytest.raises(InputError, match=r"--tokenizer .*nope: cannot load a tokenizer") as info:
        load_token_counter(str(tmp_path / "nope"))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("target", [-5, 0, True, "lots", 1.5])
def test_calibrate_rejects_a_target_that_is_not_a_token_count(counter, target):
    with pytest.raises(InputError, match="target_tokens .* is not a positive whole number"):
        calibrate(get_task("tables"), {"format": "csv"}, target, counter, 42)
    with pytest.raises(InputError, match="needs a calibrated task"):
        calibrate(get_task("arithmetic"), {}, 100, counter, 42)
