"""Headless Chromium for the web page's tests: Debian's chromium and chromedriver (installed
by deploy/chromium/chromium.sh, like the services by their scripts), driven by Selenium.
Selenium Manager is never asked for anything: the driver's path is given, and Chromium
runs with everything that would reach the network off (this machine has none)."""

from __future__ import annotations

import base64
import subprocess
import time
from pathlib import Path

from tests.conftest import ROOT

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--disable-extensions", "--disable-default-apps", "--mute-audio",
         "--window-size=1280,1000")


def chromium_paths() -> tuple[str, str]:
    """(browser, driver), installed first when missing (apt-get as root; a clear error otherwise)."""
    result = subprocess.run(["bash", str(ROOT / "deploy/chromium/chromium.sh"), "ensure"], capture_output=True,
                            text=True, timeout=900)
    if result.returncode != 0:
        raise RuntimeError(f"deploy/chromium/chromium.sh ensure failed:\n{result.stdout}\n{result.stderr}")
    browser, driver = result.stdout.split()[-2:]
    return browser, driver


def start(browser: str, driver: str, profile: Path, log: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console, for failures
    return webdriver.Chrome(options=options, service=Service(executable_path=driver, log_output=str(log)))


def wait(driver, condition, timeout: float = 30, what: str = "the page"):
    """Until `condition(driver)` is truthy (exceptions count as not yet); its value."""
    deadline, last = time.monotonic() + timeout, None
    while True:
        try:
            value = condition(driver)
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - an element not there yet, a stale one
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {timeout}s (last error: {last!r}); "
                                 f"state banner: {banner(driver)!r}")
        time.sleep(0.1)


def banner(driver) -> str:
    try:
        return driver.execute_script("const s = document.getElementById('state'); return s ? s.textContent : ''")
    except Exception:  # noqa: BLE001
        return ""


def screenshot(driver, path: Path) -> Path:
    """The whole page, beyond the window (Chromium's DevTools protocol), kept as a test artifact."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 8000), "scale": 1}
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                             "clip": clip})
    path.write_bytes(base64.b64decode(shot["data"]))
    return path
