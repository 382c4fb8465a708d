"""A real headless browser for the report and dashboard tests: Debian's chromium via Selenium.

Where chromium or its driver is missing it is installed from Debian's packages
(``apt-get``), as the Slurm tests install Slurm; where that is impossible (not
root, no apt) the tests are skipped, saying why. Screenshots go to
``test-artifacts/`` at the repository root (ignored by git), for a person to look at.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT
from tests.debian import apt_install

#: Debian's packages: the browser, and the WebDriver that drives it.
PACKAGES = ("chromium", "chromium-driver")
BROWSER = "chromium"
DRIVER = "chromedriver"
ARTIFACTS = REPO_ROOT / "test-artifacts"


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
    reason = apt_install("chromium", PACKAGES, (BROWSER, DRIVER))
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
