"""spiderweb.py end to end in headless Chromium on the shipped demo dataset."""

from __future__ import annotations

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
    return build_demo(tmp_path_factory.mktemp("sw"))


def _cards(driver) -> list[str]:
    """The texts of the cards shown (a card whose eval the filters leave out is hidden, not removed)."""
    return [c.text for c in driver.find_elements("css selector", "#sw-cards .sw-card") if c.is_displayed()]


def _shown(driver, css: str) -> int:
    """How many shown cards hold an element matching `css`."""
    return sum(1 for c in driver.find_elements("css selector", "#sw-cards .sw-card")
               if c.is_displayed() and c.find_elements("css selector", css))


@needs_browser
def test_radar_per_demo_model_with_archetype_and_filter_and_bar_toggle(demo: Path) -> None:
    import duckdb
    from selenium.webdriver.support.ui import WebDriverWait

    from reasonscape.webapps.archetype import ARCHETYPES

    with duckdb.connect(str(demo.parent / "pointsdb-demo.db"), read_only=True) as con:
        labels_by_id = dict(con.execute("SELECT eval_id, label FROM evals").fetchall())
    labels = list(labels_by_id.values())
    with app_server("spiderweb.py", str(demo)) as url, chromium() as d:
        d.get(url)
        wait_ready(d, "sw-status")
        cards = _cards(d)
        assert len(cards) == len(labels) == 6
        for lab in labels:
            assert any(c.startswith(lab) for c in cards), lab
        kinds = [k.text for k in d.find_elements("css selector", ".sw-archetype")]
        assert len(kinds) == 6 and set(kinds) <= set(ARCHETYPES)
        assert len(d.find_elements("css selector", "#sw-cards g.polar")) == 6
        assert "4 base_task groups" in text_of(d, "sw-status")
        save_screenshot(d, "spiderweb")
        choose(d, "sw-tags", "arch:moe")
        WebDriverWait(d, 30).until(lambda x: text_of(x, "sw-status").startswith("1 evaluation "))
        assert len(_cards(d)) == 1 and _cards(d)[0].startswith("SimQwen-30B-A3B")
        d.find_element("css selector", "#sw-style input[value='bar']").click()
        WebDriverWait(d, 30).until(lambda x: _shown(x, "g.trace.bars") == 1)
        assert _shown(d, "g.polar") == 0
        # the cards the tag hid come back drawn as bars too (their figures were stale while hidden)
        choose(d, "sw-tags", "arch:moe")  # a second click on a chosen option clears it
        WebDriverWait(d, 30).until(lambda x: text_of(x, "sw-status").startswith("6 evaluations "))
        WebDriverWait(d, 30).until(lambda x: _shown(x, "g.trace.bars") == 6)
        assert _shown(d, "g.polar") == 0 and len(_cards(d)) == 6
        kinds_after = [k.text for k in d.find_elements("css selector", ".sw-archetype")]
        assert kinds_after == kinds  # the same population again: the same archetypes
        # an eval taken out of the selection disappears; put back, it is the last card
        choose(d, "sw-evals", labels_by_id["13d93e"])
        WebDriverWait(d, 30).until(lambda x: text_of(x, "sw-status").startswith("5 evaluations "))
        assert len(_cards(d)) == 5 and not any(c.startswith("SimQwen-30B-A3B") for c in _cards(d))
        choose(d, "sw-evals", labels_by_id["13d93e"])
        WebDriverWait(d, 30).until(lambda x: text_of(x, "sw-status").startswith("6 evaluations "))
        assert len(_cards(d)) == 6 and _shown(d, "g.trace.bars") == 6
        assert _cards(d)[-1].startswith("SimQwen-30B-A3B")
        assert console_errors(d) == []


@needs_browser
def test_group_by_params_under_url_base_pathname(demo: Path) -> None:
    with app_server("spiderweb.py", str(demo), "--group-by", "params.length", "--url-base-pathname", "/rs/") as url, \
            chromium() as d:
        assert url.endswith("/rs/")
        d.get(url)
        wait_ready(d, "sw-status")
        assert len(_cards(d)) == 6
        assert "params.length groups" in text_of(d, "sw-status")
        assert console_errors(d) == []


def test_unknown_group_by_is_one_line_error(demo: Path) -> None:
    res = subprocess.run([sys.executable, str(ROOT / "spiderweb.py"), str(demo), "--group-by", "params.operaton"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "params.operation" in lines[0]
