"""Tests of the FIFO scheduler: it never intervenes."""

from __future__ import annotations

from raysweep.sweep.schedulers import FIFO, Decision, Scheduler
from tests.sweep.schedulers.conformance import SCRIPT, Feed, SchedulerConformance, make_ctx


class TestFIFOConformance(SchedulerConformance):
    """FIFO passes the shared checks."""

    registered = ("fifo", {})

    def make(self) -> Scheduler:
        return FIFO()


def test_fifo_always_continues() -> None:
    """Whatever is reported, every trial goes on."""
    scheduler = FIFO()
    scheduler.setup(make_ctx())
    feed = Feed(scheduler)
    assert {feed(t, step, loss) for t, step, loss in SCRIPT} == {Decision.CONTINUE}
