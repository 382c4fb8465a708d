"""Ax (Bayesian optimization on BoTorch) as a raysweep searcher, through Ax's ``Client``.

One in-memory Ax experiment mirrors the raysweep experiment. Each suggestion
is one new Ax trial, and it stays RUNNING in Ax until raysweep tells its
outcome, so Ax counts it as pending and k suggestions in a row are k different
points (asynchronous parallelism). Outcomes are told as Ax expects them:
completed with every objective metric, failed (never a value; Ax may try the
point again), abandoned for a configuration raysweep rejected, so no Ax trial
is left dangling.

A trial a scheduler pruned is early-stopped in Ax, its last reported objective
values attached first (``attach_data``, then ``mark_trial_early_stopped``, the
order Ax's own early stopping uses): Ax models an early-stopped trial's data as
its result, and never proposes it again. One that reported none of the
objective metrics is abandoned (Ax refuses to early-stop a trial without data).
Intermediate reports are not attached as they come: Ax fits its model on data
attached to running trials too, so a partial value would stand in for a
pending point, and Ax's own early stopping (which would read them) is not used.

Ax's generation strategy is the one its ``Client`` would choose (the center of
the space, Sobol' points, then BoTorch), with two settings of raysweep's: the
Sobol' phase goes on while fewer results than Ax needs are in, instead of
refusing to propose (raysweep keeps every worker busy), and trials already in
the experiment count toward it (for a resume).

Linear constraints (:meth:`Constraint.linear`) on float and integer ranges are
given to Ax, which then searches inside them; every other constraint is
checked here: a proposal violating one is abandoned in Ax and the trial gets a
random feasible point instead (attached to Ax, which learns from it), since
Ax's model would propose much the same point again, at a model fit each.

Resume: :meth:`AxSearcher.restore` (the default replay of the hooks) rebuilds
the Ax experiment from the stored trials, each attached once (a pruned one
early-stopped with its last values again). What the trials
cannot give back is the seed and how far Ax's Sobol' sequence went; those are
the state, so a resumed run continues the sequence instead of starting it again
(and the center point is not proposed twice): told the same results, a resumed
run proposes what the uninterrupted one would have (model phase included).

BoTorch fits and optimizes in the driver on torch's threads; where trials keep
every core busy, fewer threads (``torch.set_num_threads``) can be much faster.

Ax logs every trial at INFO on its own stderr handler, and BoTorch warns about
numerics. While Ax runs for this searcher, a filter on the handlers of the
``ax`` logger drops records below WARNING and Python warnings are ignored;
both are removed when the call returns, so the user's logging and warning
settings are what they were everywhere else.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import secrets
import sys
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from raysweep.errors import MissingExtraError, RaysweepError, SpecError
from raysweep.objectives import Direction
from raysweep.sweep.searchers._base import SearchContext, Searcher
from raysweep.sweep.searchers._encoding import Encoding, Kind, finite
from raysweep.sweep.searchers._torch import check_threads, torch_threads
from raysweep.sweep.searchers.random import check_seed, first_feasible
from raysweep.sweep.space.domains import Fixed, QUniform
from raysweep.trial import Trial, TrialState

if TYPE_CHECKING:
    from raysweep.sweep.space.linear import LinearInequality

__all__ = ["METHODS", "AxSearcher", "quiet_ax"]

#: Ax's ways of modelling, as its Client names them.
Method = Literal["fast", "quality", "random_search"]
METHODS: tuple[Method, ...] = ("fast", "quality", "random_search")
#: Relative margin by which a float constraint given to Ax is tightened: Ax
#: tolerates violations up to 1e-8, raysweep none.
_MARGIN = 1e-7


class _BelowWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


@contextmanager
def quiet_ax(threads: int | None = None) -> Iterator[None]:
    """Within the block, Ax's log records below WARNING and all Python warnings
    are dropped; afterwards everything is as it was.

    The filter goes on the handlers of the ``ax`` logger (Ax's own stderr
    handler, and any a user added there): Ax sets a level on each of its
    module loggers, so a level on ``ax`` would not reach them, and it does not
    propagate records to the root logger.
    """
    drop = _BelowWarning()
    handlers = list(logging.getLogger("ax").handlers)
    for handler in handlers:
        handler.addFilter(drop)
    try:
        with warnings.catch_warnings(), torch_threads(threads):
            warnings.simplefilter("ignore")
            yield
    finally:
        for handler in handlers:
            handler.removeFilter(drop)


def _import_ax(feature: str) -> None:
    """Import Ax, or raise :class:`MissingExtraError` naming ``feature``."""
    if sys.modules.get("ax") is not None:
        return
    # Ax announces its SQL storage at INFO while it is imported, before its handler
    # exists to be filtered; the filter sits on that one logger meanwhile.
    announcer = logging.getLogger("ax.storage.sqa_store.with_db_settings_base")
    drop = _BelowWarning()
    announcer.addFilter(drop)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import ax  # noqa: F401 - imported here so `import raysweep` does not need it
    except ImportError as exc:
        raise MissingExtraError("ax-platform", "ax", feature) from exc
    finally:
        announcer.removeFilter(drop)


class AxSearcher(Searcher):
    """Ax's Bayesian optimization (BoTorch), single- or multi-objective.

    Args:
        seed: overrides the experiment seed (``ctx.seed``) when given; without
            either, a seed is drawn and kept in the state.
        method: Ax's ``"fast"`` (its default GP), ``"quality"`` (a fully Bayesian
            SAAS GP: better in many dimensions, much slower; needs JAX and NumPyro)
            or ``"random_search"`` (Sobol' points only).
        initialization_budget: quasi-random trials (the center of the space
            included) before the model is used; Ax's default (5) when ``None``.
        threads: torch threads while Ax fits and optimizes in the driver (see
            :mod:`raysweep.sweep.searchers._torch`); ``None`` keeps torch's own.

    Example:
        >>> from raysweep.objectives import Objectives
        >>> from raysweep.sweep.space import SearchSpace, uniform
        >>> from raysweep.sweep.space.constraints import ConstraintSet
        >>> space = SearchSpace({"x": uniform(0, 1), "y": uniform(0, 1)})
        >>> searcher = AxSearcher(seed=0)  # doctest: +SKIP
        >>> searcher.setup(SearchContext(space, ConstraintSet(["x + y <= 1"], space),
        ...                              Objectives.single("loss"), None))  # doctest: +SKIP
        >>> searcher.ax_constraints  # doctest: +SKIP
        ['1.0*x + 1.0*y <= 0.9999999']
        >>> sum(searcher.suggest(0).values()) <= 1  # doctest: +SKIP
        True
    """

    name = "ax"
    multi_objective = True

    def __init__(
        self,
        seed: int | None = None,
        method: str = "fast",
        initialization_budget: int | None = None,
        threads: int | None = 1,
    ) -> None:
        self.seed = check_seed(seed, "AxSearcher")
        self.threads = check_threads(threads, "ax")
        if method not in METHODS:
            valid = ", ".join(map(repr, METHODS))
            raise SpecError(f"searcher 'ax' method must be one of {valid}, got {method!r}")
        self.method = method
        if initialization_budget is not None and (
            isinstance(initialization_budget, bool)
            or not isinstance(initialization_budget, int)
            or initialization_budget < 2
        ):
            # One would be the center alone, after which Ax's model has no data to fit.
            raise SpecError(
                "searcher 'ax' initialization_budget must be an integer >= 2 (or None for "
                f"Ax's default), got {initialization_budget!r}"
            )
        self.initialization_budget = initialization_budget
        _import_ax(f"searcher {self.name!r}")
        if method == "quality":
            # BoTorch's fully Bayesian GP runs NUTS on JAX/NumPyro, imported only at the
            # first model fit; missing, the run would fail after its Sobol' phase.
            for package in ("jax", "numpyro"):
                if importlib.util.find_spec(package) is None:
                    raise MissingExtraError(
                        package,
                        "ax-quality",
                        "searcher 'ax' with method='quality' (BoTorch's fully Bayesian GP, "
                        "botorch[fully_bayesian])",
                    )
        self._seed: int | None = None
        self._order: list[str] = []
        self._start = 0  # Sobol' position the current Ax experiment started from
        self._client: Any = None
        self._gs: Any = None  # Ax's generation strategy, chosen at the first suggestion
        self._attached = 0  # Ax trials made from raysweep's (restored or resumed) trials
        self._live: dict[int, int] = {}  # raysweep trial id -> Ax trial index, pending
        self._last: int | None = None  # trial id of the last suggestion
        self.ax_constraints: list[str] = []
        self._whole = 0

    # -- building the Ax experiment ---------------------------------------------------
    def setup(self, ctx: SearchContext) -> None:
        super().setup(ctx)
        seed = self.seed if self.seed is not None else ctx.seed
        self._seed = seed if seed is not None else secrets.randbits(63)
        self._encoding = Encoding(ctx.space)
        # The order Ax sees parameters in decides which Sobol' coordinate drives
        # which one; kept in the state, so a reordered space continues the sequence.
        self._order = [p.name for p in self._encoding.params]
        #: The linear constraints handed to Ax, in Ax's syntax.
        self.ax_constraints = []
        self._whole = 0  # constraints Ax was given entirely
        for constraint in ctx.constraints:
            texts = [self._ax_inequality(part) for part in constraint.linear() or ()]
            self.ax_constraints.extend(t for t in texts if t is not None)
            self._whole += bool(texts) and None not in texts
        self._build(start=0)

    def summary(self) -> str | None:
        """Which constraints Ax searches inside; ``None`` without constraints."""
        total = len(self.ctx.constraints)
        if not total:
            return None
        return (
            f"ax: {self._whole} of {total} constraint(s) are linear on float/integer ranges "
            "and kept by Ax itself; the others are checked on each of its proposals"
        )

    def _build(self, start: int) -> None:
        """A new, empty Ax experiment whose Sobol' sequence starts at ``start``."""
        from ax import Client

        self._start, self._live, self._last, self._attached = start, {}, None, 0
        self._client = self._gs = None
        if not self._order:  # nothing to search: every suggestion is the constants
            return
        names = [p.name for p in self._encoding.params]
        by_name = dict(zip(names, self._encoding.ax_parameters(), strict=True))
        objective = ", ".join(
            ("-" if m.direction is Direction.MIN else "") + f"m{i}"
            for i, m in enumerate(self.ctx.objectives)
        )
        with quiet_ax(self.threads):
            client = Client(random_seed=self._ax_seed())
            client.configure_experiment(
                parameters=[by_name[name] for name in self._order],
                parameter_constraints=self.ax_constraints,
                name="raysweep",
            )
            # Metric names need not be valid in Ax's expressions ("val/loss"): Ax
            # knows metric i as "m<i>".
            client.configure_optimization(objective=objective)
        self._client = client

    def _strategy(self) -> None:
        """Choose Ax's generation strategy, at the first suggestion: only then is it
        known whether the experiment was restored with trials, which take the place
        of the center point (Ax would skip it too, but only after it has generated
        one more Sobol' point, as the strategy moves on one step per proposal)."""
        from ax.api.utils.generation_strategy_dispatch import choose_generation_strategy
        from ax.api.utils.structs import GenerationStrategyDispatchStruct

        ax_seed = self._ax_seed()
        with quiet_ax(self.threads):
            gs = choose_generation_strategy(
                struct=GenerationStrategyDispatchStruct(
                    method=self.method,
                    initialization_budget=self.initialization_budget,
                    initialization_random_seed=ax_seed,
                    initialize_with_center=not self._attached,
                    use_existing_trials_for_initialization=True,
                    allow_exceeding_initialization_budget=True,
                )
            )
            sobol = gs.nodes_by_name.get("Sobol")
            if sobol is not None and self._start:
                sobol.generator_specs[0].generator_kwargs["init_position"] = self._start
            self._client.set_generation_strategy(generation_strategy=gs)
        self._gs = gs

    def _ax_seed(self) -> int:
        if self._seed is None:
            raise RaysweepError("AxSearcher.setup(ctx) must be called before it is used")
        return self._seed % 2**32  # numpy's seed range; Ax seeds numpy with it

    def _ax_inequality(self, part: LinearInequality) -> str | None:
        """``part`` in Ax's terms (its parameters as Ax sees them), or ``None`` when
        Ax cannot take it: a log-scaled or categorical parameter, or no parameter."""
        space = self.ctx.space
        coefficients: dict[str, float] = {}
        bound, integral = part.bound, True
        for name, c in part.terms:
            domain = space[name]
            if isinstance(domain, Fixed):
                value = domain.from_unit(0.0)
                if not finite(value):
                    return None
                bound -= c * value
                continue
            param = self._encoding[name]
            if param.log or param.kind is Kind.CATEGORY:
                return None  # Ax models only linear constraints in linear parameters
            if param.high == param.low:  # a one-value grid is a constant to Ax
                bound -= c * param.decode(param.low)
                continue
            if isinstance(domain, QUniform):  # Ax searches the index k: low + k*q
                bound -= c * float(domain.low)
                c *= float(domain.q)
            integral = integral and param.kind is Kind.INT and float(c).is_integer()
            coefficients[name] = coefficients.get(name, 0.0) + c
        coefficients = {n: c for n, c in coefficients.items() if c != 0.0}
        if not coefficients or not math.isfinite(bound):
            return None
        if integral:  # sums of integers: x < 3 is x <= 2, x <= 2.5 is x <= 2
            bound = float(math.ceil(bound) - 1 if part.strict else math.floor(bound))
        else:  # strictness is kept by raysweep's own check (a boundary of no volume)
            scale = max([1.0, abs(bound), *map(abs, coefficients.values())])
            bound -= _MARGIN * scale
        text = " + ".join(f"{c!r}*{n}" for n, c in coefficients.items()) + f" <= {bound!r}"
        return text if self._ax_reads(text, coefficients, bound) else None

    @staticmethod
    def _ax_reads(text: str, coefficients: Mapping[str, float], bound: float) -> bool:
        """Whether Ax parses ``text`` back to ``coefficients`` and ``bound`` (its
        parser is SymPy's, which would read a parameter named ``E`` as e = 2.718...)."""
        from ax.core.parameter_constraint import ParameterConstraint
        from ax.exceptions.core import AxError

        try:
            parsed = ParameterConstraint(inequality=text)
        except (AxError, ValueError, TypeError, SyntaxError):
            return False
        got = parsed.constraint_dict
        return (
            set(got) == set(coefficients)
            and all(math.isclose(got[n], c, rel_tol=1e-12) for n, c in coefficients.items())
            and math.isclose(parsed.bound, bound, rel_tol=1e-12, abs_tol=1e-300)
        )

    # -- asking -----------------------------------------------------------------------
    def suggest(self, trial_id: int) -> dict[str, Any] | None:
        """One new Ax trial's configuration; a proposal that violates a constraint Ax
        was not given is abandoned in Ax and replaced by a random feasible point."""
        self._ax_seed()
        if self._client is None:
            return self._encoding.decode({})
        if self._gs is None:
            self._strategy()
        if (stale := self._live.pop(trial_id, None)) is not None:
            self._close(stale, TrialState.ABANDONED)  # asked before, never dispatched
        constraints = self.ctx.constraints
        with quiet_ax(self.threads):
            trials = self._client.get_next_trials(max_trials=1)
        if len(trials) != 1:
            raise RaysweepError(f"Ax proposed {len(trials)} trials where 1 was asked for")
        ((index, parameters),) = trials.items()
        config = self._encoding.decode(parameters)
        if not constraints.is_feasible(config):
            # Ax's model proposes much the same point again after an abandoned one,
            # and each proposal costs a model fit: this trial's point is drawn at
            # random instead (seeded by the trial id, so a resume draws the same),
            # and attached to Ax, which learns from its result like any other.
            self._close(index, TrialState.ABANDONED)
            rng = np.random.default_rng([self._seed or 0, trial_id])
            config = first_feasible(lambda: self.ctx.space.sample(rng), self.ctx, self.name)
            with quiet_ax(self.threads):
                index = self._client.attach_trial(parameters=self._encoding.encode(config))
        self._live[trial_id], self._last = index, trial_id
        return config

    # -- telling ----------------------------------------------------------------------
    def _attach(self, trial: Trial) -> int | None:
        """An Ax trial, RUNNING, with ``trial``'s configuration; ``None`` for one that
        is not a configuration of the current space (a resume with a changed space)."""
        if self._client is None or self.ctx.space.problems(trial.config):
            return None
        with quiet_ax(self.threads):
            index: int = self._client.attach_trial(parameters=self._encoding.encode(trial.config))
        self._attached += 1
        return index

    def _close(self, index: int, state: TrialState) -> None:
        """Close Ax trial ``index``: failed for FAILED, abandoned for anything else."""
        with quiet_ax(self.threads):
            if state is TrialState.FAILED:
                self._client.mark_trial_failed(trial_index=index)
            else:
                self._client.mark_trial_abandoned(trial_index=index)

    def on_trial_start(self, trial: Trial) -> None:
        if trial.trial_id not in self._live and (index := self._attach(trial)) is not None:
            self._live[trial.trial_id] = index

    def on_trial_complete(self, trial: Trial) -> None:
        values = self.ctx.objectives.values(trial)
        if values is None:  # the runner never sends these; be safe
            self.on_trial_error(trial)
            return
        index = self._live.pop(trial.trial_id, None)
        if index is None and (index := self._attach(trial)) is None:
            return
        with quiet_ax(self.threads):
            self._client.complete_trial(
                trial_index=index, raw_data={f"m{i}": v for i, v in enumerate(values)}
            )

    def on_trial_error(self, trial: Trial) -> None:
        """FAILED is told as failed (Ax may try the point again: failures can be
        transient); anything else that ends here without a value (a completed trial
        missing a metric) as abandoned."""
        index = self._live.pop(trial.trial_id, None)
        if index is None and (index := self._attach(trial)) is None:
            return
        self._close(index, trial.state)

    def on_trial_pruned(self, trial: Trial) -> None:
        """Early-stopped in Ax with the last reported objective values; abandoned
        when it reported none (Ax never proposes either again: the scheduler judged
        the configuration poor)."""
        index = self._live.pop(trial.trial_id, None)
        if index is None and (index := self._attach(trial)) is None:
            return
        last = trial.metrics or (trial.intermediate[-1] if trial.intermediate else {})
        found = [m.value(last) for m in self.ctx.objectives]
        data = {f"m{i}": v for i, v in enumerate(found) if v is not None}
        if not data:
            self._close(index, TrialState.ABANDONED)
            return
        with quiet_ax(self.threads):
            # No progression: completed trials carry none, and Ax would otherwise
            # hold this one's data as a time series apart from theirs.
            self._client.attach_data(trial_index=index, raw_data=data)
            self._client.mark_trial_early_stopped(trial_index=index)

    def on_rejected(self, config: Mapping[str, Any]) -> None:
        if self._last is not None and (index := self._live.pop(self._last, None)) is not None:
            self._close(index, TrialState.ABANDONED)
        self._last = None

    # -- resume -----------------------------------------------------------------------
    def _sobol_position(self) -> int:
        """How many points of Ax's Sobol' sequence have been drawn."""
        from ax.exceptions.core import AxError

        node = None if self._gs is None else self._gs.nodes_by_name.get("Sobol")
        if node is None:
            return self._start
        try:
            generator = node.generator_specs[0].fitted_adapter.generator
        except AxError:  # not fitted: nothing drawn since the experiment was built
            return self._start
        position = getattr(generator, "init_position", None)
        return position if isinstance(position, int) else self._start

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self._seed, "sobol_position": self._sobol_position(), "order": self._order}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the seed and Sobol' position; this starts a new, empty Ax
        experiment, which :meth:`restore` then fills from the stored trials."""
        seed, position = state.get("seed"), state.get("sobol_position")
        if (
            isinstance(seed, bool)
            or not isinstance(seed, int)
            or isinstance(position, bool)
            or not isinstance(position, int)
            or position < 0
        ):
            raise SpecError(f"AxSearcher cannot restore from state {dict(state)!r}")
        self._seed = seed
        order = state.get("order")
        if isinstance(order, list) and sorted(order) == sorted(self._order):
            self._order = [str(name) for name in order]
        self._build(start=position)

    @property
    def ax_client(self) -> Any:
        """The Ax ``Client`` mirroring the experiment (read it, do not tell it);
        ``None`` before :meth:`setup` or for a space with nothing to search."""
        return self._client
