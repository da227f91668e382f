"""explorer.py end to end in headless Chromium on the shipped demo dataset: heatmaps (default) and the
shared 3-D scene render, a filter change redraws them, and a real mouse click on a heatmap cell or on
a 3-D surface shows the cell's point IDs. Plus the explorer's pure pieces (click mapping, grids,
figures) on the real demo DB."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from analyze_fixtures import build_demo
from webapp_browser import (
    ROOT,
    app_server,
    choose,
    chromium,
    console_errors,
    needs_browser,
    save_screenshot,
    text_of,
    wait_ready,
)

pytestmark = pytest.mark.timeout(400)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_demo(tmp_path_factory.mktemp("ex"))


def _db_ids(demo: Path, label: str, task: str) -> set[str]:
    import duckdb

    with duckdb.connect(str(demo.parent / "pointsdb-demo.db"), read_only=True) as con:
        return {r[0] for r in con.execute(
            "SELECT CAST(p.id AS VARCHAR) FROM points p JOIN evals e USING (eval_id) WHERE e.label LIKE ? "
            "AND p.base_task = ?", [label + "%", task]).fetchall()}


def _traces(driver) -> list[list[str]]:
    """[type, name] of every trace of the surfaces figure, as plotly holds them in the page."""
    return driver.execute_script("var g = document.querySelector('#ex-surfaces .js-plotly-plot');"
                                 "return g ? g.data.map(t => [t.type, t.name || '']) : [];")


def _point_ids(driver, timeout: float = 10) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ids = [e.text for e in driver.find_elements("css selector", ".ex-point-id")]
        if ids:
            return ids
        time.sleep(0.2)
    return []


def click_heatmap(driver, index: int) -> list[str]:
    """Hover then click the middle of the index-th heatmap panel (then nearby) until point IDs appear."""
    from selenium.webdriver.common.action_chains import ActionChains

    sub = "xy" if index == 0 else f"x{index + 1}y{index + 1}"
    area = driver.find_element("css selector", f"#ex-surfaces .nsewdrag[data-subplot='{sub}']")
    for dx, dy in ((0, 0), (15, 15), (-20, 10), (25, -25)):
        chain = ActionChains(driver).move_to_element_with_offset(area, dx, dy).pause(0.3)
        chain.move_by_offset(1, 1).pause(0.3).click().perform()
        ids = _point_ids(driver, 5)
        if ids:
            return ids
    return []


def click_scene(driver) -> list[str]:
    """Click the 3-D scene's canvas (centre first, then nearby) until point IDs appear."""
    from selenium.webdriver.common.action_chains import ActionChains

    canvas = driver.find_element("css selector", "#ex-surfaces canvas")
    for dx, dy in ((0, 30), (0, 0), (-40, 50), (40, 10), (0, 80), (30, 60)):
        chain = ActionChains(driver).move_to_element_with_offset(canvas, dx - 20, dy)
        for _ in range(4):  # plotly's WebGL scene picks on mouse moves: give it a few to wake up
            chain = chain.move_by_offset(5, 0).pause(0.3)
        # plotly's 3-D scene sees a click in its render loop: hold the button across a few frames
        chain.pause(0.5).click_and_hold().pause(0.3).release().perform()
        ids = _point_ids(driver)
        if ids:
            return ids
    return []


def switch_to_3d(driver) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.find_element("css selector", "#ex-mode input[value='3d']").click()
    WebDriverWait(driver, 120).until(lambda x: "3-D surfaces" in text_of(x, "ex-status"))
    wait_ready(driver, "ex-status", 120)


def _clicked_label(point: str) -> str:
    return point.split(" · ", 1)[0].strip()


@needs_browser
def test_heatmaps_render_and_click_shows_point_id_and_failing_answers(demo: Path) -> None:
    with app_server("explorer.py", str(demo)) as url, chromium() as d:
        d.get(url)
        wait_ready(d, "ex-status")
        status = text_of(d, "ex-status")
        assert "3 evaluations" in status and "2-D heatmaps" in status
        traces = _traces(d)
        assert [t for t, _ in traces] == ["heatmap"] * 3
        assert traces[1][1].startswith("SimLlama-70B")
        assert not d.find_elements("css selector", "#ex-surfaces .gl-container canvas")  # no WebGL
        ids = click_heatmap(d, 1)
        assert ids, "a click on the heatmap showed no point"
        assert set(ids) <= _db_ids(demo, "SimLlama-70B", "arithmetic")
        point = text_of(d, "ex-point")
        assert point.startswith("SimLlama-70B") and "arithmetic" in point
        failing = d.find_elements("css selector", ".ex-failures")
        assert failing and ("failing answers of" in failing[0].text or "no failing answers" in failing[0].text)
        # the slice panel follows the clicked cell's params.length
        length = point.split("params.length = ", 1)[1].split(" ", 1)[0]
        assert f"params.length = {length}" in text_of(d, "ex-slice")
        save_screenshot(d, "explorer")
        assert console_errors(d) == []


