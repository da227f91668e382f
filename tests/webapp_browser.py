"""Real headless Chromium for the web-app tests and bench/webapps.py (selenium + the system chromedriver).

One place knows the flags that keep Chromium quiet on a machine without internet (background
networking makes it hang), how to start an app script as a real subprocess on a free 127.0.0.1 port,
and how to wait for Dash to finish rendering.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("REASONSCAPE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("REASONSCAPE_CHROMEDRIVER", "/usr/bin/chromedriver")
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--no-first-run", "--enable-unsafe-swiftshader", "--use-angle=swiftshader",
                  "--window-size=1400,1000")


def have_browser() -> bool:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return False
    return Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()


def _needs_browser() -> Any:
    import pytest

    return pytest.mark.skipif(not have_browser(), reason="needs selenium, /usr/bin/chromium and chromedriver")


#: Marks a test that drives headless Chromium (skipped, with the reason, where it is missing).
needs_browser = _needs_browser()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium WebDriver with a fresh profile, browser console logs enabled."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="rs-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for f in CHROMIUM_FLAGS:
        opts.add_argument(f)
    opts.add_argument(f"--user-data-dir={profile}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@contextmanager
def app_server(script: str, *args: str, port: int | None = None, timeout: float = 60.0) -> Iterator[str]:
    """Run `python <script> <args> --port P` as a subprocess; yields its base URL once it answers."""
    port = port or free_port()
    base = "/"
    if "--url-base-pathname" in args:
        base = args[list(args).index("--url-base-pathname") + 1]
    log = tempfile.NamedTemporaryFile("w+", prefix="rs-webapp-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, str(ROOT / script), *args, "--port", str(port)], cwd=ROOT,
                            stdout=log, stderr=log, text=True)  # a file, not a pipe: a full pipe would block it
    url = f"http://127.0.0.1:{port}{base}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{script} exited {proc.returncode}: {Path(log.name).read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{script} did not answer on {url} within {timeout} s")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        tail = Path(log.name).read_text(errors="replace")[-3000:]
        Path(log.name).unlink(missing_ok=True)
        if os.environ.get("REASONSCAPE_WEBAPP_LOG"):
            print(f"--- {script} log ---\n{tail}", file=sys.stderr)


def wait_ready(driver: Any, marker_id: str, timeout: float = 60.0) -> None:
    """Wait until Dash has no callback in flight, element `marker_id` has text and every graph on the
    page has been drawn by plotly (dcc.Graph draws after its callback returns)."""
    from selenium.webdriver.support.ui import WebDriverWait

    def ready(d: Any) -> bool:
        return bool(d.execute_script(
            "var el = document.getElementById(arguments[0]);"
            "var busy = document.querySelector('[data-dash-is-loading=\"true\"]');"
            "var graphs = document.querySelectorAll('.dash-graph');"
            "var drawn = Array.from(graphs).every(g => g.querySelector('.main-svg') !== null);"
            "return el !== null && el.textContent.trim().length > 0 && busy === null && drawn;", marker_id))

    WebDriverWait(driver, timeout, poll_frequency=0.05).until(ready)


def console_errors(driver: Any) -> list[str]:
    """Browser console entries at SEVERE level (JavaScript errors, failed requests)."""
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def choose(driver: Any, dropdown_id: str, option: str) -> None:
    """Pick `option` in a dcc.Dropdown the way a user does: open it, type, click the option, close it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.find_element(By.ID, dropdown_id).click()
    search = WebDriverWait(driver, 10).until(lambda d: d.switch_to.active_element)
    search.send_keys(option)
    item = WebDriverWait(driver, 10).until(ec.element_to_be_clickable(
        (By.XPATH, f"//*[@role='option' or contains(@class, 'option')]//*[text()='{option}'] | "
                   f"//*[@role='option' and text()='{option}']")))
    item.click()
    driver.switch_to.active_element.send_keys(Keys.ESCAPE)


def text_of(driver: Any, element_id: str) -> str:
    return driver.find_element("id", element_id).text


#: Screenshots land outside the repository (set REASONSCAPE_SCREENSHOTS to choose where).
SCREENSHOTS = Path(os.environ.get("REASONSCAPE_SCREENSHOTS", tempfile.gettempdir())) / "reasonscape-webapps"


def save_screenshot(driver: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    size = driver.get_window_size()
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(size["width"], min(max(height + 140, size["height"]), 4000))  # the whole page
    try:
        driver.save_screenshot(str(path))
    finally:
        driver.set_window_size(size["width"], size["height"])
    return path
