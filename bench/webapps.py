"""Benchmark: the three web apps in real headless Chromium on a synthetic PointsDB of ~1M points.

    .venv/bin/python bench/webapps.py [--evals 100] [--tasks 12] [--points 800] [--repeat 3] [--apps ...]

The DB is bench/analyze.py's builder (evals x tasks x points, real schema; cached in the temp dir).
Each app runs as the real script on 127.0.0.1; a fresh Chromium (tests/webapp_browser.py) then
measures:
  first render  navigation start -> every callback done and every graph drawn (the first load of a
                fresh profile is reported apart: it also fetches the 4 MB of JS bundles);
  update        the click that changes a filter (a facet tag; for explorer, one more evaluation;
                the option is first typed into the dropdown's search, as a user narrows a long
                list) -> the view redrawn and idle.
Each is measured twice: `wall`, by the driver's clock from the WebDriver command (includes the
driver's own overhead: a WebDriver click takes 0.05-0.4 s on a loaded machine before the page sees
it); `page`, by the page's clock (performance.now()) from navigation start or the click's
pointerdown (its event time, so a busy page's queueing counts) to the second animation frame after
the view is ready (so the drawing has been painted). Before a timed click the option is scrolled
into view and the page left to paint the open menu (two frames). `explorer-3d` is the explorer after its '3-D surfaces' toggle: `3-D switch` is that
toggle's time, then the update is measured in 3-D mode.
Targets: first render <= 1.5 s, update <= 300 ms. Prints every run and the medians.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
TARGET_FIRST, TARGET_UPDATE = 1.5, 0.3
APPS = {  # name -> (script, status element, dropdown changed, option chosen in it (None: first unselected))
    "leaderboard": ("leaderboard", "lb-status", "lb-tags", "size:small"),
    "spiderweb": ("spiderweb", "sw-status", "sw-tags", "size:small"),
    "explorer": ("explorer", "ex-status", "ex-evals", None),
    "explorer-3d": ("explorer", "ex-status", "ex-evals", None),
}
DEFAULT_APPS = ["leaderboard", "spiderweb", "explorer"]
#: In the page: arm(): note the next pointerdown; ready(status, before, done): call done(now) at the
#: second animation frame after the condition of webapp_browser.wait_ready holds (and the status
#: text differs from `before`, when given).
PAGE_JS = """
window.__rsArm = function () {  // e.timeStamp: when the input arrived, before any queueing in the page
  window.__rsDown = null;
  document.addEventListener('pointerdown', function (e) {
    if (window.__rsDown === null) { window.__rsDown = e.timeStamp; }
  }, {capture: true, once: true});
};
window.__rsReady = function (statusId, before, done) {
  function ok() {
    var el = document.getElementById(statusId);
    var busy = document.querySelector('[data-dash-is-loading="true"]');
    var drawn = Array.from(document.querySelectorAll('.dash-graph'))
      .every(function (g) { return g.querySelector('.main-svg') !== null; });
    return el !== null && el.textContent.trim().length > 0 && busy === null && drawn
      && (before === null || el.textContent !== before);
  }
  (function tick() {
    if (!ok()) { requestAnimationFrame(tick); return; }
    requestAnimationFrame(function () { requestAnimationFrame(function () {
      if (ok()) { done(performance.now()); } else { requestAnimationFrame(tick); }
    }); });
  })();
};
"""


def analyze_builder():
    spec = importlib.util.spec_from_file_location("bench_analyze", ROOT / "bench" / "analyze.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.build


def dataset(evals: int, tasks: int, points: int) -> Path:
    from reasonscape.pointsdb import SCHEMA_VERSION

    db = Path(tempfile.gettempdir()) / f"rs-bench-webapps-{evals}x{tasks}x{points}-v{SCHEMA_VERSION}.db"
    if not db.is_file():
        t0 = time.perf_counter()
        analyze_builder()(db, evals, tasks, points)
        print(f"built {db} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return db


def _page_ready(driver, status_id: str, before: str | None, timeout: float = 120.0) -> float:
    """performance.now() (ms) of the page when the view is ready and painted."""
    driver.set_script_timeout(timeout)
    return float(driver.execute_async_script(
        "window.__rsReady(arguments[0], arguments[1], arguments[2]);", status_id, before))


def _settle(driver) -> None:
    """Return once the page has painted two frames (its pending work done)."""
    driver.execute_async_script("var done = arguments[0];"
                                "requestAnimationFrame(() => requestAnimationFrame(() => done(true)));")


def _click_and_time(driver, element, status_id: str) -> tuple[float, float]:
    """(wall, page) seconds from a click on `element` to the view redrawn with a new status text."""
    before = driver.find_element("id", status_id).text
    driver.execute_script("window.__rsArm();")
    t0 = time.perf_counter()
    element.click()
    end = _page_ready(driver, status_id, before)
    wall = time.perf_counter() - t0
    down = driver.execute_script("return window.__rsDown;")
    return wall, (end - float(down)) / 1000 if down is not None else float("nan")


def measure(app: str, db: Path, repeat: int) -> dict[str, list[float]]:
    """Seconds per run: cold (first load of a fresh profile), first / update (wall, page), switch."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait
    from webapp_browser import app_server, chromium

    script, status, dropdown, option = APPS[app]
    out: dict[str, list[float]] = {k: [] for k in ("cold", "first", "first_page", "update", "update_page",
                                                   "switch", "switch_page")}
    with app_server(f"{script}.py", str(db), timeout=180) as url, chromium() as d:
        d.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PAGE_JS})
        for k in range(repeat + 1):
            t0 = time.perf_counter()
            d.get(url)
            page = _page_ready(d, status, None) / 1000
            wall = time.perf_counter() - t0
            if k == 0:
                out["cold"].append(wall)
            else:
                out["first"].append(wall)
                out["first_page"].append(page)
            if app == "explorer-3d":
                radios = d.find_elements(By.CSS_SELECTOR, "#ex-mode input[value='3d']")
                if not radios:
                    raise SystemExit("error: explorer-3d: this explorer has no '3-D surfaces' toggle (#ex-mode)")
                radio = radios[0]
                _settle(d)
                wall, page = _click_and_time(d, radio, status)
                if k:
                    out["switch"].append(wall)
                    out["switch_page"].append(page)
            d.find_element(By.ID, dropdown).click()
            if option is None:  # the first evaluation not shown yet, typed into the search like the others
                first = "(//*[@role='option' and not(@aria-selected='true')])[1]"
                label = WebDriverWait(d, 20).until(ec.element_to_be_clickable((By.XPATH, first))).text.strip()
                d.switch_to.active_element.send_keys(label)
                xp = f"//*[@role='option' and not(@aria-selected='true')][normalize-space()='{label}']"
            else:
                d.switch_to.active_element.send_keys(option)
                xp = f"//*[@role='option' or contains(@class, 'option')]//*[text()='{option}']"
            item = WebDriverWait(d, 20).until(ec.element_to_be_clickable((By.XPATH, xp)))
            # the option in view and the open menu drawn (as a user sees them) before the click is timed:
            # otherwise the driver scrolls first and waits ~0.2 s for the scroll to settle
            d.execute_script("arguments[0].scrollIntoView({block: 'nearest'});", item)
            _settle(d)
            wall, page = _click_and_time(d, item, status)
            if k:
                out["update"].append(wall)
                out["update_page"].append(page)
    return out


