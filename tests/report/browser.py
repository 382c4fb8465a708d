"""A real headless browser for the report and dashboard tests: Debian's chromium via Selenium.

Where chromium or its driver is missing it is installed from Debian's packages
(``apt-get``), as the Slurm tests install Slurm; where that is impossible (not
root, no apt) the tests are skipped, saying why. Screenshots go to
``test-artifacts/`` at the repository root (ignored by git), for a person to look at.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT

#: Debian's packages: the browser, and the WebDriver that drives it.
PACKAGES = ("chromium", "chromium-driver")
BROWSER = "chromium"
DRIVER = "chromedriver"
ARTIFACTS = REPO_ROOT / "test-artifacts"


def missing() -> list[str]:
    """The commands of the browser and its driver not on PATH."""
    return [b for b in (BROWSER, DRIVER) if shutil.which(b) is None]


def install() -> str | None:
    """Install Debian's chromium and its driver (apt); ``None``, or why it could not."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return f"{', '.join(missing())} not installed, and installing needs root"
    if shutil.which("apt-get") is None:
        return f"{', '.join(missing())} not installed, and there is no apt-get"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for args in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES],
    ):
        done = subprocess.run(
            args, env=env, capture_output=True, text=True, timeout=900, check=False
        )
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return f"cannot install chromium: {' '.join(args[:2])} failed: {last}"
    return f"chromium installed, but {', '.join(missing())} still missing" if missing() else None


def start() -> Any:
    """A headless chromium of its own (no sandbox: tests may run as root)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(shutil.which(BROWSER))
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(str(shutil.which(DRIVER))))


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """One headless chromium for the package's tests, quit at the end."""
    if missing():
        reason = install()
        if reason is not None:
            pytest.skip(reason)
    driver = start()
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver: Any) -> list[str]:
    """The page's console messages of level SEVERE since the last call (errors, failed loads)."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def plot_data(driver: Any, key: str) -> list[dict[str, Any]]:
    """The traces plotly drew in ``#plot-<key>``: name, x, y, customdata (as lists)."""
    return list(
        driver.execute_script(
            """
            const gd = document.getElementById(arguments[0]);
            if (!gd || !gd.data) return null;
            const list = v => (v === undefined || v === null) ? null
                : (typeof v === "object" && v.length !== undefined ? Array.from(v) : v);
            return gd.data.map(t => ({name: t.name || null, type: t.type || "scatter",
                x: list(t.x), y: list(t.y), customdata: list(t.customdata),
                dimensions: (t.dimensions || []).map(d => ({label: d.label,
                                                            values: Array.from(d.values)}))}));
            """,
            f"plot-{key}",
        )
        or []
    )


def screenshot(driver: Any, name: str) -> Path:
    """Save the whole page as ``test-artifacts/<name>.png`` and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(1400, max(1000, min(height + 50, 12000)))
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(1400, 1000)
    return path
