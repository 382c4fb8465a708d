"""Search quality: raysweep's searchers against Optuna, Ray Tune and Ax on the same budget.

Run: python bench/search_quality.py [--evals 60] [--seeds 5] [--problems branin,...]
     [--searchers auto,tpe,optuna-alone,...] [--quick] [--json results.json]

Every contestant gets ``--evals`` evaluations with 4 in flight, on one local Ray
started here with 4 CPUs (raysweep joins it; Tune uses it). raysweep searchers
run through ``raysweep.run``; the peers are what a user would write with the
other tools: Optuna alone (TPE, ``study.optimize(n_jobs=4)``), Ray Tune with
random search and with ``OptunaSearch``, and Ax alone (the Client loop with 4
trials pending). Figures are medians over seeds: simple regret (best feasible
value minus the optimum), best cross-validated error for the tuning task, and
hypervolume for ZDT1; plus the median wall time of one run. The rule these
numbers back is in docs/search_quality.md.
"""

from __future__ import annotations

import os

# One thread per evaluation everywhere (Ray workers inherit this, Optuna's threads
# share the driver): all contestants then get the same compute per evaluation.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Tune's newer console output prints a box and paths even with verbose=0; this one is quiet.
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")

import argparse
import json
import logging
import math
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ray

import raysweep as rs
from raysweep.errors import SpecError
from raysweep.sweep.searchers import SEARCHERS, make_searcher, searcher_class

CONCURRENT = 4
Config = dict[str, Any]
Record = tuple[Config, dict[str, float]]  # one evaluation: config and metrics


# -- problems -------------------------------------------------------------------------
@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # "float" or "int" (bounds inclusive)
    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class Problem:
    """One benchmark function: its space, metrics and how a run of it is scored."""

    name: str
    params: tuple[Param, ...]
    evaluate: Callable[[Config], dict[str, float]]
    metrics: tuple[str, ...] = ("loss",)
    optimum: float | None = None  # known minimum (regret); None: report the best value
    constraint: str | None = None  # as raysweep takes it; feasible when violation <= 0
    violation: Callable[[Config], float] | None = None
    penalty: float = 0.0  # what peers without constraint support report when infeasible
    figure: str = "regret"

    def feasible(self, config: Config) -> bool:
        return self.violation is None or self.violation(config) <= 0


