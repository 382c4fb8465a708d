"""Early stopping: ASHA and Hyperband against running every trial to the end, and Ray Tune.

Run: python bench/early_stopping.py [--seeds 3] [--trials 40] [--max-t 27]
     [--variants fifo,asha,hyperband,bohb,tune-asha,tune-asha-fresh] [--quick]
     [--json results.json]

The workload is real training: a one-hidden-layer MLP (scikit-learn's
``MLPClassifier``, SGD with momentum) on the digits data set that ships with
scikit-learn, one ``partial_fit`` epoch at a time (about 10-50 ms an epoch here),
scored on a fixed stratified 30 % validation split after every epoch. The space
(learning rate, L2 penalty, hidden units, batch size) holds configurations
that reach 97-98 % and ones stuck near chance, and most of them are told apart
after a few epochs. Every variant gets ``--trials`` configurations of at most
``--max-t`` epochs with ``max_concurrent`` = cores, on one local Ray started
here once with ``num_cpus`` = cores, so nobody pays for Ray's start-up; each run
is timed by the wall clock around the whole ``run`` / ``Tuner.fit`` call.

Variants: raysweep with scheduler ``fifo`` (every trial to ``max_t``), ``asha``,
``hyperband`` (3 brackets), all with the random searcher; BOHB-style (``tpe``
with ``hyperband``); and Ray Tune's ``ASHAScheduler`` with its random search,
with the same ``max_t``, grace period and reduction factor, written as a user
would (function trainable, ``tune.report`` per epoch, default loggers) plus
``reuse_actors=True``, the faster peer: Tune's default, a new actor per trial,
took 88 s against 13 s here (one seed) and runs only when asked
(``--variants tune-asha-fresh``). Before measuring, each library runs once on a
toy budget so that first-use imports and set-up are not counted. Seeds
0..N-1 seed every searcher; the model's own seed is fixed, so a configuration
scores the same everywhere. Per variant: wall time, best validation accuracy (a
trial's accuracy is its last report's, where it stopped), epochs trained in all,
wall time per epoch trained (the libraries' random searches draw different
configurations, so Tune's runs train a different number of epochs), trials
pruned; medians over seeds, the ratios paired per seed.

Targets: ASHA reaches FIFO's best accuracy within 1 point in <= 0.5x FIFO's
wall time; raysweep ASHA's wall time <= 0.5x Ray Tune ASHA's.
"""

from __future__ import annotations

import os

# One BLAS thread per trial: every variant then gets one core per trial (Ray workers
# and Tune's actors inherit this; raysweep sets it per trial as well).
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Tune's newer console output prints a box and paths even with verbose=0; this one is quiet.
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import ray

import raysweep as rs

Config = dict[str, Any]
GRACE = 1
REDUCTION = 3
BRACKETS = 3


