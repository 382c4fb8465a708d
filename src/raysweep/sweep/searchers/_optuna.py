"""The adapter under every Optuna-based searcher: a study mirroring the experiment.

One adapter, :class:`OptunaSearcher`, holds an in-memory Optuna study that
mirrors the experiment: every suggestion is an Optuna trial asked for, every
dispatched trial stays RUNNING there until its outcome is told, so samplers that
look at running trials (TPE's constant liar, the GP sampler's q-batch
acquisition) propose k different points for k workers. Failed trials are told
as FAIL, never as a value. A proposal outside the constraints is closed at once:
as a complete, infeasible trial for samplers that model feasibility (so they
learn where the region ends), as FAIL for the others; a suggestion the runner
rejects later is told as FAIL. No Optuna trial is left dangling.

Early stopping: with one objective, each intermediate report's primary metric
is reported to the live Optuna trial (``Trial.report(value, step)``), and a
trial a scheduler pruned is told as PRUNED, which makes its last intermediate
value its value. TPE ranks pruned trials after the completed ones (deeper steps
first, then by that value), so a pruned configuration still teaches it where
not to look; the GP, CMA-ES (``consider_pruned_trials`` is left off: a partial
value is not comparable to a final one) and NSGA-II/III read only completed
trials, as they do failed ones. Optuna refuses intermediate values on
multi-objective studies, so there a pruned trial is PRUNED without them.

Resume: the store's trials rebuild the Optuna study (completed ones with their
values, failed ones as failed, pruned ones as pruned, those run again as
pending; intermediate values with each finished trial), so nothing is counted
twice. What the trials cannot give back is the random state; instead of
pickling a sampler, each ask uses a fresh sampler seeded from the experiment
seed and the number of asks so far, so ``state_dict`` is two integers and a
resumed run draws exactly what an uninterrupted one would have drawn. (The GP
sampler thereby refits its kernel from scratch on each ask, which also makes it
reproducible.)

The samplers themselves are chosen in :mod:`raysweep.sweep.searchers.optuna_samplers`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from raysweep._extras import require
from raysweep.errors import InfeasibleSpaceError, RaysweepError, SpecError
from raysweep.sweep.searchers._base import SearchContext, Searcher
from raysweep.sweep.searchers._encoding import Encoding, Kind
from raysweep.sweep.searchers._torch import torch_threads
from raysweep.sweep.searchers.random import MAX_DRAWS, check_seed
from raysweep.trial import Trial

__all__ = ["MODEL_TRIES", "OptunaSearcher", "ask_seed", "count_option", "import_optuna"]


#: Proposals outside the constraints the model may make for one trial before its
#: point is drawn at random.
MODEL_TRIES = 20


def import_optuna(feature: str) -> Any:
    """The ``optuna`` module, quietened, or :class:`MissingExtraError` naming ``feature``."""
    optuna = require("optuna", "optuna", feature)
    # Optuna logs every told trial at INFO; the progress display already shows them.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def ask_seed(seed: int, asks: int) -> int:
    """The seed of the sampler used for ask number ``asks`` of an experiment seeded ``seed``."""
    return int(np.random.SeedSequence([seed, asks]).generate_state(1)[0])


class OptunaSearcher(Searcher):
    """Base of the Optuna-backed searchers; subclasses implement :meth:`make_sampler`.

    Args:
        seed: overrides the experiment seed (``ctx.seed``) when given; without
            either, a seed is drawn and kept in the state.
    """

    #: torch threads while asking (only the GP sampler runs on torch).
    threads: int | None = None
    #: Whether the sampler models feasibility from Optuna's per-trial constraint
    #: values (then proposals outside the constraints are told as infeasible).
    models_feasibility: bool = False

    def __init__(self, seed: int | None = None) -> None:
        self.seed = check_seed(seed, type(self).__name__)
        self._optuna = import_optuna(f"searcher {self.name!r}")
        self._seed: int | None = None
        self._asks = 0
        self._live: dict[int, Any] = {}  # raysweep trial id -> pending optuna.Trial
        self._last: int | None = None  # trial id of the last suggestion
        self._study: Any = None

    # -- what subclasses choose ---------------------------------------------------------
    def make_sampler(self, seed: int) -> Any:
        """A new Optuna sampler seeded with ``seed``."""
        raise NotImplementedError

    # -- life cycle ---------------------------------------------------------------------
    def setup(self, ctx: SearchContext) -> None:
        super().setup(ctx)
        import secrets

        seed = self.seed if self.seed is not None else ctx.seed
        self._seed = seed if seed is not None else secrets.randbits(63)
        self._encoding = Encoding(ctx.space)
        self._distributions = self._encoding.optuna_distributions()
        # The order parameters are asked in decides which random draw goes to which
        # parameter; kept in the state, so a resumed experiment whose space was
        # reordered continues the same sequence.
        self._order = list(ctx.space)
        self._attr_runs: dict[str, list[list[int]]] = {}
        self._asked_attrs: dict[int, dict[str, Any]] = {}
        self._newest: tuple[int, dict[str, Any]] | None = None
        self._sums: list[float] | None = None  # per objective, over completed trials
        self._completed = 0
        self._new_study()

    def _new_study(self) -> None:
        directions = [m.direction.verb for m in self.ctx.objectives]
        self._study = self._optuna.create_study(
            directions=directions, sampler=self._sampler_for_ask()
        )
        self._live.clear()

    def _sampler_for_ask(self) -> Any:
        if self._seed is None:
            raise RaysweepError(f"{type(self).__name__}.setup(ctx) must be called before use")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ExperimentalWarning for newer samplers
            return self.make_sampler(ask_seed(self._seed, self._asks) % 2**32)

    # -- asking -------------------------------------------------------------------------
    def suggest(self, trial_id: int) -> dict[str, Any] | None:
        """The next configuration; infeasible ones (constraints) are told to Optuna
        as failed and drawn again at random, at most :data:`MAX_DRAWS` times."""
        if self._study is None:
            raise RaysweepError(f"{type(self).__name__}.setup(ctx) must be called before use")
        constraints = self.ctx.constraints
        for attempt in range(MAX_DRAWS):
            # A proposal outside the constraints is told to Optuna as infeasible (when
            # the sampler models feasibility) and the model asked again; after
            # MODEL_TRIES such proposals for one trial, its point is drawn at random,
            # which finds the feasible region if there is one.
            trial, config = self._ask(model=attempt < MODEL_TRIES)
            if not len(constraints) or constraints.is_feasible(config):
                self._live[trial_id] = trial
                self._last = trial_id
                self.asked(trial_id, trial)
                return config
            self._reject(trial, config)
        raise InfeasibleSpaceError(
            f"the {self.name} searcher drew {MAX_DRAWS} configurations and none satisfied "
            f"the constraints {constraints.to_json()}; they may be unsatisfiable in this space"
        )

    def _reject(self, trial: Any, config: Mapping[str, Any]) -> None:
        """Close a proposal the constraints refuse.

        A sampler that models feasibility (Optuna's per-trial constraint values:
        TPE, the GP, NSGA-II/III) learns where the region ends only from trials it
        holds as complete and infeasible, so the proposal is told as complete with
        its constraint violations and, as its value, the mean of the values so far
        (it is never evaluated). Other samplers would take that value as real, so
        they are told the proposal failed. Either way the Optuna study holds more
        trials than the store; a resume rebuilds it without these.
        """
        values = self._rejected_values
        if self.models_feasibility and values is not None:
            for key, violated in self._violations(config).items():
                trial.set_constraint(key, violated)
            self._study.tell(trial, values)
        else:
            self._study.tell(trial, state=self._optuna.trial.TrialState.FAIL)

    def _violations(self, config: Mapping[str, Any]) -> dict[str, float]:
        """``{"c0": 1.0 if the first constraint is violated else 0.0, ...}``."""
        return {
            f"c{i}": 0.0 if constraint.evaluate(config) else 1.0
            for i, constraint in enumerate(self.ctx.constraints)
        }

    def _note_values(self, values: list[float]) -> None:
        """Keep the mean of each objective over completed trials: the value a
        rejected proposal is told with. A neutral value, unlike the worst one, does
        not carve a false cliff into a GP at the feasible region's edge (gp on
        ``branin_disk``, 3 seeds: median regret 0.00064 with the mean, 0.018 with
        the worst value)."""
        if self._sums is None:
            self._sums = [0.0] * len(values)
        self._sums = [total + value for total, value in zip(self._sums, values, strict=True)]
        self._completed += 1

    @property
    def _rejected_values(self) -> list[float] | None:
        if self._sums is None or not self._completed:
            return None
        return [total / self._completed for total in self._sums]

    def _ask(self, model: bool = True) -> tuple[Any, dict[str, Any]]:
        if model:
            self._study.sampler = self._sampler_for_ask()
        else:
            seed = ask_seed(self._seed or 0, self._asks) % 2**32
            self._study.sampler = self._optuna.samplers.RandomSampler(seed=seed)
        self._asks += 1
        with warnings.catch_warnings(), torch_threads(self.threads):
            warnings.simplefilter("ignore")
            trial = self._study.ask()
            return trial, self._ask_params(trial)

    # Samplers keep some state in their trials' system attributes (the genetic
    # samplers a generation number, CMA-ES its optimizer), which the stored trials
    # do not hold: without it a resumed study would start again at generation 0.
    # Integer attributes are kept as runs of equal values over trial ids; the
    # others (an optimizer) only for the newest completed trial carrying them,
    # which is the only one a sampler reads back.
    def asked(self, trial_id: int, trial: Any) -> None:
        attrs = self._study._storage.get_trial_system_attrs(trial._trial_id)
        other = {}
        for key, value in attrs.items():
            if key == "fixed_params":  # Optuna's own record of an enqueued trial
                continue
            if isinstance(value, int) and not isinstance(value, bool):
                runs = self._attr_runs.setdefault(key, [])
                if not runs or runs[-1][1] != value:
                    runs.append([trial_id, value])
            else:
                other[key] = value
        if other:
            self._asked_attrs[trial_id] = other

    def trial_attrs(self, trial_id: int) -> dict[str, Any]:
        """The system attributes Optuna wrote on trial ``trial_id``, as far as kept."""
        out: dict[str, Any] = {}
        for key, runs in self._attr_runs.items():
            values = [value for first, value in runs if first <= trial_id]
            if values:
                out[key] = values[-1]
        if self._newest is not None and self._newest[0] == trial_id:
            out.update(self._newest[1])
        return out

    def _completed_attrs(self, trial_id: int) -> None:
        attrs = self._asked_attrs.pop(trial_id, None)
        if attrs and (self._newest is None or trial_id >= self._newest[0]):
            self._newest = (trial_id, attrs)

    def _ask_params(self, trial: Any) -> dict[str, Any]:
        """Ask ``trial`` for each active parameter, in the space's order, so a
        parameter's condition sees the values chosen before it (define-by-run)."""
        space = self.ctx.space
        config: dict[str, Any] = {}
        for name in self._order:
            if name not in self._distributions:
                config[name] = space[name].from_unit(0.0)  # fixed
                continue
            if not space.active(name, config):
                continue
            param = self._encoding[name]
            dist = self._distributions[name]
            if param.kind is Kind.FLOAT:
                raw: Any = trial.suggest_float(name, dist.low, dist.high, log=dist.log)
            elif param.kind is Kind.INT:
                raw = trial.suggest_int(name, dist.low, dist.high, log=dist.log)
            else:
                raw = trial.suggest_categorical(name, dist.choices)
            config[name] = param.decode(raw)
        return {name: config[name] for name in space if name in config}

    def _pending(self, trial: Trial) -> Any:
        """An Optuna trial, RUNNING, holding ``trial``'s stored configuration."""
        encoded = self._encoding.encode(trial.config)
        self._study.enqueue_trial(encoded)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pending = self._study.ask()
            self._ask_params(pending)
        for key, value in self.trial_attrs(trial.trial_id).items():
            self._study._storage.set_trial_system_attr(pending._trial_id, key, value)
        return pending

    # -- telling ------------------------------------------------------------------------
    def on_trial_start(self, trial: Trial) -> None:
        if trial.trial_id not in self._live:
            self._live[trial.trial_id] = self._pending(trial)

    def on_trial_complete(self, trial: Trial) -> None:
        found = self.ctx.objectives.values(trial)
        if found is None:  # the runner never sends these; be safe
            self.on_trial_error(trial)
            return
        values = list(found)
        live = self._live.pop(trial.trial_id, None)
        self._completed_attrs(trial.trial_id)
        self._note_values(values)
        feasible = self._constraint_values()
        steps = self._intermediate_values(trial)
        if live is not None:
            # Reported here too (without a scheduler no report reached
            # on_trial_result), so the live study equals one a resume rebuilds.
            self._report(live, steps)
            for key, value in feasible.items():
                live.set_constraint(key, value)
            self._study.tell(live, values)
        else:
            self._study.add_trial(
                self._frozen(trial, "COMPLETE", values, constraints=feasible, intermediate=steps)
            )

    def on_trial_error(self, trial: Trial) -> None:
        self._asked_attrs.pop(trial.trial_id, None)
        live = self._live.pop(trial.trial_id, None)
        if live is not None:
            self._study.tell(live, state=self._optuna.trial.TrialState.FAIL)
        else:
            self._study.add_trial(self._frozen(trial, "FAIL", None))

    def on_trial_result(self, trial: Trial, report: Mapping[str, Any]) -> None:
        """Report the primary metric at ``report["step"]`` to the live Optuna trial
        (single objective only: Optuna refuses ``Trial.report`` otherwise)."""
        live = self._live.get(trial.trial_id)
        point = self._point(report)
        if live is not None and point is not None:
            self._report(live, dict([point]))

    def on_trial_pruned(self, trial: Trial) -> None:
        """Told as PRUNED, with every intermediate value ``trial`` holds (those
        :meth:`on_trial_result` missed are reported first); Optuna then takes the
        last one as the trial's value."""
        self._asked_attrs.pop(trial.trial_id, None)
        live = self._live.pop(trial.trial_id, None)
        steps = self._intermediate_values(trial)
        # It ran, so it was feasible; samplers that model feasibility expect the keys.
        feasible = self._constraint_values()
        if live is not None:
            self._report(live, steps)
            for key, value in feasible.items():
                live.set_constraint(key, value)
            self._study.tell(live, state=self._optuna.trial.TrialState.PRUNED)
        else:
            # What Optuna's tell would have made of it: the last step's value.
            values = [steps[max(steps)]] if steps else None
            self._study.add_trial(
                self._frozen(trial, "PRUNED", values, constraints=feasible, intermediate=steps)
            )

    def _point(self, report: Mapping[str, Any]) -> tuple[int, float] | None:
        """``(step, value)`` of one report for Optuna, or ``None``: several objectives,
        no usable step (Optuna's are non-negative integers), or the primary metric
        absent or not finite."""
        objectives = self.ctx.objectives
        step = report.get("step")
        if objectives.multi or isinstance(step, bool) or not isinstance(step, int | np.integer):
            return None
        value = objectives.primary.value(report)
        return None if value is None or step < 0 else (int(step), value)

    def _intermediate_values(self, trial: Trial) -> dict[int, float]:
        """``{step: value}`` of ``trial``'s reports; the first value of a step
        reported twice, as :meth:`_report` leaves it."""
        values: dict[int, float] = {}
        for report in trial.intermediate:
            if (point := self._point(report)) is not None:
                values.setdefault(*point)
        return values

    def _report(self, live: Any, values: Mapping[int, float]) -> None:
        # Optuna keeps the first value of a step and warns about any later one (a
        # step reported again: the trial's re-run, or on_trial_pruned filling in
        # what on_trial_result already reported); keeping the first is right here.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for step, value in values.items():
                live.report(value, step)

    def on_rejected(self, config: Mapping[str, Any]) -> None:
        if self._last is not None and (live := self._live.pop(self._last, None)) is not None:
            self._study.tell(live, state=self._optuna.trial.TrialState.FAIL)

    def _constraint_values(self) -> dict[str, float]:
        """Constraint values of a completed (so feasible) trial, for samplers that
        model feasibility: every trial they see must carry the same keys."""
        if not self.models_feasibility or not len(self.ctx.constraints):
            return {}
        return {f"c{i}": 0.0 for i in range(len(self.ctx.constraints))}

    def _frozen(
        self,
        trial: Trial,
        state: str,
        values: list[float] | None,
        constraints: dict[str, float] | None = None,
        intermediate: dict[int, float] | None = None,
    ) -> Any:
        encoded = self._encoding.encode(trial.config)
        return self._optuna.trial.create_trial(
            state=getattr(self._optuna.trial.TrialState, state),
            params=encoded,
            distributions={name: self._distributions[name] for name in encoded},
            values=values,
            system_attrs=self.trial_attrs(trial.trial_id),
            intermediate_values=intermediate or None,
            constraints=constraints or None,
        )

    # -- resume -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "seed": self._seed,
            "asks": self._asks,
            "order": self._order,
            "attr_runs": self._attr_runs,
            "newest_attrs": None if self._newest is None else list(self._newest),
            # What samplers keep on the study: QMC's position in its sequence, the
            # genetic samplers' parent populations.
            "study_attrs": self._study._storage.get_study_system_attrs(self._study._study_id),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        seed, asks = state.get("seed"), state.get("asks")
        if not isinstance(seed, int) or not isinstance(asks, int) or asks < 0:
            raise SpecError(f"{type(self).__name__} cannot restore from state {dict(state)!r}")
        self._seed, self._asks = seed, asks
        order = state.get("order")
        space = self.ctx.space
        if isinstance(order, list) and sorted(order) == sorted(space) and not space.conditional:
            self._order = list(order)
        runs, newest = state.get("attr_runs") or {}, state.get("newest_attrs")
        if isinstance(runs, Mapping):
            self._attr_runs = {str(k): [list(r) for r in v] for k, v in runs.items()}
        if isinstance(newest, list) and len(newest) == 2 and isinstance(newest[1], Mapping):
            self._newest = (int(newest[0]), dict(newest[1]))
        self._new_study()
        study_attrs = state.get("study_attrs") or {}
        if isinstance(study_attrs, Mapping):
            for key, value in study_attrs.items():
                self._study._storage.set_study_system_attr(self._study._study_id, str(key), value)

    @property
    def optuna_study(self) -> Any:
        """The Optuna study mirroring the experiment (read it, do not tell it)."""
        return self._study


def count_option(value: Any, option: str, searcher: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError(
            f"searcher {searcher!r} {option} must be an integer >= {minimum}, got {value!r}"
        )
    return value