def branin(config: Config) -> dict[str, float]:
    x1, x2 = config["x1"], config["x2"]
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return {"loss": (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10}


_H_ALPHA = (1.0, 1.2, 3.0, 3.2)
_H_A = (
    (10, 3, 17, 3.5, 1.7, 8),
    (0.05, 10, 17, 0.1, 8, 14),
    (3, 3.5, 1.7, 10, 17, 8),
    (17, 8, 0.05, 10, 0.1, 14),
)
_H_P = (
    (1312, 1696, 5569, 124, 8283, 5886),
    (2329, 4135, 8307, 3736, 1004, 9991),
    (2348, 1451, 3522, 2883, 3047, 6650),
    (4047, 8828, 8732, 5743, 1091, 381),
)


def hartmann6(config: Config) -> dict[str, float]:
    x = [config[f"x{j + 1}"] for j in range(6)]
    total = 0.0
    for alpha, a_row, p_row in zip(_H_ALPHA, _H_A, _H_P, strict=True):
        inner = sum(a * (xj - p * 1e-4) ** 2 for a, xj, p in zip(a_row, x, p_row, strict=True))
        total += alpha * math.exp(-inner)
    return {"loss": -total}


#: Hartmann6 with its first three coordinates on the grid 0, 0.1, ..., 1 (integers
#: k1..k3 in [0, 10], divided by 10). Its minimum, -3.29001 at k = (2, 2, 5), was
#: found by L-BFGS-B over the other three from three starts at each of the 1331 grid
#: points. A smooth objective on an integer-heavy space: it tells whether integer
#: parameters, not a stepped objective, are what a searcher handles badly.
HARTMANN6_INT_MIN = -3.29001


def hartmann6_int(config: Config) -> dict[str, float]:
    grid = {f"x{j}": config[f"k{j}"] / 10 for j in (1, 2, 3)}
    return hartmann6(grid | {f"x{j}": config[f"x{j}"] for j in (4, 5, 6)})


def disk_violation(config: Config) -> float:
    """Gelbart et al. (2014): Branin subject to (x1-2.5)^2 + (x2-7.5)^2 <= 50."""
    return (config["x1"] - 2.5) ** 2 + (config["x2"] - 7.5) ** 2 - 50


ZDT1_DIMS = 4
ZDT1_REF = (1.1, 11.0)
ZDT1_MAX_HV = ZDT1_REF[0] * ZDT1_REF[1] - 1 / 3  # the true front f2 = 1 - sqrt(f1)


def zdt1(config: Config) -> dict[str, float]:
    x = [config[f"x{j + 1}"] for j in range(ZDT1_DIMS)]
    g = 1 + 9 * sum(x[1:]) / (ZDT1_DIMS - 1)
    return {"f1": x[0], "f2": g * (1 - math.sqrt(x[0] / g))}


def hgb_cancer(config: Config) -> dict[str, float]:
    """3-fold CV error of HistGradientBoosting on breast_cancer (about 0.2-1 s)."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    x, y = load_breast_cancer(return_X_y=True)
    model = HistGradientBoostingClassifier(
        learning_rate=config["learning_rate"],
        max_iter=int(config["max_iter"]),
        max_leaf_nodes=int(config["max_leaf_nodes"]),
        min_samples_leaf=int(config["min_samples_leaf"]),
        l2_regularization=config["l2_regularization"],
        early_stopping=False,
        random_state=0,
    )
    folds = StratifiedKFold(3, shuffle=True, random_state=0)
    return {"loss": 1.0 - float(cross_val_score(model, x, y, cv=folds).mean())}


def rf_digits(config: Config) -> dict[str, float]:
    """3-fold CV error of a random forest on digits (about 0.1-2 s)."""
    from sklearn.datasets import load_digits
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    x, y = load_digits(return_X_y=True)
    model = RandomForestClassifier(
        n_estimators=int(config["n_estimators"]),
        max_depth=int(config["max_depth"]),
        min_samples_leaf=int(config["min_samples_leaf"]),
        max_features=config["max_features"],
        random_state=0,
        n_jobs=1,
    )
    folds = StratifiedKFold(3, shuffle=True, random_state=0)
    return {"loss": 1.0 - float(cross_val_score(model, x, y, cv=folds).mean())}


_BRANIN_SPACE = (Param("x1", "float", -5, 10), Param("x2", "float", 0, 15))
PROBLEMS: dict[str, Problem] = {
    p.name: p
    for p in (
        Problem("branin", _BRANIN_SPACE, branin, optimum=0.397887),
        Problem(
            "hartmann6",
            tuple(Param(f"x{j + 1}", "float", 0, 1) for j in range(6)),
            hartmann6,
            optimum=-3.32237,
        ),
        Problem(
            "hartmann6_int",
            (
                *(Param(f"k{j}", "int", 0, 10) for j in (1, 2, 3)),
                *(Param(f"x{j}", "float", 0, 1) for j in (4, 5, 6)),
            ),
            hartmann6_int,
            optimum=HARTMANN6_INT_MIN,
        ),
        Problem(
            "branin_disk",
            _BRANIN_SPACE,
            branin,
            optimum=0.397887,  # at (pi, 2.275), inside the disk; the other two minima are not
            constraint="(x1 - 2.5)**2 + (x2 - 7.5)**2 <= 50",
            violation=disk_violation,
            penalty=310.0,  # above Branin's maximum on the box (308.13)
        ),
        Problem(
            "zdt1",
            tuple(Param(f"x{j + 1}", "float", 0, 1) for j in range(ZDT1_DIMS)),
            zdt1,
            metrics=("f1", "f2"),
            figure="hypervolume",
        ),
        Problem(
            "hgb_cancer",
            (
                Param("learning_rate", "float", 0.01, 1.0, log=True),
                Param("max_iter", "int", 10, 100),
                Param("max_leaf_nodes", "int", 2, 64, log=True),
                Param("min_samples_leaf", "int", 1, 100, log=True),
                Param("l2_regularization", "float", 1e-4, 10.0, log=True),
            ),
            hgb_cancer,
            figure="error",
        ),
        Problem(
            "rf_digits",
            (
                Param("n_estimators", "int", 4, 64, log=True),
                Param("max_depth", "int", 2, 32, log=True),
                Param("min_samples_leaf", "int", 1, 32, log=True),
                Param("max_features", "float", 0.05, 1.0),
            ),
            rf_digits,
            figure="error",
        ),
    )
}


def hypervolume(points: Sequence[tuple[float, float]], ref: tuple[float, float]) -> float:
    """Area dominated by ``points`` (both minimized) and bounded by ``ref``."""
    inside = sorted(p for p in points if p[0] < ref[0] and p[1] < ref[1])
    area, low_f2 = 0.0, ref[1]
    for f1, f2 in inside:
        if f2 < low_f2:
            area += (ref[0] - f1) * (low_f2 - f2)
            low_f2 = f2
    return area


def score(problem: Problem, records: Sequence[Record]) -> tuple[float, list[float]]:
    """The run's figure and its value after each evaluation (NaN before a feasible one)."""
    curve: list[float] = []
    points: list[tuple[float, float]] = []
    best = math.inf
    for config, metrics in records:
        if problem.figure == "hypervolume":
            points.append((metrics["f1"], metrics["f2"]))
            curve.append(hypervolume(points, ZDT1_REF))
            continue
        if problem.feasible(config):
            best = min(best, metrics["loss"])
        value = best - (problem.optimum or 0.0)
        curve.append(value if math.isfinite(value) else math.nan)
    return (curve[-1] if curve else math.nan), curve


# -- contestants ----------------------------------------------------------------------
def run_raysweep(name: str, problem: Problem, evals: int, seed: int, work: str) -> list[Record]:
    domains = {"float": (rs.uniform, rs.loguniform), "int": (rs.randint, rs.lograndint)}
    space = {p.name: domains[p.kind][p.log](p.low, p.high) for p in problem.params}
    job = ray.get_runtime_context().get_job_id()
    result = rs.run(
        problem.evaluate,
        space,
        metric=problem.metrics[0] if len(problem.metrics) == 1 else list(problem.metrics),
        mode="min",
        constraints=[problem.constraint] if problem.constraint else [],
        searcher=name,
        num_trials=evals,
        max_concurrent=CONCURRENT,
        seed=seed,
        storage=work,
        name=f"{problem.name}-{name}-{seed}",
        verbose=0,
    )
    if not ray.is_initialized() or ray.get_runtime_context().get_job_id() != job:
        raise RuntimeError("raysweep did not reuse the Ray this script started")
    done = [t for t in result.trials if t.state is rs.TrialState.COMPLETED]
    return [(dict(t.config), dict(t.metrics)) for t in done]


def peer_metrics(problem: Problem, config: Config) -> dict[str, float]:
    """For peers without constraints: an infeasible point reports the penalty."""
    if problem.feasible(config):
        return problem.evaluate(config)
    return dict.fromkeys(problem.metrics, problem.penalty)


def run_optuna(problem: Problem, evals: int, seed: int, work: str) -> list[Record]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    constraints = None
    if problem.violation is not None:
        constraints = lambda t: [t.user_attrs["violation"]]  # noqa: E731
    sampler = optuna.samplers.TPESampler(seed=seed, constraints_func=constraints)
    study = optuna.create_study(directions=["minimize"] * len(problem.metrics), sampler=sampler)

    def objective(trial: Any) -> float | tuple[float, ...]:
        config: Config = {
            p.name: trial.suggest_float(p.name, p.low, p.high, log=p.log)
            if p.kind == "float"
            else trial.suggest_int(p.name, int(p.low), int(p.high), log=p.log)
            for p in problem.params
        }
        metrics = problem.evaluate(config)  # Optuna's constraints_func sees the violation
        if problem.violation is not None:
            trial.set_user_attr("violation", problem.violation(config))
        values = tuple(metrics[m] for m in problem.metrics)
        return values if len(values) > 1 else values[0]

    study.optimize(objective, n_trials=evals, n_jobs=CONCURRENT)
    done = [t for t in study.trials if t.state is optuna.trial.TrialState.COMPLETE]
    return [(dict(t.params), dict(zip(problem.metrics, t.values, strict=True))) for t in done]


def run_tune(searcher: str, problem: Problem, evals: int, seed: int, work: str) -> list[Record]:
    from ray import tune

    space: dict[str, Any] = {}
    for p in problem.params:  # Tune's integer upper bounds are exclusive
        if p.kind == "float":
            space[p.name] = (tune.loguniform if p.log else tune.uniform)(p.low, p.high)
        else:
            space[p.name] = (tune.lograndint if p.log else tune.randint)(p.low, p.high + 1)
    if searcher == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        many = len(problem.metrics) > 1
        metric = list(problem.metrics) if many else problem.metrics[0]
        alg: Any = OptunaSearch(
            metric=metric, mode=["min"] * len(problem.metrics) if many else "min", seed=seed
        )
    else:
        from ray.tune.search.basic_variant import BasicVariantGenerator

        alg = BasicVariantGenerator(random_state=seed)

    def trainable(config: Config) -> None:
        tune.report(peer_metrics(problem, config))

    tuner = tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(
            search_alg=alg, num_samples=evals, max_concurrent_trials=CONCURRENT
        ),
        run_config=tune.RunConfig(
            storage_path=work, name=f"{problem.name}-tune-{searcher}-{seed}", verbose=0
        ),
    )
    grid = tuner.fit()
    records = []
    for result in grid:
        if result.error is None and all(m in result.metrics for m in problem.metrics):
            config = {p.name: result.config[p.name] for p in problem.params}
            records.append((config, {m: float(result.metrics[m]) for m in problem.metrics}))
    return records


