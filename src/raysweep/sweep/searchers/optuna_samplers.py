"""Optuna's samplers as raysweep searchers, through Optuna's ask/tell interface.

Each class here only chooses a sampler; the study that mirrors the experiment
(pending trials, failed and rejected ones, pruning, resume without double
counting, per-ask seeding) is :class:`~raysweep.sweep.searchers._optuna.OptunaSearcher`'s.
:class:`TPESearcher` (``tpe``), :class:`GPSearcher` (``gp``, needs torch),
:class:`CmaEsSearcher` (``cmaes``), :class:`QMCSearcher` (``qmc``),
:class:`NSGA2Searcher` and :class:`NSGA3Searcher` (``nsga2``, ``nsga3``).
"""

from __future__ import annotations

from typing import Any

from raysweep._extras import require
from raysweep.errors import SpecError
from raysweep.sweep.searchers._optuna import OptunaSearcher, count_option
from raysweep.sweep.searchers._torch import check_threads

__all__ = [
    "CmaEsSearcher",
    "GPSearcher",
    "NSGA2Searcher",
    "NSGA3Searcher",
    "OptunaSearcher",
    "QMCSearcher",
    "TPESearcher",
]


class TPESearcher(OptunaSearcher):
    """Optuna's TPE: multivariate, with the constant liar for running trials.

    Handles conditional spaces (grouped by which parameters are active) and
    several objectives (MOTPE).

    Args:
        seed: see :class:`OptunaSearcher`.
        n_startup_trials: random trials before the model is used.
    """

    name = "tpe"
    models_feasibility = True
    multi_objective = True
    conditional = True

    def __init__(self, seed: int | None = None, n_startup_trials: int = 10) -> None:
        super().__init__(seed)
        self.n_startup_trials = count_option(n_startup_trials, "n_startup_trials", self.name)

    def make_sampler(self, seed: int) -> Any:
        return self._optuna.samplers.TPESampler(
            seed=seed,
            n_startup_trials=self.n_startup_trials,
            multivariate=True,
            group=self.ctx.space.conditional,
            constant_liar=True,
            warn_independent_sampling=False,
        )


class GPSearcher(OptunaSearcher):
    """Optuna's Gaussian-process Bayesian optimization (log EI; q-batch for
    running trials; EHVI for several objectives). Needs torch.

    Args:
        seed: see :class:`OptunaSearcher`.
        n_startup_trials: quasi-random trials before the GP is used.
        deterministic_objective: the objective has no noise.
        threads: torch threads while fitting in the driver (see
            :mod:`raysweep.sweep.searchers._torch`); ``None`` keeps torch's own.
    """

    name = "gp"
    models_feasibility = True
    multi_objective = True

    def __init__(
        self,
        seed: int | None = None,
        n_startup_trials: int = 10,
        deterministic_objective: bool = False,
        threads: int | None = 1,
    ) -> None:
        super().__init__(seed)
        self.threads = check_threads(threads, self.name)
        require("torch", "gp", "searcher 'gp'")  # Optuna's GP sampler runs on torch
        self.n_startup_trials = count_option(n_startup_trials, "n_startup_trials", self.name)
        if not isinstance(deterministic_objective, bool):
            raise SpecError(
                f"searcher 'gp' deterministic_objective must be true or false, "
                f"got {deterministic_objective!r}"
            )
        self.deterministic_objective = deterministic_objective

    def make_sampler(self, seed: int) -> Any:
        return self._optuna.samplers.GPSampler(
            seed=seed,
            n_startup_trials=self.n_startup_trials,
            deterministic_objective=self.deterministic_objective,
            # Start-up points from one scrambled Sobol' sequence (seeded once per
            # experiment, or it would not be one sequence).
            independent_sampler=self._optuna.samplers.QMCSampler(
                seed=(self._seed or 0) % 2**32,
                scramble=True,
                independent_sampler=self._optuna.samplers.RandomSampler(seed=seed),
                warn_asynchronous_seeding=False,
                warn_independent_sampling=False,
            ),
            warn_independent_sampling=False,
        )


class CmaEsSearcher(OptunaSearcher):
    """Optuna's CMA-ES (numerical parameters; choices are sampled at random).

    Args:
        seed: see :class:`OptunaSearcher`.
        popsize: population size (default: CMA-ES's own rule from the dimension).
    """

    name = "cmaes"

    def __init__(self, seed: int | None = None, popsize: int | None = None) -> None:
        super().__init__(seed)
        require("cmaes", "optuna", "searcher 'cmaes'")  # Optuna's CMA-ES sampler runs on it
        self.popsize = None if popsize is None else count_option(popsize, "popsize", self.name)

    def make_sampler(self, seed: int) -> Any:
        return self._optuna.samplers.CmaEsSampler(
            seed=seed, popsize=self.popsize, warn_independent_sampling=False
        )


class QMCSearcher(OptunaSearcher):
    """Optuna's quasi-Monte Carlo sampler (scrambled Sobol' or Halton).

    Args:
        seed: see :class:`OptunaSearcher`.
        qmc_type: ``"sobol"`` or ``"halton"``.
    """

    name = "qmc"
    multi_objective = True

    def __init__(self, seed: int | None = None, qmc_type: str = "sobol") -> None:
        super().__init__(seed)
        if qmc_type not in ("sobol", "halton"):
            raise SpecError(
                f"searcher 'qmc' qmc_type must be 'sobol' or 'halton', got {qmc_type!r}"
            )
        self.qmc_type = qmc_type

    def make_sampler(self, seed: int) -> Any:
        # The sequence is scrambled with the experiment seed, the same for every
        # ask (or it would not be one sequence); the per-ask seed drives only the
        # random sampler Optuna uses before the search space is known.
        return self._optuna.samplers.QMCSampler(
            qmc_type=self.qmc_type,
            scramble=True,
            seed=(self._seed or 0) % 2**32,
            independent_sampler=self._optuna.samplers.RandomSampler(seed=seed),
            warn_asynchronous_seeding=False,
            warn_independent_sampling=False,
        )


class NSGA2Searcher(OptunaSearcher):
    """Optuna's NSGA-II genetic algorithm, for several objectives (or one).

    Args:
        seed: see :class:`OptunaSearcher`.
        population_size: individuals per generation.
    """

    name = "nsga2"
    models_feasibility = True
    multi_objective = True

    def __init__(self, seed: int | None = None, population_size: int = 50) -> None:
        super().__init__(seed)
        self.population_size = count_option(
            population_size, "population_size", self.name, minimum=2
        )

    def make_sampler(self, seed: int) -> Any:
        return self._optuna.samplers.NSGAIISampler(seed=seed, population_size=self.population_size)


class NSGA3Searcher(NSGA2Searcher):
    """Optuna's NSGA-III (reference points; for three or more objectives)."""

    name = "nsga3"

    def make_sampler(self, seed: int) -> Any:
        return self._optuna.samplers.NSGAIIISampler(seed=seed, population_size=self.population_size)
