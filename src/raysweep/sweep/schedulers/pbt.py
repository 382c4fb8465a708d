"""Population based training (PBT), asynchronous.

Jaderberg et al., "Population Based Training of Neural Networks" (2017,
arXiv:1711.09846), as Ray Tune's ``PopulationBasedTraining`` runs it by default
(``synch=False``): every ``perturbation_interval`` of its own progress, a trial
in the bottom of the population is paused and goes on from the checkpoint of a
trial at the top, with that trial's configuration slightly changed (*exploit*,
then *explore*). Trials are never stopped; the population improves in place.

The exact rules, which the tests check on scripted reports:

* A trial is *due* at a report whose progress ``t`` has reached its last
  perturbation point (initially 0) plus ``perturbation_interval``. Other reports,
  and reports without the metric or ``time_attr``, continue.
* When due, its *score* becomes the report's loss and its perturbation point
  ``t``. The *population* is the trials with a score that have not ended
  (running or paused), ranked by loss (ties: lower trial id first). With
  ``n >= 2`` of them, each quantile holds ``q = ceil(n * quantile_fraction)``
  trials, but at most ``floor(n / 2)``, so the top and bottom never overlap. A
  due trial in the bottom ``q`` is paused (:attr:`Decision.PAUSE`) if the top
  ``q`` holds a donor: a trial not itself waiting to go on from another's
  checkpoint. Otherwise it continues.
* The pause's plan, which :meth:`PBT.on_trial_paused` returns, is
  ``Exploit(config=explore(donor's config), donor=donor_id)``: the donor is drawn
  uniformly from the top quantile. The paused trial's perturbation point becomes
  the donor's, as it goes on from the donor's checkpoint (Ray does the same).
* ``explore`` copies the donor's configuration and changes each mutated
  parameter it holds (an inactive conditional one stays absent). With
  probability ``resample_probability``, or when the value is not one the
  mutation can move, the value is drawn afresh: from the list, or uniformly
  from the domain. Otherwise a list value (or a choice domain's) moves one place
  left or right (clipped at the ends); a numeric one is multiplied by a factor
  drawn from ``perturbation_factors`` and clipped to the domain: integer domains
  give integers and ``quniform`` grid values (the nearest, or the next one in the
  direction of the change when the nearest is the old value).
* Randomness: each decision draws from its own :class:`random.Random`, seeded
  from the seed (``seed``, else the experiment's, else one drawn once and kept
  in :meth:`PBT.state_dict`), the trial id and the progress, so the replay of
  :meth:`Scheduler.restore` and a resume repeat the same decisions.

Unlike Ray, a trial is paused only to exploit (Ray also pauses trials to let
queued ones run; here the runner schedules), and trials are not required to
report every ``time_attr``. After a replay, the exploit of a trial the stored
state shows as PAUSED is kept for :meth:`PBT.on_trial_paused`; a replayed trial
that reported again after its pause evidently went on, so its exploit is
dropped. The configurations explored during a replay use the donors' stored
(latest) configurations.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from raysweep._checks import describe, did_you_mean, expect_seed, is_number
from raysweep.errors import SpecError
from raysweep.sweep.schedulers._base import (
    Decision,
    Exploit,
    Scheduler,
    SchedulerContext,
    check_option,
    reached,
)

if TYPE_CHECKING:
    from raysweep.sweep.space.domains import Domain
    from raysweep.trial import Trial

__all__ = ["PBT"]

#: Slack under ``n * quantile_fraction`` before rounding up: 30 * 0.1 is
#: 3.0000000000000004, and the quantile of 30 trials at 0.1 holds 3, not 4.
_EPS = 1e-9


@dataclass(slots=True)
class _Member:
    """What PBT knows of one trial of the population."""

    last: float = 0.0  # progress at its last perturbation point
    loss: float | None = None  # its score: the loss at that point
    ended: bool = False


class PBT(Scheduler):
    """Population based training: the bottom trials go on from the top ones' checkpoints.

    Args:
        time_attr: what measures progress (see :class:`Scheduler`).
        perturbation_interval: how much progress a trial makes between two
            chances to be exploited.
        hyperparam_mutations: the parameters to change, as a list of names of the
            search space (each then moves within its own domain), or a mapping of
            name -> a list of values (moved along the list), a domain such as
            ``rs.loguniform(1e-4, 1e-1)`` or its YAML form
            ``{type: loguniform, low: 1e-4, high: 0.1}``, or ``None`` (the
            space's domain). Required.
        quantile_fraction: the share of the population at the top that donors
            come from, and at the bottom that is exploited; in ``(0, 0.5]``.
        resample_probability: the chance that a value is drawn afresh rather
            than moved.
        perturbation_factors: the factors a numeric value is multiplied by, one
            drawn at each explore.
        seed: seeds the decisions; ``None`` takes the experiment's seed.
        stop_grace_s: see :class:`Scheduler`.

    Raises:
        SpecError: for an option outside its range, or (at setup) a mutation of a
            parameter the space does not have or holds fixed.

    Example:
        >>> PBT(perturbation_interval=5, hyperparam_mutations={"lr": None}).pauses
        True
    """

    name = "pbt"
    pauses = True

    def __init__(
        self,
        *,
        time_attr: str = "step",
        perturbation_interval: float = 10,
        hyperparam_mutations: Mapping[str, Any] | Sequence[str] | None = None,
        quantile_fraction: float = 0.25,
        resample_probability: float = 0.25,
        perturbation_factors: Sequence[float] = (1.2, 0.8),
        seed: int | None = None,
        stop_grace_s: float = 30.0,
    ) -> None:
        super().__init__(time_attr=time_attr, stop_grace_s=stop_grace_s)
        check = self._check
        check(
            "perturbation_interval",
            is_number(perturbation_interval) and perturbation_interval > 0,
            "a positive number",
            perturbation_interval,
        )
        check(
            "quantile_fraction",
            is_number(quantile_fraction) and 0 < quantile_fraction <= 0.5,
            "a number in (0, 0.5]",
            quantile_fraction,
        )
        check(
            "resample_probability",
            is_number(resample_probability) and 0 <= resample_probability <= 1,
            "a probability in [0, 1]",
            resample_probability,
        )
        check(
            "perturbation_factors",
            isinstance(perturbation_factors, list | tuple)
            and len(perturbation_factors) > 0
            and all(is_number(f) and f > 0 for f in perturbation_factors),
            "a non-empty list of positive numbers, e.g. [1.2, 0.8]",
            perturbation_factors,
        )
        try:
            self.seed = expect_seed(seed)
        except SpecError as exc:
            raise SpecError(f"scheduler 'pbt': seed: {exc}") from None
        self.perturbation_interval = perturbation_interval
        self.quantile_fraction = quantile_fraction
        self.resample_probability = resample_probability
        self.perturbation_factors = tuple(float(f) for f in perturbation_factors)
        self._given = _read_mutations(hyperparam_mutations)
        self._mutations: dict[str, list[Any] | Domain] = {}
        self._drawn_seed: int | None = None
        self._members: dict[int, _Member] = {}
        self._configs: dict[int, Mapping[str, Any]] = {}
        self._pending: dict[int, Exploit] = {}

    def _check(self, option: str, ok: bool, expected: str, value: Any) -> None:
        check_option(self.name, option, ok, expected, value)

    def setup(self, ctx: SchedulerContext) -> None:
        """Resolve each mutation against the space: a name it lacks, or holds
        fixed, is a :class:`SpecError`."""
        from raysweep.sweep.space.domains import Fixed

        super().setup(ctx)
        mutations: dict[str, list[Any] | Domain] = {}
        for key, given in self._given.items():
            if key not in ctx.space:
                names = ctx.space.free_names
                raise SpecError(
                    f"scheduler 'pbt': hyperparam_mutations names {key!r}, which is not a "
                    f"parameter{did_you_mean(key, names)}; parameters: {', '.join(names)}"
                )
            domain = ctx.space[key].base
            if isinstance(domain, Fixed):
                raise SpecError(
                    f"scheduler 'pbt': hyperparam_mutations names {key!r}, which the space "
                    f"fixes at {domain.value!r}; a constant cannot be mutated"
                )
            mutations[key] = domain if given is None else given
        self._mutations = mutations

    # -- the population -------------------------------------------------------------
    def on_trial_add(self, trial: Trial) -> None:
        """A new trial joins the population; a re-run or resumed one rejoins it."""
        self._members.setdefault(trial.trial_id, _Member()).ended = False
        self._configs[trial.trial_id] = trial.config

    def on_trial_complete(self, trial: Trial) -> None:
        """An ended trial leaves the population (it can no longer be a donor)."""
        self._members.setdefault(trial.trial_id, _Member()).ended = True
        self._pending.pop(trial.trial_id, None)

    def on_trial_remove(self, trial: Trial) -> None:
        """As :meth:`on_trial_complete`."""
        self.on_trial_complete(trial)

    def on_trial_result(self, trial: Trial, report: Mapping[str, Any]) -> Decision:
        """At a due report, pause a bottom trial to exploit a top one (module docstring)."""
        tid = trial.trial_id
        self._configs[tid] = trial.config
        # A trial that reports after its pause went on (seen in a replay only: the
        # runner asks nothing of a paused trial before on_trial_paused).
        self._pending.pop(tid, None)
        progress, loss = self.progress(report), self.value(report)
        if progress is None or loss is None:
            return Decision.CONTINUE
        member = self._members.setdefault(tid, _Member())
        if not reached(progress, member.last + self.perturbation_interval):
            return Decision.CONTINUE
        member.loss, member.last = loss, progress
        bottom, top = self.quantiles()
        donors = [t for t in top if t not in self._pending]
        if tid not in bottom or not donors:
            return Decision.CONTINUE
        rng = self._rng(tid, progress)
        donor = rng.choice(donors)
        config = self.explore(self._configs.get(donor, trial.config), rng)
        self._pending[tid] = Exploit(config=config, donor=donor)
        self._configs[tid] = config
        member.last = self._members[donor].last
        return Decision.PAUSE

    def next_decision_at(self, trial: Trial) -> float | None:
        """The trial's next perturbation point: it is not judged before."""
        member = self._members.get(trial.trial_id)
        last = member.last if member is not None else 0.0
        return last + float(self.perturbation_interval)

    def on_trial_paused(self, trial: Trial) -> Exploit | None:
        """The exploit decided when ``trial`` was paused, once."""
        return self._pending.pop(trial.trial_id, None)

    def quantiles(self) -> tuple[list[int], list[int]]:
        """The trial ids in the bottom and top quantiles of the population, worst
        and best first; both empty with fewer than two scored trials."""
        ranked = sorted(
            (m.loss, t) for t, m in self._members.items() if m.loss is not None and not m.ended
        )
        n = len(ranked)
        q = min(math.ceil(n * self.quantile_fraction - _EPS), n // 2)
        if q < 1:
            return [], []
        return [t for _, t in reversed(ranked[n - q :])], [t for _, t in ranked[:q]]

    # -- resume -----------------------------------------------------------------------
    def restore(self, trials: Sequence[Trial]) -> None:
        """Replay the stored reports, then keep only the exploits of trials stored
        as PAUSED: the others went on or ended."""
        from raysweep.trial import TrialState

        super().restore(trials)
        paused = {t.trial_id for t in trials if t.state is TrialState.PAUSED}
        self._pending = {t: e for t, e in self._pending.items() if t in paused}

    def state_dict(self) -> dict[str, Any]:
        """The seed drawn when neither ``seed`` nor the experiment gave one."""
        return {} if self._drawn_seed is None else {"drawn_seed": self._drawn_seed}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Take back the drawn seed, so a resumed run repeats the same decisions."""
        drawn = state.get("drawn_seed")
        if isinstance(drawn, int) and not isinstance(drawn, bool):
            self._drawn_seed = drawn

    def _rng(self, trial_id: int, progress: float) -> random.Random:
        """The random source of one decision: a function of the seed, the trial and
        its progress only, so the decision is the same however often it is made."""
        seed = self.seed
        ctx: SchedulerContext | None = getattr(self, "ctx", None)
        if seed is None and ctx is not None:
            seed = ctx.seed
        if seed is None:
            if self._drawn_seed is None:
                self._drawn_seed = random.SystemRandom().getrandbits(63)
            seed = self._drawn_seed
        return random.Random(f"raysweep.pbt/{seed}/{trial_id}/{progress!r}")

    # -- explore ----------------------------------------------------------------------
    def explore(self, config: Mapping[str, Any], rng: random.Random) -> dict[str, Any]:
        """``config`` with each mutated parameter changed, drawing from ``rng`` (see
        the module docstring); needs :meth:`setup`, which resolves the mutations."""
        new = copy.deepcopy(dict(config))
        for key, source in self._mutations.items():
            if key in config:
                new[key] = self._mutate(config[key], source, rng)
        return new

    def _mutate(self, value: Any, source: list[Any] | Domain, rng: random.Random) -> Any:
        from raysweep.sweep.space.domains import Choice

        if isinstance(source, Choice):
            source = list(source.values)
        if isinstance(source, list):
            index = _index(source, value)
            if rng.random() < self.resample_probability or index is None:
                return copy.deepcopy(rng.choice(source))
            index = min(max(index + rng.choice((-1, 1)), 0), len(source) - 1)
            return copy.deepcopy(source[index])
        if rng.random() < self.resample_probability or not is_number(value):
            return source.from_unit(rng.random())
        return _scale(value, rng.choice(self.perturbation_factors), source)


def _scale(value: float, factor: float, domain: Domain) -> Any:
    """``value * factor`` as a value of ``domain``: clipped to its bounds, an integer
    for an integer domain, a grid value for ``quniform``."""
    from raysweep.sweep.space.domains import LogRandInt, LogUniform, QUniform, RandInt, Uniform

    scaled = value * factor
    step = 0 if scaled == value else 1 if scaled > value else -1
    if isinstance(domain, QUniform):
        index = domain.index_of(scaled)
        if index == domain.index_of(value):  # 0.2 * 1.2 snaps back to 0.2
            index += step
        return domain.value_at(index)
    if isinstance(domain, RandInt | LogRandInt):
        moved = round(scaled)
        if moved == value:  # 2 * 1.2 rounds back to 2
            moved += step
        return int(min(max(moved, domain.low), domain.high))
    if isinstance(domain, Uniform | LogUniform):
        return float(min(max(scaled, domain.low), domain.high))
    return scaled


def _index(values: Sequence[Any], value: Any) -> int | None:
    """Where ``value`` is in ``values`` as JSON sees equality (``True`` is not ``1``)."""
    for i, candidate in enumerate(values):
        same_kind = type(candidate) is type(value) or (is_number(candidate) and is_number(value))
        if same_kind and candidate == value:
            return i
    return None


def _read_mutations(given: Any) -> dict[str, list[Any] | Domain | None]:
    """``hyperparam_mutations`` in one form: name -> list, domain, or ``None`` (the
    space's domain, resolved at setup)."""
    from raysweep.sweep.space import SearchSpace
    from raysweep.sweep.space.domains import Domain, Fixed

    example = "{lr: {type: loguniform, low: 1e-5, high: 0.1}, batch: [32, 64, 128]} or [lr]"
    where = "scheduler 'pbt': hyperparam_mutations"
    if given is None:
        raise SpecError(f"{where} is required: the parameters to mutate, e.g. {example}")
    if isinstance(given, list | tuple) and all(isinstance(k, str) for k in given):
        given = dict.fromkeys(given)
    if not isinstance(given, Mapping) or not given:
        raise SpecError(f"{where} must name parameters, e.g. {example}; got {describe(given)}")
    out: dict[str, list[Any] | Domain | None] = {}
    for key, value in given.items():
        if not isinstance(key, str):
            raise SpecError(f"{where}: keys must be parameter names, got {key!r}")
        if value is None:
            out[key] = None
        elif isinstance(value, list | tuple):
            if not value:
                raise SpecError(f"{where}[{key!r}]: the list of values is empty")
            out[key] = list(value)
        elif isinstance(value, Domain | Mapping):
            domain = (
                value if isinstance(value, Domain) else SearchSpace.from_json({key: value})[key]
            )
            domain.validate(key)
            if isinstance(domain.base, Fixed):
                raise SpecError(f"{where}[{key!r}]: a fixed value cannot be mutated")
            out[key] = domain.base
        else:
            raise SpecError(
                f"{where}[{key!r}]: expected a list of values, a domain or None, "
                f"got {describe(value)}"
            )
    return out