def run_ax(problem: Problem, evals: int, seed: int, work: str) -> list[Record]:
    with warnings.catch_warnings():  # Ax warns on every multi-objective step
        warnings.simplefilter("ignore")
        return _ax_loop(problem, evals, seed)


def _ax_loop(problem: Problem, evals: int, seed: int) -> list[Record]:
    """Ax's Client as its docs loop it, with 4 trials pending at a time."""
    from ax import Client, RangeParameterConfig

    for logger_name in list(logging.root.manager.loggerDict):
        if logger_name == "ax" or logger_name.startswith("ax."):
            logging.getLogger(logger_name).setLevel(logging.WARNING)
    client = Client(random_seed=seed)
    client.configure_experiment(
        parameters=[
            RangeParameterConfig(
                name=p.name,
                bounds=(p.low, p.high) if p.kind == "float" else (int(p.low), int(p.high)),
                parameter_type="float" if p.kind == "float" else "int",
                scaling="log" if p.log else "linear",
            )
            for p in problem.params
        ]
    )
    client.configure_optimization(
        objective=", ".join(f"-{m}" for m in problem.metrics),  # a minus: minimize
        outcome_constraints=["violation <= 0"] if problem.violation else None,
    )
    pending: dict[int, Config] = {}
    records: list[Record] = []
    created = 0
    while created < evals or pending:
        if created < evals and len(pending) < CONCURRENT:
            new = client.get_next_trials(max_trials=min(CONCURRENT - len(pending), evals - created))
            if new:
                pending.update({i: dict(c) for i, c in new.items()})
                created += len(new)
                continue
            if not pending:
                break
        index = next(iter(pending))  # the oldest in flight finishes first
        config = pending.pop(index)
        metrics = problem.evaluate(config)
        raw = dict(metrics)
        if problem.violation is not None:
            raw["violation"] = problem.violation(config)
        client.complete_trial(index, raw_data=raw)
        records.append((config, metrics))
    return records