@needs_browser
def test_shared_3d_scene_click_shows_point_id(demo: Path) -> None:
    """The 3-D toggle draws every eval's surface in ONE scene (one WebGL canvas), with a legend; a
    click on a surface shows the point IDs of the clicked eval's cell."""
    with app_server("explorer.py", str(demo)) as url, chromium() as d:
        d.get(url)
        wait_ready(d, "ex-status")
        switch_to_3d(d)
        traces = _traces(d)
        surfaces = [n for t, n in traces if t == "mesh3d" and not n.endswith("lower bound")]
        assert len(surfaces) == 3 and surfaces[1].startswith("SimLlama-70B")
        assert len(d.find_elements("css selector", "#ex-surfaces .gl-container")) == 1
        legend = d.execute_script("return Array.from(document.querySelectorAll('#ex-surfaces .legendtext'))"
                                  ".map(t => t.textContent)")
        assert any(s.startswith("SimLlama-70B") for s in legend)
        ids = click_scene(d)
        assert ids, "a click on the 3-D scene showed no point"
        point = text_of(d, "ex-point")
        assert "arithmetic" in point
        assert set(ids) <= _db_ids(demo, _clicked_label(point), "arithmetic")
        save_screenshot(d, "explorer-3d")
        assert console_errors(d) == []


@needs_browser
def test_filter_change_redraws_under_url_base_pathname(demo: Path) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    with app_server("explorer.py", str(demo), "--url-base-pathname", "/rs/", "--tokenizer", "bytes") as url, \
            chromium() as d:
        assert url.endswith("/rs/")
        d.get(url)
        wait_ready(d, "ex-status")
        choose(d, "ex-evals", "SimQwen-8B (sim, ability 1.05)")
        WebDriverWait(d, 60).until(lambda x: "4 evaluations" in text_of(x, "ex-status"))
        choose(d, "ex-view", "tables · rows_operation (params.num_rows × params.operation)")
        WebDriverWait(d, 60).until(lambda x: text_of(x, "ex-status").startswith("tables · rows_operation"))
        wait_ready(d, "ex-status")
        traces = _traces(d)
        assert len(traces) == 4 and traces[3][1].startswith("SimQwen-8B")
        ids = click_heatmap(d, 0)
        assert ids and set(ids) <= _db_ids(demo, "SimLlama-3B", "tables")
        WebDriverWait(d, 60).until(lambda x: "prompt token spectrum" in text_of(x, "ex-fft"))
        assert console_errors(d) == []


def test_bad_tokenizer_is_one_line_error(demo: Path, tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, str(ROOT / "explorer.py"), str(demo), "--tokenizer", str(tmp_path / "no")],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --tokenizer")


