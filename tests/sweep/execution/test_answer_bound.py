"""Which reports a trial sends without waiting for the driver (``ray_backend.below``)."""

from __future__ import annotations

import math

import pytest

from raysweep.sweep.execution.ray_backend import below


@pytest.mark.parametrize(
    ("report", "until", "expected"),
    [
        ({"step": 0}, ("step", 1.0), True),
        ({"step": 1}, ("step", 1.0), False),  # at the rung: judged, waited for
        ({"step": 0.9999999999}, ("step", 1.0), False),  # within the tolerance of reaching it
        ({"step": 5}, ("step", math.inf), True),  # past the top rung: never judged again
        ({"step": 5}, None, False),  # no bound yet: the first report waits
        ({"epoch": 2}, ("step", 9.0), False),  # without the time_attr: judged
        ({"step": True}, ("step", 9.0), False),
        ({"time_total_s": 3.5}, ("time_total_s", 10.0), True),
    ],
)
def test_below(report: dict[str, float], until: tuple[str, float] | None, expected: bool) -> None:
    assert below(report, until) is expected
