"""Tests of population based training: when it exploits, whom, and how it explores."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from typing import Any

import pytest

from raysweep.errors import SpecError
from raysweep.sweep.schedulers import PBT, Decision, Exploit, Scheduler
from raysweep.sweep.space import (
    Fixed,
    SearchSpace,
    choice,
    loguniform,
    quniform,
    randint,
    uniform,
)
from raysweep.trial import TrialState
from tests.sweep.schedulers.conformance import Feed, SchedulerConformance, make_ctx

C, P = Decision.CONTINUE, Decision.PAUSE

SPACE = SearchSpace(
    {
        "opt": choice(["sgd", "adam"]),
        "momentum": uniform(0, 0.99).when("opt == 'sgd'"),
        "lr": loguniform(1e-4, 0.1),
        "layers": randint(1, 6),
        "act": choice(["relu", "tanh", "gelu"]),
        "dropout": quniform(0, 0.5, 0.1),
        "epochs": Fixed(10),
    }
)
CONFIG: dict[str, Any] = {
    "opt": "adam",
    "lr": 0.01,
    "layers": 3,
    "act": "tanh",
    "dropout": 0.2,
    "epochs": 10,
}
ALL = ["opt", "momentum", "lr", "layers", "act", "dropout"]


class TestPBTConformance(SchedulerConformance):
    """PBT passes the shared checks."""

    registered = ("pbt", {"perturbation_interval": 2, "hyperparam_mutations": ["lr", "layers"]})

    def make(self) -> Scheduler:
        return PBT(perturbation_interval=2, hyperparam_mutations=["lr", "layers", "act"])


def pbt(seed: int | None = 0, ctx_seed: int | None = 0, **options: Any) -> PBT:
    options = {"perturbation_interval": 5, "hyperparam_mutations": ALL, **options}
    scheduler = PBT(seed=seed, **options)
    scheduler.setup(make_ctx(space=SPACE, seed=ctx_seed))
    return scheduler


def population(scheduler: PBT, n: int = 4) -> Feed:
    """A feed with trials 0..n-1 dispatched, each with its own learning rate."""
    feed = Feed(scheduler)
    for t in range(n):
        feed.add(t, {**CONFIG, "lr": 0.001 * (t + 1)})
    return feed


def explored(scheduler: PBT, config: Mapping[str, Any], n: int = 200) -> list[dict[str, Any]]:
    """``n`` explorations of ``config`` with seeds 0..n-1."""
    return [scheduler.explore(config, random.Random(seed)) for seed in range(n)]


# -- when and whom -----------------------------------------------------------------------


def test_only_due_reports_are_judged() -> None:
    """Reports before a trial's perturbation interval has passed continue."""
    feed = population(pbt())
    assert [feed(t, step, float(t)) for step in range(1, 5) for t in range(4)] == [C] * 16
    assert feed(0, 5, 0.0) is C  # due, but alone in the population
    assert feed(1, 5, 1.0) is P  # due, and the worse of two
    assert [feed(0, step, 0.0) for step in range(6, 10)] == [C] * 4


def test_bottom_quantile_exploits_the_top() -> None:
    """With the best trial first, nobody is exploited until the worst comes due again
    and finds itself in the bottom quarter with trial 0 on top."""
    scheduler = pbt()
    feed = population(scheduler)
    assert [feed(t, 5, float(t)) for t in (3, 2, 1, 0)] == [C, C, C, C]
    assert scheduler.quantiles() == ([3], [0])
    assert feed(0, 10, 0.0) is C  # the top trial goes on
    assert feed(3, 10, 3.0) is P
    plan = scheduler.on_trial_paused(feed.trial(3))
    assert isinstance(plan, Exploit)
    assert plan.donor == 0
    assert scheduler.on_trial_paused(feed.trial(3)) is None  # handed out once


