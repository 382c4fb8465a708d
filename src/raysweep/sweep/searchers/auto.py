"""``auto``: the default searcher, a documented choice among the others.

The choice is made once, when the experiment is created, from what is known
then: the space (types, size, conditions), the objectives, the budget
(``num_trials``), the parallelism (``max_concurrent``) and what is installed.
It is kept in the searcher's state with its reason, so a resume continues with
the same searcher even if the rule or the installed libraries changed, and
``raysweep status`` shows it. The rule, in order (the first that applies wins):

1. No free parameter: ``random`` (there is nothing to learn).
2. Optuna not installed: ``sobol`` (the best of the built-in searchers), saying
   which extra to install for model-based search.
3. A budget too small for a model: fewer than 16 trials, or fewer than 4 rounds
   of ``max_concurrent`` trials: ``sobol``.
4. A conditional space: ``tpe`` (the model-based searcher that handles parameters
   present only under a condition).
5. Integer parameters on a log scale (``lograndint``: numbers of leaves, trees,
   units, a batch size): ``tpe`` (with several objectives, unless rule 6
   gives NSGA-II for a budget of 1000 trials or more). Such parameters mark
   model tuning, and there neither model is ahead in general: on
   ``hgb_cancer`` in ``bench/search_quality.py`` TPE beat the GP (one-sided
   Mann-Whitney p = 0.006, 20 seeds), which did no better than random search;
   on ``rf_digits`` the GP beat TPE (p = 0.004, 10 seeds). TPE is what the
   tools users come from run (Optuna, Ray Tune's ``OptunaSearch``); it was
   level with Optuna alone on both tasks and could not be told from Tune +
   Optuna on either (p = 0.09 and 0.57), at a half to a fifth of the GP's
   wall time, while the GP fell behind both on ``hgb_cancer``. So ``auto``
   takes TPE, and ``searcher="gp"`` is worth a try where the error falls
   smoothly with model size (``rf_digits``). Plain integers do not trigger
   the rule: on a smooth objective they cost the GP nothing
   (``hartmann6_int``: 2e-4 regret against TPE's 0.38); nor do log-scaled
   floats, which smooth simulator fits have too.
6. Several objectives: ``nsga2`` from 1000 trials; ``gp`` (Optuna's GP with
   expected hypervolume improvement) up to 100 trials on a numeric space of at
   most 8 dimensions; ``tpe`` otherwise.
7. One objective, numeric parameters (no choices), at most 20 dimensions and at
   most 300 trials: ``gp`` (Gaussian-process Bayesian optimization, the best
   regret per evaluation in ``bench/search_quality.py``; a model fit per ask
   costs well under a second at this size). Constraints included: proposals
   outside them are told to Optuna as infeasible, and the GP's constrained
   acquisition learns the feasible region (``branin_disk`` in the benchmark).
8. Otherwise ``tpe`` (cheap per ask at any budget; handles choices natively).

What the rule cannot see is whether the objective is smooth: a space says
nothing about it, and nothing has been evaluated when the choice is made.
Rule 5 takes the one sign of model tuning a space carries. Two other ways were
measured and dropped: counting exactly repeated values among the first trials
(3-fold CV errors differ in the fifth decimal with how the errors split over
the folds), and the GP and TPE taking turns on one study (as good as the GP
on ``rf_digits``, but on ``hgb_cancer`` between the two and behind Tune +
Optuna, p = 0.05).

``gp`` needs torch; without it the rule takes ``tpe`` instead and says so.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from typing import Any

from raysweep.errors import RaysweepError, SpecError
from raysweep.sweep.searchers._base import SearchContext, Searcher
from raysweep.sweep.searchers._encoding import Encoding, Kind
from raysweep.sweep.searchers.random import check_seed
from raysweep.trial import Trial

__all__ = ["AutoSearcher", "choose"]

#: Budgets below this never get a model-based searcher (its start-up phase is ~10).
MIN_MODEL_TRIALS = 16
#: Rounds of ``max_concurrent`` trials a model needs to be worth it.
MIN_ROUNDS = 4
GP_MAX_DIMS, GP_MAX_TRIALS = 20, 300
GP_MO_MAX_DIMS, GP_MO_MAX_TRIALS = 8, 100
NSGA_MIN_TRIALS = 1000


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def choose(ctx: SearchContext, max_concurrent: int | None = None) -> tuple[str, str]:
    """``(searcher name, reason)`` by the rule in this module's docstring."""
    encoding = Encoding(ctx.space)
    dims = len(encoding.params)
    budget = ctx.num_trials
    numeric = all(p.kind is not Kind.CATEGORY for p in encoding.params)
    if dims == 0:
        return "random", "no free parameter to search"
    if not _installed("optuna"):
        return "sobol", (
            'Optuna is not installed (pip install "raysweep[optuna]" for model-based search)'
        )
    if budget is not None and budget < MIN_MODEL_TRIALS:
        return "sobol", f"{budget} trials are too few for a model (fewer than {MIN_MODEL_TRIALS})"
    if budget is not None and max_concurrent and budget < MIN_ROUNDS * max_concurrent:
        return "sobol", (
            f"{budget} trials are fewer than {MIN_ROUNDS} rounds of {max_concurrent} in "
            f"flight: a model would learn little"
        )
    if ctx.space.conditional:
        return "tpe", "conditional space: TPE handles parameters present only under a condition"
    gp = _installed("torch")
    no_torch = ' (gp would fit, but torch is not installed: pip install "raysweep[gp]")'
    size = f"{dims} {'numeric' if numeric else 'mixed'} dimensions, {budget or 'open'} trials"
    sizes = [p.name for p in encoding.params if p.kind is Kind.INT and p.log]
    tuning = (
        f"log-scaled integers ({', '.join(sizes)}) mark model tuning; TPE is level with "
        f"Optuna there, the GP not always"
    )
    if len(ctx.objectives) > 1:
        if budget is not None and budget >= NSGA_MIN_TRIALS:
            return "nsga2", f"{len(ctx.objectives)} objectives and {budget} trials: NSGA-II"
        if sizes:
            return "tpe", f"{len(ctx.objectives)} objectives, {size}: multi-objective TPE; {tuning}"
        fits = numeric and dims <= GP_MO_MAX_DIMS and budget is not None
        if fits and budget is not None and budget <= GP_MO_MAX_TRIALS:
            if gp:
                return "gp", f"{len(ctx.objectives)} objectives, {size}: GP with EHVI"
            return "tpe", f"{len(ctx.objectives)} objectives, {size}: multi-objective TPE{no_torch}"
        return "tpe", f"{len(ctx.objectives)} objectives, {size}: multi-objective TPE"
    if sizes:
        return "tpe", f"{size}: TPE; {tuning}"
    fits = numeric and dims <= GP_MAX_DIMS and (budget is None or budget <= GP_MAX_TRIALS)
    if fits:
        if gp:
            return "gp", f"{size}: Gaussian-process Bayesian optimization"
        return "tpe", f"{size}: TPE{no_torch}"
    why = "choices" if not numeric else "too many dimensions or trials for a GP"
    return "tpe", f"{size} ({why}): TPE"


