"""explorer.py end to end in headless Chromium on the shipped demo dataset: surfaces render, a filter
change redraws them, and a real mouse click on a 3-D surface shows the cell's point IDs."""

from __future__ import annotations

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
    have_browser,
    save_screenshot,
    text_of,
    wait_ready,
)

needs_browser = pytest.mark.skipif(not have_browser(), reason="needs selenium, /usr/bin/chromium and chromedriver")
pytestmark = pytest.mark.timeout(400)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_demo(tmp_path_factory.mktemp("ex"))


def _db_ids(demo: Path, label_prefix: str, task: str) -> set[str]:
    import duckdb

    with duckdb.connect(str(demo.parent / "pointsdb-demo.db"), read_only=True) as con:
        return {r[0] for r in con.execute(
            "SELECT CAST(p.id AS VARCHAR) FROM points p JOIN evals e USING (eval_id) WHERE e.label LIKE ? "
            "AND p.base_task = ?", [label_prefix + "%", task]).fetchall()}


def click_surface(driver, index: int) -> list[str]:
    """Click the canvas of the index-th surface (centre first, then nearby) until point IDs appear."""
    from selenium.webdriver.common.action_chains import ActionChains

    canvas = driver.find_elements("css selector", ".ex-surface")[index].find_element("css selector", "canvas")
    for dx, dy in ((0, 0), (0, 30), (-40, 20), (40, -20), (0, -40), (30, 40)):
        chain = ActionChains(driver).move_to_element_with_offset(canvas, dx - 20, dy)
        for _ in range(4):  # plotly's WebGL scene picks on mouse moves: give it a few to wake up
            chain = chain.move_by_offset(5, 0).pause(0.3)
        # plotly's 3-D scene sees a click in its render loop: hold the button across a few frames
        chain.pause(0.5).click_and_hold().pause(0.3).release().perform()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ids = [e.text for e in driver.find_elements("css selector", ".ex-point-id")]
            if ids:
                return ids
            time.sleep(0.2)
    return []


@needs_browser
def test_surfaces_render_and_click_shows_point_id_and_failing_answers(demo: Path) -> None:
    with app_server("explorer.py", str(demo)) as url, chromium() as d:
        d.get(url)
        wait_ready(d, "ex-status")
        assert "3 evaluations" in text_of(d, "ex-status")
        surfaces = d.find_elements("css selector", ".ex-surface")
        assert len(surfaces) == 3
        titles = d.execute_script("return Array.from(document.querySelectorAll('.ex-surface .gtitle'))"
                                  ".map(t => t.textContent)")
        assert titles[1].startswith("SimLlama-70B")
        ids = click_surface(d, 1)
        assert ids, "a click on the surface showed no point"
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
        assert len(d.find_elements("css selector", ".ex-surface")) == 4
        ids = click_surface(d, 0)
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
        assert not d.find_elements("css selector", ".ex-surface .scatter3d, .ex-surface g.trace.scatter3d")
        ids = click_surface(d, 1)
        assert ids and set(ids) <= _db_ids(demo, "SimLlama-70B", "arithmetic")
        assert console_errors(d) == []