def test_the_plan_explores_the_donors_config() -> None:
    """The new config is the donor's with the mutated parameters moved; the rest is copied."""
    scheduler = pbt(resample_probability=0.0, hyperparam_mutations=["lr", "layers"])
    feed = population(scheduler, 2)
    feed.add(0, {**CONFIG, "lr": 0.01, "layers": 3, "act": "gelu"})
    feed(0, 5, 0.0)
    assert feed(1, 5, 1.0) is P
    plan = scheduler.on_trial_paused(feed.trial(1))
    assert plan is not None
    assert plan.config["lr"] in (pytest.approx(0.012), pytest.approx(0.008))
    assert plan.config["layers"] in (2, 4)
    assert {**plan.config, "lr": 0.01, "layers": 3} == {**CONFIG, "act": "gelu"}


def test_a_paused_trial_takes_the_donors_perturbation_point() -> None:
    """The exploiting trial goes on from the donor's checkpoint, so it is next due an
    interval after the donor's last perturbation, not its own."""
    scheduler = pbt()
    feed = population(scheduler, 2)
    feed(0, 5, 0.0)
    feed(1, 5, 1.0)  # paused, exploiting trial 0 (perturbed at 5)
    feed(0, 15, 0.0)  # trial 0 perturbed at 15 since
    scheduler.on_trial_paused(feed.trial(1))
    assert feed(1, 9, 1.0) is C
    assert feed(1, 10, 1.0) is P  # 5 + 5, although trial 1 itself was perturbed at 5


@pytest.mark.parametrize(
    ("n", "fraction", "q"),
    [
        (1, 0.25, 0),
        (2, 0.25, 1),
        (4, 0.25, 1),
        (5, 0.25, 2),
        (8, 0.25, 2),
        (3, 0.5, 1),
        (30, 0.1, 3),
        (9, 0.5, 4),
    ],
)
def test_quantile_sizes(n: int, fraction: float, q: int) -> None:
    """Each quantile holds ceil(n * fraction) trials, at most floor(n / 2)."""
    scheduler = pbt(quantile_fraction=fraction, perturbation_interval=1)
    feed = population(scheduler, n)
    for t in range(n):
        scheduler.on_trial_result(feed.trial(t), {"step": 1, "loss": float(t)})
    bottom, top = scheduler.quantiles()
    assert top == list(range(q))
    assert bottom == list(range(n - 1, n - 1 - q, -1))


def test_ended_trials_leave_the_population() -> None:
    """A trial that ended cannot be a donor, and no longer ranks."""
    scheduler = pbt()
    feed = population(scheduler, 3)
    for t in range(3):
        feed(t, 5, float(t))
    feed.end(0)
    assert scheduler.quantiles() == ([2], [1])


def test_a_trial_waiting_to_exploit_is_no_donor() -> None:
    """A paused trial whose plan is pending is not chosen as another's donor."""
    scheduler = pbt(quantile_fraction=0.5)
    feed = population(scheduler, 2)
    feed(1, 5, 5.0)
    assert feed(0, 5, 9.0) is P  # 0 exploits 1 and waits
    feed(0, 5, 9.0)  # (a replay would drop the plan here: the trial went on)
    feed(2, 5, 1.0)
    assert scheduler.quantiles() == ([0], [2])


# -- explore -----------------------------------------------------------------------------


def test_numeric_values_are_scaled_by_the_factors() -> None:
    """Without resampling, floats become value * 1.2 or * 0.8, both in turn."""
    scheduler = pbt(resample_probability=0.0, hyperparam_mutations=["lr"])
    values = {round(c["lr"], 12) for c in explored(scheduler, CONFIG)}
    assert values == {0.012, 0.008}


def test_values_are_clipped_to_the_domain() -> None:
    """A value at a bound stays within it."""
    scheduler = pbt(resample_probability=0.0, hyperparam_mutations=["lr", "layers"])
    configs = explored(scheduler, {**CONFIG, "lr": 0.1, "layers": 6})
    assert {round(c["lr"], 12) for c in configs} == {0.1, 0.08}
    assert {c["layers"] for c in configs} == {6, 5}


@pytest.mark.parametrize(("value", "moved"), [(3, {2, 4}), (2, {1, 3}), (5, {4, 6})])
def test_integers_stay_integers_and_move(value: int, moved: set[int]) -> None:
    """An integer is scaled and rounded, and moved by one when rounding would undo it."""
    scheduler = pbt(resample_probability=0.0, hyperparam_mutations=["layers"])
    configs = explored(scheduler, {**CONFIG, "layers": value})
    assert {c["layers"] for c in configs} == moved
    assert all(type(c["layers"]) is int for c in configs)


