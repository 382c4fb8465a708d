"""The headless browser of the dashboard tests (installed with apt where missing)."""

from tests.report.browser import browser

__all__ = ["browser"]