def _ok(value: float, target: float) -> str:
    return "ok" if value <= target else "SLOW"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--evals", type=int, default=100)
    ap.add_argument("--tasks", type=int, default=12)
    ap.add_argument("--points", type=int, default=800)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--apps", nargs="*", default=DEFAULT_APPS, choices=list(APPS))
    a = ap.parse_args()
    if a.repeat < 1:
        ap.error("--repeat: expected at least 1")
    db = dataset(a.evals, a.tasks, a.points)
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        n = con.execute("SELECT count(*) FROM points").fetchone()[0]
    print(f"dataset: {a.evals} evals x {a.tasks} tasks, {n:,} points ({db})")
    print(f"medians of {a.repeat} runs; wall = driver's clock, page = page's clock; "
          f"target {TARGET_FIRST} s / {1000 * TARGET_UPDATE:.0f} ms")
    print(f"{'app':12} {'cold':>6} {'first wall':>10} {'first page':>10} {'update wall':>11} "
          f"{'update page':>11}")
    for app in a.apps:
        r = measure(app, db, a.repeat)
        med = {k: statistics.median(v) for k, v in r.items() if v}
        print(f"{app:12} {med['cold']:5.2f}s {med['first']:9.2f}s {med['first_page']:9.2f}s "
              f"{1000 * med['update']:9.0f}ms {1000 * med['update_page']:9.0f}ms  "
              f"first {_ok(med['first'], TARGET_FIRST)}/{_ok(med['first_page'], TARGET_FIRST)}, "
              f"update {_ok(med['update'], TARGET_UPDATE)}/{_ok(med['update_page'], TARGET_UPDATE)} (wall/page)",
              flush=True)
        runs = "; ".join(f"{k} {', '.join(f'{x:.2f}' for x in v)}" for k, v in r.items() if v)
        print(f"{'':12} runs (s): {runs}", flush=True)
        if "switch" in med:
            print(f"{'':12} 3-D switch: {med['switch']:.2f} s wall, {med['switch_page']:.2f} s page",
                  flush=True)


if __name__ == "__main__":
    main()
