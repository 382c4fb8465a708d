"""The headless browser of the report tests (installed with apt where missing)."""

from tests.report.browser import browser

__all__ = ["browser"]
