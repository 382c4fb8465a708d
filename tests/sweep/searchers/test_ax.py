"""Tests of the Ax searcher: the shared checks, Ax's own bookkeeping, resume,
linear constraints, several objectives, its logging, and a real run on Ray.

Counts are kept small (Ax fits a GP for every proposal past its warm-up), and
BoTorch runs on one thread here: on a small shared machine its threads would
otherwise spin against the other tests' processes.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ax")

import raysweep as rs
from raysweep.errors import MissingExtraError, SpecError
from raysweep.objectives import Direction, Metric, Objectives
from raysweep.sweep.execution import FakeClock, InProcessBackend
from raysweep.sweep.searchers import SearchContext, Searcher, make_searcher
from raysweep.sweep.searchers.ax_client import AxSearcher
from raysweep.sweep.space import Fixed, SearchSpace, choice, loguniform, quniform, randint, uniform
from raysweep.sweep.space.constraints import ConstraintSet
from raysweep.trial import Trial, TrialState
from tests.sweep.searchers.conformance import SearcherConformance, draw, make_ctx, mixed_space
from tests.sweep.searchers.model_based import (
    assert_ran_every_trial_once,
    random_search_median,
    run_against_the_edge,
)

BRANIN = SearchSpace({"x": uniform(-5, 10), "y": uniform(0, 15)})
#: Branin's global minimum.
BRANIN_MIN = 0.397887


def branin(config: dict[str, Any]) -> float:
    x, y = config["x"], config["y"]
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return float((y - b * x**2 + c * x - 6) ** 2 + 10 * (1 - t) * math.cos(x) + 10)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def running(trial_id: int, config: dict[str, Any]) -> Trial:
    return Trial(trial_id, TrialState.RUNNING, config, attempts=1)


def completed(trial_id: int, config: dict[str, Any], **metrics: float) -> Trial:
    return Trial(trial_id, TrialState.COMPLETED, config, metrics=metrics, attempts=1)


def fresh(seed: int = 0, space: SearchSpace = BRANIN, **options: Any) -> AxSearcher:
    searcher = AxSearcher(seed=seed, **options)
    searcher.setup(make_ctx(space, seed=seed))
    return searcher


def run_sequential(searcher: Searcher, n: int, start: int = 0) -> list[Trial]:
    """Suggest, start and complete ``n`` Branin trials one at a time."""
    trials = []
    for trial_id in range(start, start + n):
        config = searcher.suggest(trial_id)
        assert config is not None
        searcher.on_trial_start(running(trial_id, config))
        trial = completed(trial_id, config, loss=branin(config))
        searcher.on_trial_complete(trial)
        trials.append(trial)
    return trials


def ax_trials(searcher: AxSearcher) -> Counter[str]:
    """How many trials Ax's experiment holds, by Ax's status name."""
    experiment = searcher.ax_client._experiment
    return Counter(t.status.name for t in experiment.trials.values())


class TestAxConformance(SearcherConformance):
    """AxSearcher passes the shared searcher checks (its Sobol' phase: nothing is told)."""

    def make(self, seed: int | None = None) -> Searcher:
        return AxSearcher(seed=seed)

    def _restored(self, original: Searcher, space: SearchSpace, seed: int | None) -> Searcher:
        state = json.loads(json.dumps(original.state_dict()))
        restored = self.make(seed)
        restored.setup(make_ctx(space, seed=seed))
        restored.load_state_dict(state)
        return restored

    def test_restored_searcher_continues_the_sequence(self) -> None:
        """A searcher loaded with the state after 7 draws and given those 7 trials (as a
        resume does: Ax's experiment lives in the trials, not in the state) proposes the
        original's next 5."""
        for seed in (0, None):
            original = self.started(seed=seed, ctx_seed=seed)
            configs = draw(original, 7)
            restored = self._restored(original, mixed_space(), seed)
            restored.restore([running(i, c) for i, c in enumerate(configs) if c is not None])
            assert draw(restored, 5, start=7) == draw(original, 5, start=7)

    def test_restore_survives_reordered_space(self) -> None:
        """A resumed searcher continues the same points when the space is reordered."""
        original = self.started(seed=1)
        configs = draw(original, 7)
        reordered = SearchSpace(dict(reversed(list(mixed_space().items()))))
        restored = self._restored(original, reordered, 1)
        restored.restore([running(i, c) for i, c in enumerate(configs) if c is not None])
        assert draw(restored, 5, start=7) == draw(original, 5, start=7)


def test_options_are_checked_at_construction() -> None:
    """Bad options are one-line SpecErrors naming the option; make_searcher passes options."""
    with pytest.raises(SpecError, match=r"method must be one of 'fast', 'quality', 'random_sea"):
        AxSearcher(method="slow")
    with pytest.raises(SpecError, match=r"initialization_budget must be an integer >= 2"):
        AxSearcher(initialization_budget=1)
    with pytest.raises(SpecError, match=r"AxSearcher seed: expected an integer"):
        AxSearcher(seed=-1)
    searcher = make_searcher("botorch", {"method": "random_search", "initialization_budget": 3})
    assert isinstance(searcher, AxSearcher)
    assert (searcher.method, searcher.initialization_budget) == ("random_search", 3)


def test_missing_ax_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without Ax importable the constructor names the extra to install."""
    monkeypatch.setitem(sys.modules, "ax", None)
    with pytest.raises(
        MissingExtraError, match=r"searcher 'ax' needs .*'ax-platform'.*raysweep\[ax\]"
    ):
        AxSearcher()


def test_quality_without_numpyro_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """method='quality' needs NumPyro for BoTorch's fully Bayesian GP: missing, the
    constructor says so, instead of the run failing after its Sobol' phase."""
    monkeypatch.setitem(sys.modules, "numpyro", None)
    with pytest.raises(MissingExtraError, match=r"method='quality' .* package 'numpyro'"):
        AxSearcher(method="quality")


def test_seeded_sequential_runs_repeat() -> None:
    """With one trial in flight, the same seed and results give the same trials, model included."""
    first = [t.config for t in run_sequential(fresh(3, initialization_budget=3), 5)]
    second = [t.config for t in run_sequential(fresh(3, initialization_budget=3), 5)]
    assert first == second


def test_pending_suggestions_differ_and_stay_pending() -> None:
    """k suggestions in a row, past the warm-up, are k different points, all RUNNING in Ax."""
    searcher = fresh(0, initialization_budget=3)
    run_sequential(searcher, 3)
    pending = []
    for trial_id in range(3, 6):
        config = searcher.suggest(trial_id)
        assert config is not None
        assert BRANIN.problems(config) == []
        searcher.on_trial_start(running(trial_id, config))
        searcher.on_trial_start(running(trial_id, config))  # idempotent
        pending.append(json.dumps(config, sort_keys=True))
    assert len(set(pending)) == 3
    assert ax_trials(searcher) == {"COMPLETED": 3, "RUNNING": 3}


def test_failed_pruned_and_rejected_trials_leave_nothing_dangling() -> None:
    """Failed trials are FAILED in Ax; pruned ones that reported nothing and rejected
    ones ABANDONED; none stays RUNNING."""
    searcher = fresh(1)
    run_sequential(searcher, 2)
    failed = searcher.suggest(2)
    pruned = searcher.suggest(3)
    assert failed is not None
    assert pruned is not None
    searcher.on_trial_start(running(2, failed))
    searcher.on_trial_start(running(3, pruned))
    searcher.on_trial_error(Trial(2, TrialState.FAILED, failed, error="boom", attempts=1))
    searcher.on_trial_pruned(Trial(3, TrialState.PRUNED, pruned, attempts=1))
    rejected = searcher.suggest(4)
    assert rejected is not None
    searcher.on_rejected(rejected)
    assert ax_trials(searcher) == {"COMPLETED": 2, "FAILED": 1, "ABANDONED": 2}
    again = searcher.suggest(4)
    assert again is not None
    assert again != rejected
    assert ax_trials(searcher)["RUNNING"] == 1


def test_resume_counts_nothing_twice_and_continues() -> None:
    """Rebuilt from its state and the stored trials, the searcher holds each trial once
    in Ax (completed, failed, pending) and proposes what the original would have, model
    phase included."""
    original = fresh(4, initialization_budget=3)
    trials = run_sequential(original, 4)
    failed_config = original.suggest(4)
    assert failed_config is not None
    original.on_trial_start(running(4, failed_config))
    failed = Trial(4, TrialState.FAILED, failed_config, error="x", attempts=1)
    original.on_trial_error(failed)
    running_config = original.suggest(5)
    assert running_config is not None
    pending = running(5, running_config)
    original.on_trial_start(pending)
    state = json.loads(json.dumps(original.state_dict()))

    restored = AxSearcher(seed=4, initialization_budget=3)
    restored.setup(make_ctx(BRANIN, seed=4))
    restored.load_state_dict(state)
    restored.restore([*trials, failed, pending])
    restored.on_trial_start(pending)  # the runner dispatches it again: idempotent
    assert ax_trials(restored) == ax_trials(original) == {"COMPLETED": 4, "FAILED": 1, "RUNNING": 1}
    assert restored.suggest(6) == original.suggest(6)


def test_several_objectives_with_odd_names() -> None:
    """Two metrics (names Ax could not parse, one maximized) reach Ax as its objectives."""
    objectives = Objectives((Metric("val/loss"), Metric("acc@1", Direction.MAX)))
    searcher = AxSearcher(seed=2, initialization_budget=3)
    searcher.setup(SearchContext(BRANIN, ConstraintSet(None, BRANIN), objectives, 2))
    for trial_id in range(4):
        config = searcher.suggest(trial_id)
        assert config is not None
        searcher.on_trial_start(running(trial_id, config))
        value = branin(config)
        metrics = {"val/loss": value, "acc@1": -abs(config["x"] - 2.5)}
        searcher.on_trial_complete(completed(trial_id, config, **metrics))
    experiment = searcher.ax_client._experiment
    assert experiment.optimization_config.is_moo_problem
    assert ax_trials(searcher) == {"COMPLETED": 4}
    assert set(experiment.lookup_data().df["metric_name"]) == {"m0", "m1"}


def test_linear_constraints_are_given_to_ax_in_its_terms() -> None:
    """Linear parts on float/int ranges reach Ax (quniform as its index, constants folded,
    strict integer sums tightened); log, choice and non-linear ones stay with raysweep,
    and the summary counts them."""
    space = SearchSpace(
        {
            "a": uniform(0, 1),
            "n": randint(1, 8),
            "q": quniform(0, 1, 0.25),
            "lr": loguniform(1e-4, 1),
            "act": choice(["relu", "tanh"]),
            "k": Fixed(2),
        }
    )
    constraints = [
        "a + q <= 1",  # q = 0.25 * index
        "0 < n < k + 3",  # -n < 0 (integer: -n <= -1) and n < 5 (n <= 4)
        "lr <= a",  # log-scaled: not for Ax
        "a * n <= 4",  # not linear
        "act != 'tanh' or a < 0.5",  # not linear
    ]
    searcher = AxSearcher(seed=0)
    searcher.setup(make_ctx(space, constraints))
    assert searcher.ax_constraints == [
        "1.0*a + 0.25*q <= 0.9999999",
        "-1.0*n <= -1.0",
        "1.0*n <= 4.0",
    ]
    assert (searcher.summary() or "").startswith("ax: 2 of 5 constraint(s) are linear")
    assert fresh().summary() is None


def test_ax_keeps_inside_linear_constraints_without_rejections() -> None:
    """Ax's own proposals satisfy linear constraints, center, Sobol' and model alike:
    nothing is abandoned for them."""
    searcher = AxSearcher(seed=5, initialization_budget=3)
    searcher.setup(make_ctx(BRANIN, ["x + y <= 6", "y - x >= -4"], seed=5))
    configs = [t.config for t in run_sequential(searcher, 4)]
    assert all(c["x"] + c["y"] <= 6 and c["y"] - c["x"] >= -4 for c in configs)
    assert ax_trials(searcher) == {"COMPLETED": 4}


def test_ax_logs_nothing_below_warning_and_leaves_logging_as_it_was() -> None:
    """Ax's INFO lines are dropped while the searcher calls Ax; afterwards a handler on
    the ax logger gets them again, with no filter of ours left behind."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    ax_logger = logging.getLogger("ax")
    handler = Keep(level=logging.DEBUG)
    ax_logger.addHandler(handler)
    try:
        run_sequential(fresh(6), 2)
        assert [r.getMessage() for r in records if r.levelno < logging.WARNING] == []
        assert all(not h.filters for h in ax_logger.handlers)
        logging.getLogger("ax.api.client").info("after")
        assert [r.getMessage() for r in records] == ["after"]
    finally:
        ax_logger.removeHandler(handler)


def test_empty_space_gives_the_constants() -> None:
    """With nothing to search every suggestion is the fixed config, and hooks are no-ops."""
    searcher = fresh(0, SearchSpace.from_any({"k": 1}))
    assert draw(searcher, 2) == [{"k": 1}, {"k": 1}]
    searcher.on_trial_complete(completed(0, {"k": 1}, loss=1.0))
    assert searcher.ax_client is None


def test_a_resumed_run_rebuilds_ax_from_the_store(storage: Path) -> None:
    """Resumed through raysweep.run (state and trials read back from the store), Ax holds
    each stored trial once and the run goes on with new points."""
    options: dict[str, Any] = {
        "metric": "loss",
        "num_trials": 4,
        "seed": 8,
        "name": "ax-resume",
        "storage": storage,
        "verbose": 0,
    }

    def run(searcher: AxSearcher, **changes: Any) -> rs.Result:
        clock = FakeClock()
        backend = InProcessBackend(concurrency=1, clock=clock)
        return rs.run(
            branin,
            BRANIN,
            searcher=searcher,
            backend=backend,
            clock=clock,
            **{**options, **changes},
        )

    first = run(AxSearcher(initialization_budget=3))
    searcher = AxSearcher(initialization_budget=3)
    result = run(searcher, num_trials=5, resume=True)
    assert [t.config for t in result.trials[:4]] == [t.config for t in first.trials]
    assert ax_trials(searcher) == {"COMPLETED": 5}
    assert len({json.dumps(t.config, sort_keys=True) for t in result.trials}) == 5


@pytest.mark.ray
@pytest.mark.usefixtures("ray_session")
def test_ax_beats_random_search_on_branin_through_ray(storage: Path) -> None:
    """A short Ax sweep on Ray, two trials in flight, finds a Branin value under half of
    random search's median over seeds with the same budget (Branin's minimum is 0.398)."""
    budget = 12

    def objective(config: dict[str, Any]) -> dict[str, float]:
        x, y = config["x"], config["y"]
        b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
        return {"val/loss": (y - b * x**2 + c * x - 6) ** 2 + 10 * (1 - t) * math.cos(x) + 10}

    result = rs.run(
        objective,
        {"x": rs.uniform(-5, 10), "y": rs.uniform(0, 15)},
        metric="val/loss",
        searcher="ax",
        num_trials=budget,
        max_concurrent=2,
        seed=0,
        name="ax-branin",
        storage=storage,
        verbose=0,
    )
    assert_ran_every_trial_once(result, budget)
    best = result.best
    assert best is not None
    assert BRANIN_MIN <= best.metrics["val/loss"] < random_search_median(budget) / 2


def test_a_proposal_outside_a_nonlinear_constraint_is_replaced_by_a_feasible_one() -> None:
    """Ax's model keeps proposing near the best point, which lies outside a constraint
    Ax cannot take: each such trial gets a random feasible point (attached to Ax),
    instead of a model fit per rejected proposal until the run gives up."""
    searcher = AxSearcher(seed=0, initialization_budget=3)
    run_against_the_edge(searcher, 7)
    experiment = searcher._client._experiment
    completed = [t for t in experiment.trials.values() if t.status.is_completed]
    abandoned = [t for t in experiment.trials.values() if t.status.is_abandoned]
    assert len(completed) == 7
    assert len(abandoned) <= 7  # at most one model proposal per suggestion
