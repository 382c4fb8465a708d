"""``next_decision_at``: below the bound a scheduler gives, every report continues.

The runner sends the bound with each answer, and a trial on Ray then sends its
reports below it without waiting for the driver; a bound that is too high would
let a trial run past its stop. Checked on random interleaved report sequences
against each built-in scheduler.
"""

from __future__ import annotations

import math
import random

import pytest

from raysweep.sweep.schedulers import Decision, Scheduler, make_scheduler
from tests.sweep.schedulers.conformance import Feed, make_ctx

SCHEDULERS = {
    "asha": {"max_t": 27, "grace_period": 1, "reduction_factor": 3},
    "hyperband": {"max_t": 27, "grace_period": 1, "reduction_factor": 3, "brackets": 3},
    "median": {"grace_period": 2, "min_samples_required": 2},
    "pbt": {"perturbation_interval": 4, "hyperparam_mutations": ["lr"]},
    "fifo": {},
}


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
@pytest.mark.parametrize("seed", range(8))
def test_every_report_below_the_bound_continues(name: str, seed: int) -> None:
    rng = random.Random(seed)
    scheduler: Scheduler = make_scheduler(name, SCHEDULERS[name])
    scheduler.setup(make_ctx(seed=seed))
    feed = Feed(scheduler)
    progress = dict.fromkeys(range(12), 0.0)
    for t in progress:
        feed.add(t)
    below = 0
    for _ in range(400):
        t = rng.randrange(12)
        if progress[t] > 30:
            continue
        progress[t] += rng.choice([1, 1, 1, 2, 5])  # some reports skip steps
        bound = scheduler.next_decision_at(feed.trial(t))
        decision = feed(t, progress[t], rng.uniform(0.0, 1.0) + 1.0 / progress[t])
        if bound is not None and progress[t] < bound:
            below += 1
            assert decision is Decision.CONTINUE, (t, progress[t], bound)
    if name != "median":
        assert below > 0  # the bound let some reports go without waiting
    fifo = make_scheduler("fifo", {})
    assert fifo.next_decision_at(feed.trial(0)) == math.inf
