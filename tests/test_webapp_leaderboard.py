"""leaderboard.py end to end: the real script on 127.0.0.1 with the shipped demo dataset, driven in
headless Chromium (see tests/webapp_browser.py), plus its one-line startup errors."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
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

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_demo(tmp_path_factory.mktemp("lb"))


@pytest.fixture(scope="module")
def labels(demo: Path) -> list[str]:
    import duckdb

    cfg = json.loads(demo.read_text())
    with duckdb.connect(str(demo.parent / cfg["db"]), read_only=True) as con:
        return [r[0] for r in con.execute("SELECT label FROM evals").fetchall()]


def _rows(driver) -> list[str]:
    return [r.text for r in driver.find_elements("css selector", "#lb-table tr.lb-row")]


@needs_browser
def test_renders_every_demo_model_ranked_with_heatmap_and_no_console_errors(demo: Path, labels: list[str]) -> None:
    with app_server("leaderboard.py", str(demo)) as url, chromium() as d:
        d.get(url)
        wait_ready(d, "lb-status")
        rows = _rows(d)
        assert len(rows) == len(labels) == 6
        for lab in labels:
            assert any(lab in r for r in rows), lab
        assert [r.split(" ", 1)[0] for r in rows] == [str(i) for i in range(1, 7)]
        cells = d.find_elements("css selector", "#lb-heatmap .heatmaplayer, #lb-heatmap g.textpoint")
        assert cells, "heatmap not drawn"
        heat_text = text_of(d, "lb-heatmap")
        for task in ("arithmetic", "boolean", "sort", "tables"):
            assert task in heat_text
        assert console_errors(d) == []
        save_screenshot(d, "leaderboard")


@needs_browser
def test_facet_filter_updates_view_and_url_shares_it(demo: Path) -> None:
    with app_server("leaderboard.py", str(demo)) as url, chromium() as d:
        d.get(url)
        wait_ready(d, "lb-status")
        assert text_of(d, "lb-status").startswith("6 evaluations")
        choose(d, "lb-tags", "arch:moe")
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(d, 30).until(lambda x: text_of(x, "lb-status").startswith("1 evaluation "))
        rows = _rows(d)
        assert len(rows) == 1 and "SimQwen-30B-A3B" in rows[0]
        shared = d.current_url
        assert "tags=arch%3Amoe" in shared
        # a second browser opening the shared URL sees the same filtered view
        with chromium() as d2:
            d2.get(shared)
            wait_ready(d2, "lb-status")
            WebDriverWait(d2, 30).until(lambda x: text_of(x, "lb-status").startswith("1 evaluation "))
            assert "SimQwen-30B-A3B" in _rows(d2)[0]
            assert "arch:moe" in text_of(d2, "lb-tags")
        assert console_errors(d) == []


@needs_browser
def test_pagination_and_url_base_pathname(demo: Path) -> None:
    with app_server("leaderboard.py", str(demo), "--url-base-pathname", "/rs/") as url, chromium() as d:
        assert url.endswith("/rs/")
        d.get(url + "?size=10&page=1&sort=ratio")
        wait_ready(d, "lb-status")
        assert len(_rows(d)) == 6
        # a page past the end is clamped to the last page, not an empty table
        d.get(url + "?page=99")
        wait_ready(d, "lb-status")
        assert text_of(d, "lb-page-label") == "page 1 of 1" and len(_rows(d)) == 6
        # unknown and malicious values in the URL are ignored, not passed on
        d.get(url + "?tags=x'%3B%20DROP%20TABLE%20points%3B--&manifold=nope&sort=evil&size=7")
        wait_ready(d, "lb-status")
        assert text_of(d, "lb-status").startswith("6 evaluations")
        assert console_errors(d) == []


@needs_browser
def test_group_by_params_for_single_task_view(demo: Path) -> None:
    with app_server("leaderboard.py", str(demo), "--group-by", "params.length") as url, chromium() as d:
        d.get(url + "?groups=8&groups=16")
        wait_ready(d, "lb-status")
        columns = [t.text for t in d.find_elements("css selector", "#lb-heatmap .xtick text")]
        assert columns == ["8", "16"]
        assert len(_rows(d)) == 6
        assert console_errors(d) == []


@needs_browser
def test_hostile_label_is_shown_as_text(demo: Path, tmp_path: Path) -> None:
    """The ranking table is HTML made on the server: a label full of markup, JSX braces and Markdown
    from the DB must reach the page as plain text (no element, no script, no link)."""
    import shutil

    import duckdb

    db = tmp_path / "hostile.db"
    shutil.copy(demo.parent / json.loads(demo.read_text())["db"], db)
    label = '<img src=x onerror="window.__pwned=1">{window.__pwned=2} [x](javascript:alert(1)) & \'q\''
    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE evals SET label = ? WHERE eval_id = '13d93e'", [label])
    with app_server("leaderboard.py", str(db)) as url, chromium() as d:
        d.get(url)
        wait_ready(d, "lb-status")
        rows = _rows(d)
        assert len(rows) == 6 and any(label in r for r in rows), rows
        assert not d.find_elements("css selector", "#lb-table img, #lb-table a, #lb-table script")
        assert d.execute_script("return window.__pwned === undefined")
        assert console_errors(d) == []


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "leaderboard.py"), *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def _one_error_line(res: subprocess.CompletedProcess) -> str:
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.stderr
    return lines[0]


def test_missing_db_and_bad_config_are_one_line_errors(tmp_path: Path) -> None:
    res = _run(str(tmp_path / "nope.json"))
    assert res.returncode == 2 and "dataset not found" in _one_error_line(res)
    cfg = tmp_path / "d.json"
    cfg.write_text(json.dumps({"name": "d", "db": "pointsdb-d.db", "cohorts": []}))
    res = _run(str(cfg))
    assert res.returncode == 2 and str(cfg) in _one_error_line(res)
    cfg.write_text("{not json")
    res = _run(str(cfg))
    assert res.returncode == 2 and str(cfg) in _one_error_line(res)


def test_bad_flags_are_one_line_errors(demo: Path) -> None:
    for args, needle in ((["--group-by", "params.lenght"], "params.length"),
                         (["--group-by", "params); DROP TABLE points;--"], "--group-by"),
                         (["--url-base-pathname", "/a b/"], "--url-base-pathname"),
                         (["--port", "70000"], "--port")):
        res = _run(str(demo), *args)
        assert res.returncode == 2, (args, res.stderr)
        assert needle in _one_error_line(res)


def test_port_in_use_is_one_line_error_suggesting_port(demo: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        res = _run(str(demo), "--port", str(port))
    assert res.returncode == 1
    line = _one_error_line(res)
    assert str(port) in line and "--port" in line