def test_quniform_moves_along_its_grid() -> None:
    """A quniform value moves to a neighbouring grid value, never off the grid."""
    scheduler = pbt(resample_probability=0.0, hyperparam_mutations=["dropout"])
    assert {c["dropout"] for c in explored(scheduler, CONFIG)} == {0.1, 0.3}


def test_choices_shift_one_place() -> None:
    """A choice moves to a neighbouring value, clipped at the ends of the list."""
    scheduler = pbt(resample_probability=0.0, hyperparam_mutations=["act"])
    assert {c["act"] for c in explored(scheduler, CONFIG)} == {"relu", "gelu"}
    assert {c["act"] for c in explored(scheduler, {**CONFIG, "act": "relu"})} == {"relu", "tanh"}


def test_a_given_list_is_the_ladder() -> None:
    """A list mutation moves along the list; a value not on it is drawn from it."""
    scheduler = pbt(resample_probability=0.0, hyperparam_mutations={"layers": [1, 2, 4, 6]})
    assert {c["layers"] for c in explored(scheduler, {**CONFIG, "layers": 2})} == {1, 4}
    assert {c["layers"] for c in explored(scheduler, {**CONFIG, "layers": 6})} == {4, 6}
    assert {c["layers"] for c in explored(scheduler, {**CONFIG, "layers": 3})} == {1, 2, 4, 6}


def test_resampling_draws_from_the_domain() -> None:
    """With resample_probability 1 every value is drawn afresh within its domain."""
    scheduler = pbt(resample_probability=1.0)
    configs = explored(scheduler, CONFIG)
    assert all(SPACE["lr"].contains(c["lr"]) for c in configs)
    assert {c["layers"] for c in configs} == {1, 2, 3, 4, 5, 6}
    assert {c["act"] for c in configs} == {"relu", "tanh", "gelu"}
    assert {c["dropout"] for c in configs} == {0.0, 0.1, 0.2, 0.3, 0.4, 0.5}
    assert len({c["lr"] for c in configs}) == len(configs)


def test_resampling_happens_at_its_probability() -> None:
    """resample_probability 0.25 draws about a quarter of the values afresh."""
    scheduler = pbt(hyperparam_mutations=["lr"])
    configs = explored(scheduler, CONFIG, n=2000)
    fresh = sum(round(c["lr"], 12) not in (0.012, 0.008) for c in configs)
    assert 400 < fresh < 600


@pytest.mark.parametrize(
    "mutation",
    [loguniform(1e-3, 1e-2), {"type": "loguniform", "low": 1e-3, "high": 1e-2}],
)
def test_a_given_domain_bounds_the_value(mutation: Any) -> None:
    """A domain given for a parameter (or its YAML form) is where it is resampled and
    what it is clipped to."""
    scheduler = pbt(resample_probability=0.5, hyperparam_mutations={"lr": mutation})
    configs = explored(scheduler, CONFIG)
    assert all(1e-3 <= c["lr"] <= 1e-2 for c in configs)
    assert 0.008 in {round(c["lr"], 12) for c in configs}


def test_conditional_and_fixed_parameters() -> None:
    """An inactive conditional parameter stays absent, an active one moves, and
    constants are copied."""
    scheduler = pbt(resample_probability=0.0, hyperparam_mutations=["momentum"])
    assert all("momentum" not in c for c in explored(scheduler, CONFIG))
    configs = explored(scheduler, {**CONFIG, "opt": "sgd", "momentum": 0.9})
    assert {round(c["momentum"], 12) for c in configs} == {0.99, 0.72}
    assert all(c["epochs"] == 10 for c in configs)


def test_explore_does_not_touch_the_donors_config() -> None:
    """The explored config is a new dict; the donor's stays as it was."""
    scheduler = pbt(resample_probability=1.0)
    config = dict(CONFIG)
    explored(scheduler, config, n=5)
    assert config == CONFIG


# -- reproducibility -------------------------------------------------------------------