# -- the workload ---------------------------------------------------------------------
def digits_split() -> tuple[Any, Any, Any, Any]:
    """Train and validation arrays: digits scaled to [0, 1], a fixed stratified 70/30 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    return train_test_split(x / 16.0, y, test_size=0.3, random_state=0, stratify=y)


def epochs(config: Mapping[str, Any], max_t: int) -> Iterator[tuple[int, float]]:
    """Train ``config``'s MLP one epoch at a time; yield (epoch, validation accuracy).

    A model whose weights blow up scores 0 for the rest of its epochs (sklearn
    raises on non-finite weights); none did in the space below, but a run must
    not end in an error because of one configuration.
    """
    import numpy as np
    from sklearn.neural_network import MLPClassifier

    x_train, x_val, y_train, y_val = digits_split()
    classes = np.unique(y_train)
    model = MLPClassifier(
        hidden_layer_sizes=(int(config["hidden"]),),
        solver="sgd",
        momentum=0.9,
        learning_rate_init=float(config["lr"]),
        alpha=float(config["alpha"]),
        batch_size=int(config["batch_size"]),
        random_state=0,
    )
    diverged = False
    for epoch in range(1, max_t + 1):
        if not diverged:
            try:
                model.partial_fit(x_train, y_train, classes=classes)
            except ValueError:  # "Solver produced non-finite parameter weights"
                diverged = True
        yield epoch, 0.0 if diverged else float(model.score(x_val, y_val))


LR = (1e-4, 1.0)
ALPHA = (1e-6, 1e-1)
HIDDEN = [32, 64, 128, 256]
BATCH = [16, 32, 64, 128]


def raysweep_space() -> dict[str, Any]:
    return {
        "lr": rs.loguniform(*LR),
        "alpha": rs.loguniform(*ALPHA),
        "hidden": rs.choice(HIDDEN),
        "batch_size": rs.choice(BATCH),
    }


def tune_space() -> dict[str, Any]:
    from ray import tune

    return {
        "lr": tune.loguniform(*LR),
        "alpha": tune.loguniform(*ALPHA),
        "hidden": tune.choice(HIDDEN),
        "batch_size": tune.choice(BATCH),
    }


# -- the variants ---------------------------------------------------------------------
def brackets(max_t: int) -> int:
    """``BRACKETS``, or fewer where ``max_t`` leaves fewer rungs (each bracket needs one)."""
    rungs = 0
    while GRACE * REDUCTION**rungs < max_t:
        rungs += 1
    return max(1, min(BRACKETS, rungs))


class Run:
    """What one variant's run left: per trial its epochs trained, last accuracy, pruned."""

    __slots__ = ("accuracy", "epochs", "pruned")

    def __init__(self) -> None:
        self.epochs: list[int] = []
        self.accuracy: list[float] = []
        self.pruned: list[bool] = []


def run_raysweep(
    scheduler: str, searcher: str, trials: int, max_t: int, seed: int, cores: int, work: str
) -> Run:
    def objective(config: Config) -> dict[str, float]:
        acc = 0.0
        for epoch, acc in epochs(config, max_t):
            rs.report(step=epoch, val_acc=acc)  # raises TrialPruned when the scheduler says
        return {"val_acc": acc}

    choice: str | dict[str, Any] = scheduler
    if scheduler != "fifo":
        choice = {"name": scheduler, "max_t": max_t, "grace_period": GRACE}
        choice["reduction_factor"] = REDUCTION
        if scheduler == "hyperband":
            choice["brackets"] = brackets(max_t)
    job = ray.get_runtime_context().get_job_id()
    result = rs.run(
        objective,
        raysweep_space(),
        num_trials=trials,
        max_concurrent=cores,
        scheduler=choice,
        searcher=searcher,
        metric="val_acc",
        mode="max",
        seed=seed,
        storage=work,
        name=f"{scheduler}-{searcher}-{seed}",
        verbose=0,
    )
    if not ray.is_initialized() or ray.get_runtime_context().get_job_id() != job:
        raise RuntimeError("raysweep did not reuse the Ray this script started")
    run = Run()
    for trial in result.trials:
        if trial.state not in (rs.TrialState.COMPLETED, rs.TrialState.PRUNED):
            raise RuntimeError(f"trial {trial.trial_id} ended {trial.state.name}: {trial.error}")
        reports = [r for r in trial.intermediate if "val_acc" in r]
        run.epochs.append(max((int(r["step"]) for r in reports), default=0))
        run.accuracy.append(float(reports[-1]["val_acc"]) if reports else math.nan)
        run.pruned.append(trial.state is rs.TrialState.PRUNED)
    return run


def raysweep_configs(trials: int, seed: int) -> list[dict[str, Any]]:
    """The configurations raysweep's random searcher tries with ``seed`` (the ones
    every raysweep variant but BOHB-style runs), for Tune to run the same."""
    from raysweep.objectives import Objectives
    from raysweep.sweep.searchers import SearchContext, make_searcher
    from raysweep.sweep.space import SearchSpace
    from raysweep.sweep.space.constraints import ConstraintSet

    space = SearchSpace(raysweep_space())
    searcher = make_searcher("random")
    searcher.setup(
        SearchContext(
            space=space,
            constraints=ConstraintSet([], space),
            objectives=Objectives.single("val_acc", "max"),
            seed=seed,
            num_trials=trials,
        )
    )
    return [dict(searcher.suggest(i) or {}) for i in range(trials)]