PEERS: dict[str, Callable[[Problem, int, int, str], list[Record]]] = {
    "optuna-alone": run_optuna,
    "tune-random": lambda *a: run_tune("random", *a),
    "tune-optuna": lambda *a: run_tune("optuna", *a),
    "ax-alone": run_ax,
}
PEER_NEEDS = {
    "optuna-alone": "optuna",
    "tune-random": "ray.tune",
    "tune-optuna": "ray.tune.search.optuna",
    "ax-alone": "ax",
}


# -- running and reporting ------------------------------------------------------------
def unavailable(contestant: str, problem: Problem) -> str | None:
    """Why ``contestant`` cannot run ``problem`` here ("not installed", "n/a"), else None."""
    if contestant in PEERS:
        try:
            __import__(PEER_NEEDS[contestant])
        except ImportError:
            return "not installed"
        return None
    name = contestant.removeprefix("raysweep:")
    try:
        make_searcher(name, {})
        multi = searcher_class(name).multi_objective
    except ImportError:  # MissingExtraError included, and a module not written yet
        return "not installed"
    except Exception as exc:
        return f"error (constructing it: {type(exc).__name__}: {exc})"
    if len(problem.metrics) > 1 and not multi:
        return "n/a"
    return None


def _hold_worker(problem: Problem, config: Config) -> None:
    """Warm-up task: import what a trial imports, then keep the worker a moment so
    that the four warm-up tasks land in four distinct worker processes."""
    import raysweep.sweep.execution._worker  # noqa: F401

    problem.evaluate(config)
    time.sleep(0.5)