class AutoSearcher(Searcher):
    """Chooses a searcher by :func:`choose` and delegates every hook to it.

    Args:
        seed: overrides the experiment seed (``ctx.seed``) for the chosen searcher.
    """

    name = "auto"
    multi_objective = True
    conditional = True

    def __init__(self, seed: int | None = None) -> None:
        self.seed = check_seed(seed, "AutoSearcher")
        self.choice: str | None = None
        self.reason: str | None = None
        self._inner: Searcher | None = None

    def setup(self, ctx: SearchContext) -> None:
        super().setup(ctx)
        choice, reason = choose(ctx, ctx.max_concurrent)
        self._use(choice, reason)

    def _use(self, choice: str, reason: str) -> None:
        from raysweep.sweep.searchers import make_searcher

        inner = make_searcher(choice, {"seed": self.seed} if self.seed is not None else {})
        inner.setup(self.ctx)
        self.choice, self.reason, self._inner = choice, reason, inner

    @property
    def inner(self) -> Searcher:
        """The searcher ``auto`` chose."""
        if self._inner is None:
            raise RaysweepError("AutoSearcher.setup(ctx) must be called before it is used")
        return self._inner

    def summary(self) -> str:
        """``"auto chose gp: 6 numeric dimensions, 60 trials: ..."``."""
        return f"auto chose {self.choice}: {self.reason}"

    def suggest(self, trial_id: int) -> dict[str, Any] | None:
        return self.inner.suggest(trial_id)

    def on_trial_start(self, trial: Trial) -> None:
        self.inner.on_trial_start(trial)

    def on_trial_complete(self, trial: Trial) -> None:
        self.inner.on_trial_complete(trial)

    def on_trial_error(self, trial: Trial) -> None:
        self.inner.on_trial_error(trial)

    def on_trial_result(self, trial: Trial, report: Mapping[str, Any]) -> None:
        self.inner.on_trial_result(trial, report)

    def on_trial_pruned(self, trial: Trial) -> None:
        self.inner.on_trial_pruned(trial)

    def on_rejected(self, config: Mapping[str, Any]) -> None:
        self.inner.on_rejected(config)

    def restore(self, trials: Sequence[Trial]) -> None:
        self.inner.restore(trials)

    def state_dict(self) -> dict[str, Any]:
        return {"choice": self.choice, "reason": self.reason, "state": self.inner.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue with the stored choice, whatever the rule says today."""
        choice, reason = state.get("choice"), state.get("reason")
        if not isinstance(choice, str) or not isinstance(reason, str):
            raise SpecError(f"AutoSearcher cannot restore from state {dict(state)!r}")
        if choice != self.choice:
            self._use(choice, reason)
        self.reason = reason
        inner_state = state.get("state")
        self.inner.load_state_dict(inner_state if isinstance(inner_state, Mapping) else {})