def run_tune_asha(
    trials: int,
    max_t: int,
    seed: int,
    cores: int,
    work: str,
    reuse_actors: bool = True,
    same_configs: bool = False,
) -> Run:
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    def trainable(config: Config) -> None:
        for epoch, acc in epochs(config, max_t):
            tune.report({"step": epoch, "val_acc": acc})

    scheduler = ASHAScheduler(
        time_attr="step",
        metric="val_acc",
        mode="max",
        max_t=max_t,
        grace_period=GRACE,
        reduction_factor=REDUCTION,
    )
    tuner = tune.Tuner(
        trainable,
        param_space=tune_space(),
        tune_config=tune.TuneConfig(
            scheduler=scheduler,
            search_alg=BasicVariantGenerator(
                random_state=seed,
                points_to_evaluate=raysweep_configs(trials, seed) if same_configs else None,
            ),
            num_samples=trials,
            max_concurrent_trials=cores,
            reuse_actors=reuse_actors,
        ),
        run_config=tune.RunConfig(
            storage_path=work, name=f"tune-asha-{seed}-{time.time_ns()}", verbose=0
        ),
    )
    grid = tuner.fit()
    run = Run()
    for result in grid:
        if result.error is not None:
            raise RuntimeError(f"a Tune trial failed: {result.error}")
        step = int(result.metrics.get("step", 0))
        run.epochs.append(step)
        run.accuracy.append(float(result.metrics.get("val_acc", math.nan)))
        run.pruned.append(step < max_t)
    return run


VARIANTS: dict[str, Callable[[int, int, int, int, str], Run]] = {
    "fifo": lambda *a: run_raysweep("fifo", "random", *a),
    "asha": lambda *a: run_raysweep("asha", "random", *a),
    "hyperband": lambda *a: run_raysweep("hyperband", "random", *a),
    "bohb": lambda *a: run_raysweep("hyperband", "tpe", *a),
    "tune-asha": run_tune_asha,
    "tune-asha-fresh": lambda *a: run_tune_asha(*a, reuse_actors=False),
    "tune-asha-same": lambda *a: run_tune_asha(*a, same_configs=True),
}
LABELS = {
    "fifo": "raysweep fifo (random)",
    "asha": "raysweep asha (random)",
    "hyperband": "raysweep hyperband (random)",
    "bohb": "raysweep BOHB-style (tpe + hyperband)",
    "tune-asha": "Ray Tune ASHAScheduler (random, reuse_actors)",
    "tune-asha-fresh": "Ray Tune ASHAScheduler (random, an actor per trial)",
    "tune-asha-same": "Ray Tune ASHAScheduler (raysweep's configurations, reuse_actors)",
}
#: What runs without --variants: Tune's default of a new actor per trial is slower
#: still (and long here), so the reference is the faster Tune set-up.
DEFAULT_VARIANTS = ("fifo", "asha", "hyperband", "bohb", "tune-asha", "tune-asha-same")


def unavailable(variant: str) -> str | None:
    """Why ``variant`` cannot run here, else None."""
    if variant.startswith("tune-"):
        try:
            import ray.tune  # noqa: F401
        except ImportError:
            return "not installed (pip install 'ray[tune]')"
    return None


# -- running and reporting ------------------------------------------------------------
def _hold_worker() -> None:
    """Warm-up task: import what a trial imports and load the data, then keep the
    worker a moment so the warm-up tasks land in distinct worker processes."""
    import sklearn.neural_network  # noqa: F401

    import raysweep.sweep.execution._worker  # noqa: F401

    digits_split()
    time.sleep(0.5)


def warm_up(variants: Sequence[str], cores: int, work: str) -> None:
    """Start ``cores`` Ray workers with sklearn imported, and run each library once on
    a toy budget (imports, first-use set-up), so the first variant measured does not
    pay for what the later ones get for free."""
    task = ray.remote(num_cpus=1)(_hold_worker)
    ray.get([task.remote() for _ in range(cores)])
    list(epochs({"lr": 0.05, "alpha": 1e-4, "hidden": 32, "batch_size": 64}, 1))
    run_raysweep("asha", "random", cores, 3, 10_000, cores, work)
    if any(v.startswith("tune-") and unavailable(v) is None for v in variants):
        run_tune_asha(cores, 3, 10_000, cores, work)