@needs_browser
def test_click_on_bare_surface_vertex_shows_point_id(demo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Large surfaces are drawn without per-cell markers: a click on the surface itself must work too."""
    monkeypatch.setenv("REASONSCAPE_MARKER_CELLS", "0")
    with app_server("explorer.py", str(demo)) as url, chromium() as d:
        d.get(url)
        wait_ready(d, "ex-status")
        switch_to_3d(d)
        assert [t for t, _ in _traces(d) if t == "scatter3d"] == []
        ids = click_scene(d)
        assert ids
        assert set(ids) <= _db_ids(demo, _clicked_label(text_of(d, "ex-point")), "arithmetic")
        assert console_errors(d) == []


# --- the pure pieces on the real demo DB -------------------------------------------------------------

@pytest.fixture(scope="module")
def demo_surface(demo: Path):
    from reasonscape.analysis.surface import surface
    from reasonscape.webapps.layout import eval_options
    from reasonscape.webapps.server import open_source

    src = open_source(demo)
    try:
        evals = [e for e, _ in src.run(eval_options)]
        frame = src.run(surface, {"base_task": "arithmetic", "eval_id": evals[:3]}, split_by=None,
                        config=src.config).frame
        yield frame[frame["task"] == "arithmetic"], evals[:3], dict(src.run(eval_options))
    finally:
        src.db.close()


def test_surface_grids_place_every_cell(demo_surface) -> None:
    import numpy as np

    from reasonscape.plots import web

    frame, evals, _ = demo_surface
    frame = frame[frame["view"] == frame["view"].iat[0]]
    xs, ys, grids = web.surface_grids(frame, evals)
    assert list(grids) == evals
    for r in frame.itertuples(index=False):
        z, lo = grids[r.eval_id]
        assert math.isclose(z[ys.index(r.y), xs.index(r.x)], r.center)
        assert math.isclose(lo[ys.index(r.y), xs.index(r.x)], r.low)
    cells = sum(int((~np.isnan(z)).sum()) for z, _ in grids.values())
    assert cells == len(frame)
    # an eval without cells gets an all-empty grid, not an error
    xs2, ys2, empty = web.surface_grids(frame, ["no-such-eval"])
    assert (xs2, ys2) == (xs, ys) and np.isnan(empty["no-such-eval"][0]).all()


def test_figures_one_panel_per_eval_and_one_scene(demo_surface) -> None:
    import json

    from reasonscape.plots import web

    frame, evals, labels = demo_surface
    frame = frame[frame["view"] == frame["view"].iat[0]]
    dims = (frame["x_dim"].iat[0], frame["y_dim"].iat[0])
    grids = web.surface_grids(frame, evals)
    heat = web.surface_grid_figure(grids, dims, labels, "r")
    assert [t["type"] for t in heat["data"]] == ["heatmap"] * 3
    assert [t["name"] for t in heat["data"]] == [labels[e] for e in evals]
    assert {t["xaxis"] for t in heat["data"]} == {"x", "x2", "x3"}
    assert sum(t["showscale"] for t in heat["data"]) == 1  # one colour scale for all panels
    scene = web.surface_scene_figure(grids, dims, labels, "r")
    kinds = [t["type"] for t in scene["data"]]
    assert kinds.count("mesh3d") == 6  # centre + lower bound per eval
    assert [t for t in scene["data"] if t.get("visible") == "legendonly"] == [
        t for t in scene["data"] if t["name"].endswith("lower bound")]
    assert "scene2" not in scene["layout"]  # one scene, one WebGL context
    # small: grids of cells, nothing per test (the demo view has tens of cells)
    assert len(json.dumps(heat, default=str)) < 20_000 * len(evals)


def test_grid_mesh_leaves_holes_and_degenerate_grids() -> None:
    import numpy as np

    from reasonscape.plots import web

    z = np.array([[0.1, 0.2, 0.3], [0.4, np.nan, 0.6]])
    rows, cols, tris = web.grid_mesh(z)
    assert len(rows) == 5 and not np.isnan(z[rows, cols]).any()
    corners = sorted(sorted(zip(rows[t].tolist(), cols[t].tolist(), strict=True)) for t in tris)
    assert corners == [[(0, 0), (0, 1), (1, 0)], [(0, 1), (0, 2), (1, 2)]]  # one triangle per 3-corner square
    full = web.grid_mesh(np.zeros((3, 4)))[2]
    assert len(full) == 2 * 2 * 3 and full.max() == 11
    for shape in ((1, 5), (5, 1), (0, 0)):
        assert len(web.grid_mesh(np.zeros(shape))[2]) == 0
    one_row = web.surface_scene_figure(([1, 2, 3], ["a"], {"e": (np.array([[0.5, 0.6, np.nan]]),) * 2}),
                                       ("x", "y"), {}, "r")
    assert [t["type"] for t in one_row["data"]] == ["scatter3d"] and one_row["data"][0]["showlegend"]


def test_click_cell_maps_clicks_and_rejects_hostile_input() -> None:
    from reasonscape.webapps.explorer import click_cell

    heat = {"view": "t|v", "mode": "heatmap", "traces": ["e1", "e2"], "xs": ["1", "2", "10"],
            "ys": ["a", "b"]}
    scene = {**heat, "mode": "3d", "traces": ["e1", "e1", "e2", "e2"]}
    assert click_cell({"points": [{"curveNumber": 1, "x": "10", "y": "b"}]}, heat) == {
        "view": "t|v", "eval_id": "e2", "x": "10", "y": "b"}
    assert click_cell({"points": [{"curveNumber": 2, "x": 2.0, "y": 1}]}, scene) == {
        "view": "t|v", "eval_id": "e2", "x": "10", "y": "b"}
    assert click_cell({"points": [{"curveNumber": 0, "x": 0.4, "y": -0.2}]}, scene)["x"] == "1"
    hostile = [None, 3, "x", [], {}, {"points": []}, {"points": "x"}, {"points": [None]},
               {"points": [{"curveNumber": 9, "x": "1", "y": "a"}]},
               {"points": [{"curveNumber": -1, "x": "1", "y": "a"}]},
               {"points": [{"curveNumber": True, "x": "1", "y": "a"}]},
               {"points": [{"curveNumber": "0", "x": "1", "y": "a"}]},
               {"points": [{"curveNumber": 0, "x": "99", "y": "a"}]},
               {"points": [{"curveNumber": 0, "x": {"$gt": 1}, "y": "a"}]},
               {"points": [{"curveNumber": 0, "x": "1'; DROP TABLE points; --", "y": "a"}]},
               {"points": [{"curveNumber": 0, "x": "1", "y": None}]}]
    for data in hostile:
        assert click_cell(data, heat) is None, data
    for bad in ({"points": [{"curveNumber": 0, "x": 3, "y": 0}]},
                {"points": [{"curveNumber": 0, "x": "nan", "y": 0}]},
                {"points": [{"curveNumber": 0, "x": 1e308 * 10, "y": 0}]},
                {"points": [{"curveNumber": 0, "x": [1], "y": 0}]}):
        assert click_cell(bad, scene) is None, bad
    for drawn in (None, "x", {}, {**heat, "traces": "e1"}, {**heat, "xs": None}, {**heat, "view": ["t|v"]},
                  {**heat, "traces": [["e1"], "e2"]}):
        assert click_cell({"points": [{"curveNumber": 0, "x": "1", "y": "a"}]}, drawn) is None


def test_update_callback_survives_forged_requests(demo: Path) -> None:
    """The callback endpoint takes whatever a client posts: wrong types, unknown ids, SQL-looking text
    and a forged click answer with a status line or a panel, never a server error."""
    from reasonscape.webapps.explorer import build_app
    from reasonscape.webapps.layout import eval_options
    from reasonscape.webapps.server import open_source

    src = open_source(demo)
    try:
        app = build_app(src)
        client = app.server.test_client()
        dep = next(d for d in client.get("/_dash-dependencies").get_json() if "ex-surfaces.figure" in d["output"])
        outs = [{"id": i, "property": p} for i, p in (o.rsplit(".", 1) for o in dep["output"].strip(".").split("..."))]
        layout = client.get("/_dash-layout").get_json()
        assert "3 evaluations" in str(layout)  # the first view is in the page itself
        view, good = "arithmetic|depth_length", [e for e, _ in eval_options(src.db)][:2]

        def post(key, evals, mode, click, changed="ex-evals.value"):  # noqa: ANN001
            values = {"ex-view": key, "ex-evals": evals, "ex-mode": mode, "ex-click": click}
            body = {"output": dep["output"], "outputs": outs, "state": [], "changedPropIds": [changed],
                    "inputs": [{"id": k, "property": "data" if k == "ex-click" else "value", "value": v}
                               for k, v in values.items()]}
            r = client.post("/_dash-update-component", json=body)
            assert r.status_code == 200, (values, r.data[:300])
            return r.get_json()["response"]

        assert "2 evaluations" in str(post(view, good, "heatmap", None)["ex-status"])
        assert "3-D surfaces" in str(post(view, good, "3d", None, "ex-mode.value")["ex-status"])
        for evals in ("x", 7, None, [None, 1, {"a": 1}], ["'; DROP TABLE points; --"], ["nope"] * 10_000):
            assert "choose at least one evaluation" in str(post(view, evals, "heatmap", None)["ex-status"])
        for key in ("'; DROP TABLE points; --", None, 3, ["a"]):
            assert "no 2-dim view" in str(post(key, good, "heatmap", None)["ex-status"])
        assert "2-D heatmaps" in str(post(view, good, {"x": 1}, None)["ex-status"])  # unknown mode: default
        for click in ({"view": view, "eval_id": good[0], "x": {"$gt": 0}, "y": "1"}, {"view": view}, "x", [1],
                      {"view": view, "eval_id": good[0], "x": "1' OR 1=1 --", "y": "4"}):
            point = str(post(view, good, "heatmap", click, "ex-click.data")["ex-point"])
            assert "click a cell" in point or "0 points" in point, point
    finally:
        src.db.close()


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "9" * 30, "\u0663"])
def test_bad_marker_cells_env_is_one_line_error_before_the_server_starts(demo: Path, value: str) -> None:
    res = subprocess.run([sys.executable, str(ROOT / "explorer.py"), str(demo), "--port", "1"],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "REASONSCAPE_MARKER_CELLS": value})
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert "REASONSCAPE_MARKER_CELLS" in res.stderr and "Traceback" not in res.stderr