def plans(scheduler: PBT, n: int = 6, steps: int = 6) -> list[tuple[Decision, Any] | None]:
    """Every decision and plan of a scripted run of ``n`` trials."""
    feed = population(scheduler, n)
    return [
        feed.play(t, 5 * step, float((t * 5 + step * 3) % 7))
        for step in range(1, steps + 1)
        for t in range(n)
    ]


def test_a_seed_fixes_every_decision() -> None:
    """The same seed gives the same pauses and plans; the experiment's seed serves
    when none is given; another seed explores differently."""
    first = plans(pbt(seed=7))
    assert any(p is not None and p[0] is P for p in first)
    assert plans(pbt(seed=7)) == first
    assert plans(pbt(seed=None, ctx_seed=7)) == first
    assert plans(pbt(seed=8)) != first


def test_a_drawn_seed_is_kept_in_the_state() -> None:
    """Without any seed one is drawn once, kept in state_dict, and a scheduler that
    loads it explores the same way."""
    scheduler = pbt(seed=None, ctx_seed=None)
    first = plans(scheduler)
    state = json.loads(json.dumps(scheduler.state_dict()))
    assert set(state) == {"drawn_seed"}
    again = pbt(seed=None, ctx_seed=None)
    again.load_state_dict(state)
    assert plans(again) == first


def test_restore_keeps_the_plans_of_paused_trials_only() -> None:
    """After a replay, a trial stored PAUSED gets the plan decided before the crash;
    one that reported after its pause went on and gets none."""
    live = pbt()
    feed = population(live, 3)
    feed(0, 5, 0.0)
    assert feed(1, 5, 1.0) is P  # paused, plan not yet asked for
    expected = live.on_trial_paused(feed.trial(1))
    feed.states[1] = TrialState.PAUSED
    assert feed(2, 5, 2.0) is P
    live.on_trial_paused(feed.trial(2))
    feed(2, 6, 2.0)  # trial 2 went on
    resumed = feed.resumed(pbt(), make_ctx(space=SPACE))
    assert resumed.scheduler.on_trial_paused(resumed.trial(1)) == expected
    assert resumed.scheduler.on_trial_paused(resumed.trial(2)) is None


# -- options -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"hyperparam_mutations": None}, "hyperparam_mutations is required"),
        ({"hyperparam_mutations": []}, "hyperparam_mutations must name parameters"),
        ({"hyperparam_mutations": {"lr": []}}, "hyperparam_mutations['lr']: the list"),
        ({"hyperparam_mutations": {"lr": 0.1}}, "expected a list of values, a domain or None"),
        ({"hyperparam_mutations": {"lr": Fixed(1)}}, "a fixed value cannot be mutated"),
        ({"hyperparam_mutations": {"lr": {"type": "uniform", "low": 1}}}, "missing key 'high'"),
        ({"perturbation_interval": 0}, "perturbation_interval must be a positive number"),
        ({"quantile_fraction": 0}, "quantile_fraction must be a number in (0, 0.5], got 0"),
        ({"quantile_fraction": 0.6}, "quantile_fraction must be a number in (0, 0.5]"),
        ({"resample_probability": 1.5}, "resample_probability must be a probability"),
        ({"perturbation_factors": []}, "perturbation_factors must be a non-empty list"),
        ({"perturbation_factors": [1.2, -1]}, "perturbation_factors must be a non-empty list"),
        ({"seed": -1}, "seed: expected an integer in [0, 2**63), got -1"),
    ],
)
def test_bad_options_fail_in_one_line(options: dict[str, Any], fragment: str) -> None:
    """Each bad argument is a one-line SpecError naming it and what is expected."""
    with pytest.raises(SpecError) as info:
        PBT(**{"hyperparam_mutations": ["lr"], **options})
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("mutations", "fragment"),
    [
        (["lrr"], "names 'lrr', which is not a parameter (did you mean 'lr'?); parameters:"),
        ({"epochs": None}, "names 'epochs', which the space fixes at 10"),
    ],
)
def test_mutations_must_be_parameters(mutations: Any, fragment: str) -> None:
    """Setup refuses a mutation of a parameter the space lacks, or holds fixed."""
    scheduler = PBT(hyperparam_mutations=mutations)
    with pytest.raises(SpecError) as info:
        scheduler.setup(make_ctx(space=SPACE))
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)
