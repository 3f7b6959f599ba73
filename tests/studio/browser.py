"""A real headless browser for the Studio tests: Debian's chromium driven by its chromium-driver through Selenium.

Nothing is downloaded: the browser and the driver are the system's (`apt-get install chromium chromium-driver`,
which .ci/run does), and Selenium Manager is never asked for either. The browser's console and network log are
captured so a test can assert there were no console errors and measure a page's transferred bytes.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[2]
DESKTOP = (1280, 900)  # viewport width, height in CSS px
PHONE = (390, 844)
FLAGS = [
    "--headless",  # Chromium >= 132: this is the "new" headless mode (the old one is gone)
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str:
    return shutil.which("chromium") or "/usr/bin/chromium"


def _chromedriver() -> str:
    return shutil.which("chromedriver") or "/usr/bin/chromedriver"


def browser_missing() -> str | None:
    """A reason string when chromium or chromedriver is not installed, else None."""
    missing = [path for path in (_chromium(), _chromedriver()) if not os.access(path, os.X_OK)]
    if missing:
        return f"not installed: {', '.join(missing)} (apt-get install chromium chromium-driver)"
    return None


def artifacts_dir(name: str) -> Path:
    """`$MODELPORT_TEST_ARTIFACTS/<name>` if that is set, else `<repo root>/test-artifacts/<name>`; created."""
    root = os.environ.get("MODELPORT_TEST_ARTIFACTS")
    path = (Path(root) if root else REPO_ROOT / "test-artifacts") / name
    path.mkdir(parents=True, exist_ok=True)
    return path


class Browser:
    """One headless chromium (a Selenium Chrome WebDriver) with a fresh profile; use as a context manager.

    `artifacts_dir` is where `screenshot` writes. The viewport starts at 1280x900 CSS px.
    """

    def __init__(self, artifacts_dir: Path) -> None:
        os.environ["SE_OFFLINE"] = "true"  # belt and braces: with both paths given Selenium Manager never runs
        self.artifacts_dir = Path(artifacts_dir)
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        self._profile = tempfile.mkdtemp(prefix="modelport-chromium-")
        self._errors: list[str] = []
        options = webdriver.ChromeOptions()
        options.binary_location = _chromium()
        for flag in [*FLAGS, f"--user-data-dir={self._profile}", "--window-size={},{}".format(*DESKTOP)]:
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        try:
            self.driver: WebDriver = webdriver.Chrome(options=options, service=Service(_chromedriver()))
        except BaseException:
            shutil.rmtree(self._profile, ignore_errors=True)
            raise
        self.set_width(DESKTOP[0])

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Quit the browser and remove its profile directory; safe to call twice."""
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self._profile, ignore_errors=True)

    def open(self, url: str) -> None:
        """Load `url` (an absolute URL) and wait for its load event."""
        self.driver.get(url)

    def screenshot(self, name: str) -> Path:
        """Save the current viewport as `<artifacts_dir>/<name>.png` and return that path."""
        path = self.artifacts_dir / f"{name}.png"
        if not self.driver.save_screenshot(str(path)):
            raise RuntimeError(f"screenshot {path} failed")
        return path

    def set_width(self, px: int, height_px: int | None = None) -> None:
        """Lay pages out `px` CSS px wide, e.g. 1280, or 390 for a phone (screenshots come out that wide too).

        `height_px` defaults to 844 (a phone) below 768 px wide, else 900. Chromium's device emulation sets the
        viewport exactly (sizing the window does not: headless chromium keeps windows at least 500 px wide and
        reserves room for decorations), as its DevTools' device mode does; it is cleared for widths of 768 and up.
        """
        height = height_px or (PHONE[1] if px < 768 else DESKTOP[1])
        self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        window = (px, height) if px >= 768 else DESKTOP
        extra_w, extra_h = self.driver.execute_script("return [outerWidth - innerWidth, outerHeight - innerHeight]")
        self.driver.set_window_size(window[0] + extra_w, window[1] + extra_h)
        if px < 768:
            self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": px, "height": height, "deviceScaleFactor": 1, "mobile": True})

    def console_errors(self) -> list[str]:
        """Every console entry at level SEVERE (console.error, uncaught exceptions, failed loads) seen so far.

        Accumulates over the browser's life, so `assert browser.console_errors() == []` at the end of a test
        covers every page it opened.
        """
        self._errors += [entry["message"] for entry in self.driver.get_log("browser") if entry["level"] == "SEVERE"]
        return list(self._errors)

    def wait_for(self, condition: Callable[[WebDriver], T], timeout_s: float = 15, message: str = "") -> T:
        """Poll `condition(driver)` until it returns something truthy (returned) or `timeout_s` seconds pass.

        On timeout raises TimeoutException naming `message`, the current URL and the console errors.
        """
        try:
            return WebDriverWait(self.driver, timeout_s).until(condition)
        except TimeoutException:
            detail = f"{message or 'condition'} not met in {timeout_s} s at {self.driver.current_url}"
            raise TimeoutException(f"{detail}; console errors: {self.console_errors()}") from None

    def transferred_bytes(self) -> int:
        """Bytes received over the network (encoded, i.e. compressed, with headers) since the last call.

        The sum of `encodedDataLength` of the `Network.loadingFinished` events in the performance log; call it
        once before `open` to start from zero. Requests still in flight are not counted, and a repeat visit in the
        same Browser may be served from its cache: use a fresh Browser for a cold-load figure.
        """
        total = 0
        for entry in self.driver.get_log("performance"):
            event = json.loads(entry["message"])["message"]
            if event["method"] == "Network.loadingFinished":
                total += int(event["params"]["encodedDataLength"])
        return total
