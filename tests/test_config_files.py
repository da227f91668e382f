"""Configs, templates and samplers: every shipped file loads; every mistake is one line naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from reasonscape.errors import ConfigError, InputError
from reasonscape.manifold import expand_points, load_config
from reasonscape.prompts import load_sampler, load_template, request_body
from reasonscape.tasks.registry import get_task

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads_and_expands(path):
    cfg = load_config(path)
    grid_tasks = [t.name for t in cfg.tasks if t.mode != "calibrate"]
    points = expand_points(cfg, tasks=grid_tasks)
    assert len(points) >= len(grid_tasks)
    assert len({p.key for p in points}) == len(points)
    for t in cfg.tasks:
        for v in t.views:
            assert all(g.split(".")[0] in ("params", "manifold", "facets") for g in v.group_by)


@pytest.mark.parametrize("path", sorted((ROOT / "templates").glob("*.json")), ids=lambda p: p.name)
def test_every_shipped_template_renders(path):
    tpl = load_template(path)
    sampler = load_sampler(ROOT / "samplers" / "greedy-2k.json")
    task = get_task("arithmetic")
    from reasonscape.prompts import few_shot_examples

    shots = few_shot_examples(task, task.Params(), 99, tpl.shots)
    body = request_body(tpl, sampler, "m", task, "Evaluate this expression:\n{1} + 2", shots)
    text = str(body.get("messages") or body.get("prompt"))
    assert "{1} + 2" in text and "{question}" not in text and "{task_description}" not in text
    assert body["max_tokens"] == 2048 and body["model"] == "m"


@pytest.mark.parametrize("path", sorted((ROOT / "samplers").glob("*.json")), ids=lambda p: p.name)
def test_every_shipped_sampler_loads(path):
    s = load_sampler(path)
    assert s.name == path.stem
    assert "name" not in s.body_params()


def _write(tmp_path, text, name="c.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("text, expected", [
    ("name: x\ntasks:\n  - name: arithmetc\n    grids: {g: {length: 8}}\n", r"tasks\[0\]\.name: unknown task 'arithmetc' \(did you mean arithmetic"),
    ("name: x\ntasks:\n  - name: arithmetic\n    grids: {g: {length: 0}}\n", r"tasks\[0\]\.grids\.g \(arithmetic\): length = 0: .*allowed range 2\.\.100"),
    ("name: x\ntasks:\n  - name: arithmetic\n    grids: {g: {lenght: 8}}\n", r"unknown parameter 'lenght'"),
    ("name: x\ntasks:\n  - name: arithmetic\n    grid: {g: {length: 8}}\n", r"tasks\[0\]\.grid: unknown key"),
    ("name: x\nprecision: {low: {count: 0}}\ntasks:\n  - name: arithmetic\n    grids: {g: {}}\n", r"precision\.low\.count"),
    ("name: x\ntasks: [\n", r"c\.yaml:\d+: invalid YAML"),
    ("- just a list\n", r"top level must be a mapping"),
    ("name: x\ntasks:\n  - name: arithmetic\n    grids: {g: {length: 8}}\n    views:\n      - {view: v, group_by: [length]}\n",
     r"views\[0\]\.group_by: .*not a params"),
])
def test_config_errors_are_one_line_naming_file_and_key(tmp_path, text, expected):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=expected) as info:
        load_config(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_missing_files_suggest_close_matches():
    with pytest.raises(ConfigError, match=r"greedymax.json: sampler file not found \(did you mean .*greedy-max.json"):
        load_sampler(ROOT / "samplers" / "greedymax.json")
    with pytest.raises(ConfigError, match="template file not found"):
        load_template(ROOT / "templates" / "zeroshotnosys.json")


def test_sampler_and_template_key_errors(tmp_path):
    p = tmp_path / "s.json"
    p.write_text('{"temprature": 0.5}')
    with pytest.raises(ConfigError, match=r"s.json: temprature: unknown key; did you mean temperature"):
        load_sampler(p)
    p.write_text('{"temperature": -1}')
    with pytest.raises(ConfigError, match=r"temperature: .*greater than or equal to 0"):
        load_sampler(p)
    p.write_text("{oops")
    with pytest.raises(ConfigError, match="malformed JSON"):
        load_template(p)


def test_grid_expansion_is_a_cartesian_product_with_resolved_defaults(tmp_path):
    path = _write(tmp_path, "name: x\nprecision:\n  low: {count: 8}\n  high: {count: 32, targetci: 0.05, maxrounds: 4}\n"
                            "tasks:\n  - name: arithmetic\n    grids:\n      a: {length: [4, 8], max_depth: [0, 1, 2]}\n"
                            "      b: [{length: 4}, {length: 30, min_value: -99, max_value: 99}]\n")
    cfg = load_config(path)
    pts = expand_points(cfg)
    assert len(pts) == 6 + 1  # b's {length: 4} equals a's (length 4, depth 0): same point, kept once
    assert pts[0].params == {"length": 4, "max_depth": 0, "min_value": -9, "max_value": 9, "prob_dewhitespace": 0.0}
    assert pts[-1].manifold == {"id": "b", "target_tokens": None}
    assert cfg.level(None)[0] == "low" and cfg.level("high")[1].maxrounds == 4
    with pytest.raises(InputError, match="--precision medium: not defined"):
        cfg.level("medium")


def test_calibrate_mode_needs_a_tokenizer_and_target_tokens(tmp_path):
    path = _write(tmp_path, "name: x\ntasks:\n  - name: tables\n    mode: calibrate\n    grids: {g: {format: csv}}\n")
    with pytest.raises(ConfigError, match=r"tasks\[0\]\.grids\.g: calibrate mode needs target_tokens"):
        load_config(path)
    path = _write(tmp_path, "name: x\ntasks:\n  - name: arithmetic\n    mode: calibrate\n"
                            "    grids: {g: {length: 8, target_tokens: 100}}\n")
    with pytest.raises(ConfigError, match="task 'arithmetic' has no calibrated parameter"):
        load_config(path)


def _shipped_and_mixed(tmp_path):
    mixed = _write(tmp_path, "name: m\ntasks:\n  - name: arithmetic\n    grids:\n"
                             "      a: {length: [4, 8], prob_dewhitespace: [0, 0.5, 1]}\n"
                             "      b: [{length: 4, prob_dewhitespace: 0.0}, {length: 30, min_value: -99, max_value: 99}]\n"
                             "  - name: boolean\n    grids: {n: {format: [ON_OFF, BINARY], prob_not: 0}}\n", "mixed.yaml")
    return [*sorted((ROOT / "configs").glob("*.yaml")), mixed]


def test_fast_expansion_equals_per_point_validation(tmp_path):
    """The lean path (no model per point, for a validated config) gives exactly the validated points."""
    from reasonscape.manifold import iter_points

    for path in _shipped_and_mixed(tmp_path):
        cfg = load_config(path)
        names = [t.name for t in cfg.tasks if t.mode != "calibrate"]
        fast = expand_points(cfg, tasks=names)
        slow = list(iter_points(cfg, tasks=names, fast=False))
        assert [p.key for p in fast] == [p.key for p in slow], path.name
        assert [(p.params, list(p.params), p.manifold) for p in fast] == \
               [(p.params, list(p.params), p.manifold) for p in slow], path.name
    mixed = expand_points(load_config(tmp_path / "mixed.yaml"))
    assert len(mixed) == 6 + 1 + 2  # b's first point equals a's (length 4, no dewhitespace): kept once
    assert {type(p.params["prob_dewhitespace"]) for p in mixed if p.base_task == "arithmetic"} == {float}


def test_count_points_counts_without_expanding(tmp_path):
    from reasonscape.manifold import count_points, iter_points

    for path in _shipped_and_mixed(tmp_path):
        cfg = load_config(path)
        names = [t.name for t in cfg.tasks if t.mode != "calibrate"]
        n = len(expand_points(cfg, tasks=names))
        assert count_points(cfg, tasks=names) >= n
    assert count_points(load_config(tmp_path / "mixed.yaml")) == 6 + 2 + 2
    big = _write(tmp_path, "name: big\ntasks:\n  - name: arithmetic\n    grids:\n      g:\n"
                           f"        length: {list(range(2, 101))}\n        max_depth: {list(range(9))}\n"
                           f"        min_value: {list(range(-99, 1))}\n        max_value: {list(range(10, 20))}\n",
                 "big.yaml")
    cfg = load_config(big)
    assert count_points(cfg) == 99 * 9 * 100 * 10
    first = next(iter_points(cfg))  # lazy: the first point comes without making the other 890,999
    assert first.params["length"] == 2 and first.params["max_value"] == 10


def test_yaml_reads_like_a_user_expects(tmp_path):
    """1e-2 is a number, a BOM is fine, anchors and merge keys (with overrides) work."""
    path = tmp_path / "c.yaml"
    path.write_bytes("\ufeffname: x\nprecision:\n  base: &b {count: 8, targetci: 1e-1, maxrounds: 2}\n"
                     "  more: {<<: *b, maxrounds: 4}\ntasks:\n  - name: arithmetic\n    grids: {g: {length: 8}}\n"
                     .encode())
    cfg = load_config(path)
    assert cfg.precision["base"].targetci == 0.1 and cfg.precision["more"].maxrounds == 4
    assert cfg.precision["more"].count == 8


def test_valid_views_and_filters_load(tmp_path):
    path = _write(tmp_path, "name: x\ntasks:\n  - name: tables\n    mode: calibrate\n    grids:\n"
                            "      t: {target_tokens: [500, 1000], format: csv}\n    views:\n"
                            "      - view: a\n        group_by: [manifold.target_tokens, params.operation]\n"
                            "        facet_by: facets.arch\n        filters: {manifold.id: t, params.format: [csv, json],"
                            " params.num_rows: null, facets.size: large, groups: [[arch:moe], [size:small]],"
                            " base_task: tables, manifold.target_tokens: 500}\n")
    view = load_config(path).tasks[0].views[0]
    assert view.facet_by == "facets.arch" and view.filters["params.format"] == ["csv", "json"]