def measure(
    variant: str, trials: int, max_t: int, seed: int, cores: int, work: str
) -> dict[str, Any]:
    """One run of ``variant``: its status, wall time and what its trials reached."""
    row: dict[str, Any] = {"variant": variant, "seed": seed, "status": "ok"}
    start = time.perf_counter()
    try:
        run = VARIANTS[variant](trials, max_t, seed, cores, work)
    except Exception as exc:
        row["status"] = f"error ({type(exc).__name__}: {str(exc)[:400]})"
        return row
    row["wall_s"] = time.perf_counter() - start
    row["trials"] = len(run.epochs)
    row["best_acc"] = max((a for a in run.accuracy if not math.isnan(a)), default=math.nan)
    row["epochs"] = sum(run.epochs)
    # Wall time per epoch trained: the cost of an epoch with the library's overhead,
    # apart from how many epochs the library's own random configurations needed.
    row["ms_per_epoch"] = 1000 * row["wall_s"] / max(1, row["epochs"])
    row["pruned"] = sum(run.pruned)
    row["per_trial"] = {"epochs": run.epochs, "accuracy": run.accuracy, "pruned": run.pruned}
    return row


def median(runs: Sequence[Mapping[str, Any]], variant: str, key: str) -> float | None:
    values = [r[key] for r in runs if r["variant"] == variant and r["status"] == "ok"]
    return statistics.median(values) if values else None


def paired(
    runs: Sequence[Mapping[str, Any]], a: str, b: str, pair: Callable[[Any, Any], float]
) -> float | None:
    """Median over seeds of ``pair(row of a, row of b)``, on the seeds both finished."""
    ok = {(r["variant"], r["seed"]): r for r in runs if r["status"] == "ok"}
    values = [pair(ok[a, s], ok[b, s]) for v, s in ok if v == a and (b, s) in ok]
    return statistics.median(values) if values else None


def table(variants: Sequence[str], runs: Sequence[Mapping[str, Any]]) -> str:
    lines = [
        "| variant | wall s | best val acc | epochs trained | wall ms / epoch | trials pruned "
        "| runs ok |",
        "|---|---|---|---|---|---|---|",
    ]
    notes = []
    for v in variants:
        mine = [r for r in runs if r["variant"] == v]
        ok = [r for r in mine if r["status"] == "ok"]
        notes += [f"- {v} seed={r['seed']}: {r['status']}" for r in mine if r["status"] != "ok"]
        if not ok:
            status = mine[0]["status"].split(" (")[0] if mine else "not run"
            lines.append(f"| {LABELS[v]} | {status} | | | | | 0/{len(mine)} |")
            continue
        wall, acc = median(runs, v, "wall_s"), median(runs, v, "best_acc")
        eps, pruned = median(runs, v, "epochs"), median(runs, v, "pruned")
        per_epoch = median(runs, v, "ms_per_epoch")
        lines.append(
            f"| {LABELS[v]} | {wall:.1f} | {acc:.4f} | {eps:.0f} | {per_epoch:.1f} "
            f"| {pruned:.0f} | {len(ok)}/{len(mine)} |"
        )
    return "\n".join(lines + (["", *notes] if notes else []))


