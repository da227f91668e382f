"""Benchmark: the three web apps in real headless Chromium on a synthetic PointsDB of ~1M points.

    .venv/bin/python bench/webapps.py [--evals 100] [--tasks 12] [--points 800] [--repeat 3] [--apps ...]

The DB is bench/analyze.py's builder (evals x tasks x points, real schema; cached in the temp dir).
Each app runs as the real script on 127.0.0.1; a fresh Chromium (tests/webapp_browser.py) then
measures, wall-clock from the browser driver:
  first render  navigation start -> every callback done and every graph drawn (the first load of a
                fresh profile is reported apart: it also fetches the 4 MB of JS bundles);
  update        the click that changes a filter (a facet tag; for explorer, one more evaluation)
                -> the view redrawn and idle.
Targets: first render <= 1.5 s, update <= 300 ms. Prints every run and the median.
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
APPS = {  # script -> (status element, dropdown changed, option chosen in it (None: first unselected))
    "leaderboard": ("lb-status", "lb-tags", "size:small"),
    "spiderweb": ("sw-status", "sw-tags", "size:small"),
    "explorer": ("ex-status", "ex-evals", None),
}


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


def _wait_changed(driver, status_id: str, before: str, timeout: float = 60.0) -> None:
    from webapp_browser import wait_ready

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if driver.find_element("id", status_id).text != before:
            break
        time.sleep(0.01)
    wait_ready(driver, status_id, timeout)


def measure(app: str, db: Path, repeat: int) -> tuple[float, list[float], list[float]]:
    """(cold first render, warm first renders, updates) in seconds."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait
    from webapp_browser import app_server, chromium, wait_ready

    status, dropdown, option = APPS[app]
    firsts, updates = [], []
    with app_server(f"{app}.py", str(db), timeout=180) as url, chromium() as d:
        cold = None
        for _ in range(repeat + 1):
            t0 = time.perf_counter()
            d.get(url)
            wait_ready(d, status, 120)
            dt = time.perf_counter() - t0
            if cold is None:
                cold = dt
            else:
                firsts.append(dt)
            before = d.find_element("id", status).text
            d.find_element(By.ID, dropdown).click()
            if option is not None:
                d.switch_to.active_element.send_keys(option)
                xp = f"//*[@role='option' or contains(@class, 'option')]//*[text()='{option}']"
            else:
                xp = "(//*[@role='option' and not(@aria-selected='true')])[1]"
            item = WebDriverWait(d, 20).until(ec.element_to_be_clickable((By.XPATH, xp)))
            t0 = time.perf_counter()
            item.click()
            _wait_changed(d, status, before)
            updates.append(time.perf_counter() - t0)
    return cold, firsts, updates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--evals", type=int, default=100)
    ap.add_argument("--tasks", type=int, default=12)
    ap.add_argument("--points", type=int, default=800)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--apps", nargs="*", default=list(APPS), choices=list(APPS))
    a = ap.parse_args()
    db = dataset(a.evals, a.tasks, a.points)
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        n = con.execute("SELECT count(*) FROM points").fetchone()[0]
    print(f"dataset: {a.evals} evals x {a.tasks} tasks, {n:,} points ({db})")
    print(f"{'app':12} {'cold first':>10} {'first (median)':>15} {'update (median)':>16}  target {TARGET_FIRST} s / "
          f"{1000 * TARGET_UPDATE:.0f} ms")
    for app in a.apps:
        cold, firsts, updates = measure(app, db, a.repeat)
        f, u = statistics.median(firsts), statistics.median(updates)
        print(f"{app:12} {cold:9.2f}s {f:14.2f}s {1000 * u:14.0f}ms  "
              f"{'ok' if f <= TARGET_FIRST else 'SLOW'}/{'ok' if u <= TARGET_UPDATE else 'SLOW'}  "
              f"runs: first {', '.join(f'{x:.2f}' for x in firsts)} s; update "
              f"{', '.join(f'{1000 * x:.0f}' for x in updates)} ms", flush=True)


if __name__ == "__main__":
    main()