def warm_up(problem: Problem) -> None:
    """Start four Ray workers and import the problem's libraries in them and here, so
    no contestant pays for process start-up that the one before it left behind."""
    middle = {
        p.name: (p.low + p.high) / 2 if p.kind == "float" else int((p.low + p.high) // 2)
        for p in problem.params
    }
    problem.evaluate(middle)
    task = ray.remote(num_cpus=1)(_hold_worker)
    ray.get([task.remote(problem, middle) for _ in range(CONCURRENT)])


def run_once(contestant: str, problem: Problem, evals: int, seed: int, work: str) -> list[Record]:
    if contestant in PEERS:
        return PEERS[contestant](problem, evals, seed, work)
    return run_raysweep(contestant.removeprefix("raysweep:"), problem, evals, seed, work)


def measure(
    contestant: str, problem: Problem, evals: int, seed: int, work: str, why: str | None
) -> dict[str, Any]:
    """One run of ``contestant`` on ``problem``: its status, figure, wall time and curve."""
    row: dict[str, Any] = {"problem": problem.name, "contestant": contestant, "seed": seed}
    row |= {"status": why or "ok", "figure": math.nan, "wall_s": math.nan}
    if why is not None:
        return row
    start = time.perf_counter()
    try:
        records = run_once(contestant, problem, evals, seed, work)
    except SpecError as exc:  # raysweep refused the run (e.g. grid on floats)
        row["status"] = f"n/a ({str(exc).splitlines()[0]})"
        return row
    except Exception as exc:
        row["status"] = f"error ({type(exc).__name__}: {str(exc)[:300]})"
        return row
    row["wall_s"] = time.perf_counter() - start
    row["figure"], row["curve"] = score(problem, records)
    row["evaluations"] = len(records)
    row["infeasible"] = sum(not problem.feasible(c) for c, _ in records)
    return row


def fmt(problem: Problem, value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.3g}" if problem.figure == "regret" else f"{value:.4f}"


def shown(problem: Problem, value: float) -> float:
    """``value`` rounded as the tables show it (NaN stays NaN)."""
    return value if math.isnan(value) else float(fmt(problem, value))


def short(x: float) -> str:
    """Seconds and ratios with 3 significant digits, never in exponent form."""
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"


def table(problem: Problem, contestants: Sequence[str], runs: Sequence[Mapping[str, Any]]) -> str:
    """The problem's markdown table: medians over seeds, wall time against Ax alone."""
    what = {"regret": "simple regret", "error": "best CV error", "hypervolume": "hypervolume"}
    better = "lower is better"
    if problem.figure == "hypervolume":
        better = f"higher is better, the true front's is {ZDT1_MAX_HV:.4f}"
    lines = [
        f"{problem.name}: median {what[problem.figure]} over seeds ({better})",
        f"| contestant | median {what[problem.figure]} | q25 – q75 | median wall s | "
        "time / ax-alone | runs ok |",
        "|---|---|---|---|---|---|",
    ]
    ax_time = median_of(runs, problem.name, "ax-alone", "wall_s")
    notes: list[str] = []
    for contestant in contestants:
        mine = [r for r in runs if r["problem"] == problem.name and r["contestant"] == contestant]
        ok = [r for r in mine if r["status"] == "ok"]
        for r in mine:
            if r["status"] != "ok":
                notes.append(f"- {contestant}: {r['status']}")
        if not ok:
            status = mine[0]["status"].split(" (")[0] if mine else "not run"
            lines.append(f"| {contestant} | {status} | | | | 0/{len(mine)} |")
            continue
        figures = [r["figure"] for r in ok]
        spread = "-"
        if len(figures) > 1:
            q = statistics.quantiles(figures, n=4, method="inclusive")
            spread = f"{fmt(problem, q[0])} – {fmt(problem, q[2])}"
        wall = statistics.median(r["wall_s"] for r in ok)
        ratio = f"{short(wall / ax_time)}x" if ax_time else "-"
        lines.append(
            f"| {contestant} | {fmt(problem, statistics.median(figures))} | {spread} | "
            f"{short(wall)} | {ratio} | {len(ok)}/{len(mine)} |"
        )
    return "\n".join(lines + (["", *dict.fromkeys(notes)] if notes else []))


def finished(runs: Sequence[Mapping[str, Any]], problem: str, who: str) -> list[Mapping[str, Any]]:
    """``who``'s runs of ``problem`` that finished with a figure."""
    return [
        r
        for r in runs
        if r["problem"] == problem and r["contestant"] == who and r["status"] == "ok"
    ]


def median_of(runs: Sequence[Mapping[str, Any]], problem: str, who: str, key: str) -> float | None:
    values = [r[key] for r in finished(runs, problem, who)]
    return statistics.median(values) if values else None


def summary(problem: Problem, runs: Sequence[Mapping[str, Any]]) -> str:
    """The line the rule rests on: raysweep's auto against Ax alone."""
    a, b = "raysweep:auto", "ax-alone"
    fa, fb = median_of(runs, problem.name, a, "figure"), median_of(runs, problem.name, b, "figure")
    ta, tb = median_of(runs, problem.name, a, "wall_s"), median_of(runs, problem.name, b, "wall_s")
    if fa is None or fb is None or ta is None or tb is None:
        missing = " and ".join(n for n, f in ((a, fa), (b, fb)) if f is None)
        return f"auto vs Ax ({problem.name}): no figures for {missing}"
    return (
        f"auto vs Ax ({problem.name}): {problem.figure} {fmt(problem, fa)} vs {fmt(problem, fb)}, "
        f"time {ta:.1f} s vs {tb:.1f} s ({ta / tb:.2f}x)"
    )


def versus_best_peer(problem: Problem, runs: Sequence[Mapping[str, Any]]) -> str | None:
    """``auto`` against the peer with the best median figure on ``problem``.

    Medians over a handful of seeds move by a whole step on a quantized figure (one
    validation sample in ``hgb_cancer``), so the line adds the one-sided Mann-Whitney
    test of "auto's figures are worse than the peer's" over all seeds of both.
    A small p says auto is worse; a large one says the seeds cannot tell it so.
    """
    from scipy.stats import mannwhitneyu

    higher = problem.figure == "hypervolume"
    worst = -math.inf if higher else math.inf  # a run with no feasible point

    def figures(who: str) -> list[float]:
        # As the tables show them (on hgb_cancer the same number of errors gives
        # figures 1e-5 apart, by the folds they fall in), so that equal ones tie.
        return [
            worst if math.isnan(r["figure"]) else shown(problem, r["figure"])
            for r in finished(runs, problem.name, who)
        ]

    mine = figures("raysweep:auto")
    peers = {p: f for p in PEERS if (f := figures(p))}
    if len(mine) < 2 or not peers:
        return None
    best = (max if higher else min)(peers, key=lambda p: statistics.median(peers[p]))
    theirs = peers[best]
    worse = "less" if higher else "greater"  # auto worse: lower hypervolume, higher regret
    p_worse = float(mannwhitneyu(mine, theirs, alternative=worse).pvalue)
    q = statistics.quantiles(theirs, n=4, method="inclusive") if len(theirs) > 1 else theirs * 3
    worse_quartile = shown(problem, q[0] if higher else q[2])
    median = shown(problem, statistics.median(mine))
    inside = median >= worse_quartile if higher else median <= worse_quartile
    return (
        f"auto vs best peer ({problem.name}): {best}, median {problem.figure} "
        f"{fmt(problem, median)} vs {fmt(problem, statistics.median(theirs))} "
        f"(its q25 – q75 {fmt(problem, q[0])} – {fmt(problem, q[2])}: "
        f"{'at or better than its worse quartile' if inside else 'outside it'}); "
        f"{len(mine)} vs {len(theirs)} seeds, one-sided Mann-Whitney p(auto worse) = {p_worse:.2f}"
    )


def nan_to_null(value: Any) -> Any:
    """Strict JSON: a NaN (no figure, or no feasible point yet) becomes null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: nan_to_null(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [nan_to_null(v) for v in value]
    return value


def earlier_runs(path: str | None, evals: int) -> list[dict[str, Any]]:
    """The finished runs of an earlier invocation with the same number of evaluations."""
    if not path or not os.path.exists(path):
        return []
    with open(path) as f:
        earlier = json.load(f)
    if earlier["settings"]["evals"] != evals:
        raise SystemExit(f"--json: {path} holds runs of {earlier['settings']['evals']} evals")
    runs: list[dict[str, Any]] = [r for r in earlier["runs"] if r["status"] == "ok"]
    print(f"kept {len(runs)} finished runs from {path}", flush=True)
    return runs


def parse_names(text: str | None, valid: Sequence[str], what: str) -> list[str]:
    if text is None:
        return list(valid)
    names = [n.strip() for n in text.split(",") if n.strip()]
    full = [n if n in valid or n in PEERS or n not in SEARCHERS else f"raysweep:{n}" for n in names]
    unknown = [n for n, f in zip(names, full, strict=True) if f not in valid]
    if unknown:
        raise SystemExit(f"--{what}: unknown {unknown}; valid: {', '.join(valid)}")
    return full


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evals", type=int, default=None, help="evaluations per run (60)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (5)")
    parser.add_argument("--problems", help=f"comma-separated, of: {', '.join(PROBLEMS)}")
    parser.add_argument("--searchers", help="raysweep names and/or peers, comma-separated")
    parser.add_argument("--quick", action="store_true", help="smoke run: 12 evals, 1 seed")
    parser.add_argument(
        "--json",
        help="write every run's raw results here; runs already in it with the same --evals "
        "are kept, not repeated (a long run that was stopped goes on)",
    )
    args = parser.parse_args()
    evals = args.evals or (12 if args.quick else 60)
    seeds = args.seeds or (1 if args.quick else 5)
    everyone = [f"raysweep:{n}" for n in SEARCHERS] + list(PEERS)
    contestants = parse_names(args.searchers, everyone, "searchers")
    problems = [PROBLEMS[n] for n in parse_names(args.problems, list(PROBLEMS), "problems")]
    ray.init(
        num_cpus=CONCURRENT, include_dashboard=False, logging_level="ERROR", log_to_driver=False
    )
    work = tempfile.mkdtemp(prefix="raysweep-quality-")
    settings = {"evals": evals, "seeds": seeds, "max_concurrent": CONCURRENT, "cpus": CONCURRENT}
    print(f"evals={evals} seeds={seeds} max_concurrent={CONCURRENT} storage={work}", flush=True)
    runs = earlier_runs(args.json, evals)
    kept = {(r["problem"], r["contestant"], r["seed"]) for r in runs}
    for problem in problems:
        for contestant in contestants:
            why = unavailable(contestant, problem)
            todo = [s for s in range(seeds) if (problem.name, contestant, s) not in kept]
            if why is None and todo:
                warm_up(problem)
            for seed in todo:
                row = measure(contestant, problem, evals, seed, work, why)
                runs.append(row)
                done = f" {problem.figure}={fmt(problem, row['figure'])} wall={row['wall_s']:.1f}s"
                print(
                    f"{problem.name} {contestant} seed={seed} {row['status']}"
                    + (done if row["status"] == "ok" else ""),
                    file=sys.stderr if row["status"].startswith("error") else sys.stdout,
                    flush=True,
                )
                if args.json:
                    with open(args.json, "w") as f:
                        json.dump(nan_to_null({"settings": settings, "runs": runs}), f, indent=1)
                if why is not None or row["status"].startswith("n/a"):
                    break  # the same answer for every seed
        print("\n" + table(problem, contestants, runs) + "\n", flush=True)
    for problem in problems:
        print(summary(problem, runs))
        if line := versus_best_peer(problem, runs):
            print(line)
    ray.shutdown()


if __name__ == "__main__":
    main()