def figures(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """The lines the targets are read from (medians over seeds, paired by seed)."""

    def show(x: float | None, form: str, unit: str = "") -> str:
        return "-" if x is None else f"{x:{form}}{unit}"

    points = paired(runs, "asha", "fifo", lambda a, f: 100 * (a["best_acc"] - f["best_acc"]))
    vs_fifo = paired(runs, "asha", "fifo", lambda a, f: a["wall_s"] / f["wall_s"])
    vs_tune = paired(runs, "asha", "tune-asha", lambda a, t: a["wall_s"] / t["wall_s"])
    vs_same = paired(runs, "asha", "tune-asha-same", lambda a, t: a["wall_s"] / t["wall_s"])
    epochs_same = paired(runs, "asha", "tune-asha-same", lambda a, t: a["epochs"] / t["epochs"])
    bohb_points = paired(runs, "bohb", "fifo", lambda b, f: 100 * (b["best_acc"] - f["best_acc"]))
    bohb_wall = paired(runs, "bohb", "fifo", lambda b, f: b["wall_s"] / f["wall_s"])
    return [
        f"asha best acc vs fifo best acc (points): {show(points, '+.2f')} (target >= -1)",
        f"asha wall / fifo wall: {show(vs_fifo, '.2f')} (target <= 0.5)",
        f"raysweep asha wall / tune asha wall: {show(vs_tune, '.2f')} (target <= 0.5)",
        f"same 40 configurations: raysweep asha wall / tune asha wall: {show(vs_same, '.2f')}"
        f" (epochs trained: {show(epochs_same, '.2f')}x)",
        f"BOHB-style best acc, wall: {show(median(runs, 'bohb', 'best_acc'), '.4f')}, "
        f"{show(median(runs, 'bohb', 'wall_s'), '.1f', ' s')} "
        f"(vs fifo: {show(bohb_points, '+.2f')} points, {show(bohb_wall, '.2f')}x wall)",
    ]


def nan_to_null(value: Any) -> Any:
    """Strict JSON: a NaN becomes null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: nan_to_null(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [nan_to_null(v) for v in value]
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (3)")
    parser.add_argument("--trials", type=int, default=None, help="configurations per run (40)")
    parser.add_argument("--max-t", type=int, default=None, help="epochs of a full trial (27)")
    parser.add_argument("--variants", help=f"comma-separated, of: {', '.join(VARIANTS)}")
    parser.add_argument("--quick", action="store_true", help="smoke run: 8 trials of 9 epochs")
    parser.add_argument("--json", help="write every run's raw results here")
    args = parser.parse_args()
    seeds = args.seeds or (1 if args.quick else 3)
    trials = args.trials or (8 if args.quick else 40)
    max_t = args.max_t or (9 if args.quick else 27)
    variants = list(DEFAULT_VARIANTS)
    if args.variants:
        variants = [v.strip() for v in args.variants.split(",") if v.strip()]
        unknown = [v for v in variants if v not in VARIANTS]
        if unknown:
            raise SystemExit(f"--variants: unknown {unknown}; valid: {', '.join(VARIANTS)}")
    cores = os.cpu_count() or 1
    ray.init(num_cpus=cores, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    work = tempfile.mkdtemp(prefix="raysweep-early-stopping-")
    settings = {
        "trials": trials,
        "max_t": max_t,
        "grace_period": GRACE,
        "reduction_factor": REDUCTION,
        "brackets": brackets(max_t),
        "seeds": seeds,
        "max_concurrent": cores,
        "cpus": cores,
    }
    print(
        f"trials={trials} max_t={max_t} grace_period={GRACE} reduction_factor={REDUCTION} "
        f"brackets={brackets(max_t)} seeds={seeds} max_concurrent={cores} storage={work}",
        flush=True,
    )
    warm_up(variants, cores, work)
    runs: list[dict[str, Any]] = []
    for seed in range(seeds):
        for variant in variants:
            why = unavailable(variant)
            if why is not None:
                if seed == 0:
                    runs.append({"variant": variant, "seed": seed, "status": why})
                    print(f"{variant}: {why}", flush=True)
                continue
            row = measure(variant, trials, max_t, seed, cores, work)
            runs.append(row)
            if row["status"] == "ok":
                print(
                    f"{variant} seed={seed} wall={row['wall_s']:.1f}s "
                    f"best_acc={row['best_acc']:.4f} epochs={row['epochs']} "
                    f"pruned={row['pruned']}/{row['trials']}",
                    flush=True,
                )
            else:
                print(f"{variant} seed={seed} {row['status']}", file=sys.stderr, flush=True)
            if args.json:
                with open(args.json, "w") as f:
                    json.dump(nan_to_null({"settings": settings, "runs": runs}), f, indent=1)
    print(f"\nmedians over {seeds} seed(s), {trials} trials of at most {max_t} epochs")
    print(table(variants, runs) + "\n")
    for line in figures(runs):
        print(line)
    ray.shutdown()


if __name__ == "__main__":
    main()
