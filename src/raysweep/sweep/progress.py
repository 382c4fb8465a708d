"""Live progress of a sweep: a rich display on a terminal, plain lines in a log.

On a terminal the user watches: a bar, counts, the best trial so far with its
configuration, elapsed time and an ETA, and what is running now. Trials waiting
in the cluster's queue are counted apart ("running 2 · queued 2"): dispatched,
with no word of a start for :data:`~raysweep.sweep.execution.QUEUED_AFTER_S`. In a log
(Slurm output, CI, ``| tee``) a redrawing display is garbage, so the same
callback writes one line per finished trial instead, at most about one a second
plus one for every new best, and a summary at the end.

With several metrics there is no single best: the display keeps the Pareto front
instead (the trials no other trial beats on every metric), shows its size and
the metrics of its trials, and always writes the line of a trial that joins it.

Example:
    >>> from rich.console import Console
    >>> progress = ProgressCallback(Console(), live=False)
    >>> # raysweep.run(objective, space, callbacks=[progress])
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from raysweep._text import format_config, format_duration, format_value
from raysweep.objectives import Objectives
from raysweep.sweep.callbacks import Callback, ExperimentInfo
from raysweep.sweep.execution import QUEUED_AFTER_S
from raysweep.trial import Trial, TrialState

if TYPE_CHECKING:
    from raysweep.sweep.result import Result

__all__ = ["ProgressCallback"]

#: Running trials shown in the live display; the rest are counted.
_MAX_RUNNING_ROWS = 8
#: Pareto-front trials shown in the live display; the rest are counted.
_MAX_FRONT_ROWS = 5


@dataclass(slots=True)
class _Running:
    """A dispatched trial: when, and when it began to run (``None`` until heard of)."""

    dispatched: float
    began: float | None = None
    last_report: Mapping[str, Any] = field(default_factory=dict)

    def queued(self, now: float) -> bool:
        return self.began is None and now - self.dispatched >= QUEUED_AFTER_S

    @property
    def since(self) -> float:
        """Elapsed time counts from here: the start, or the dispatch until one is heard of."""
        return self.dispatched if self.began is None else self.began


class ProgressCallback(Callback):
    """Shows the progress of one experiment on ``console``.

    Args:
        console: where to draw; defaults to standard output.
        live: ``True`` for the redrawing display, ``False`` for plain lines;
            ``None`` picks the display when ``console`` is a terminal.
        clock: seconds on a monotonic scale (injectable for tests).
        min_interval_s: plain mode writes a finished trial's line only if this
            long passed since the last line; new bests are always written.
        refresh_per_second: redraw rate of the live display.
    """

    def __init__(
        self,
        console: Console | None = None,
        *,
        live: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        min_interval_s: float = 1.0,
        refresh_per_second: float = 4.0,
    ) -> None:
        self.console = console if console is not None else Console()
        self.live = (
            self.console.is_terminal and not self.console.is_dumb_terminal if live is None else live
        )
        self._clock = clock
        self._min_interval_s = min_interval_s
        self._refresh = refresh_per_second
        self._lock = threading.Lock()
        self._display: Live | None = None
        self._name = ""
        self._objectives = Objectives.single("loss")
        self._total: int | None = None
        self._started = clock()
        self._done_before = 0
        self._completed = 0
        self._failed = 0
        self._pruned = 0
        self._finished_now = 0
        self._running: dict[int, _Running] = {}
        self._best: Trial | None = None
        self._front: list[Trial] = []  # several metrics: the Pareto front so far
        self._last_line: float | None = None
        self._errors_shown = 0

    # -- hooks ------------------------------------------------------------------------
    def on_experiment_start(self, info: ExperimentInfo) -> None:
        with self._lock:
            self._name, self._objectives = info.name, info.objectives
            self._total = info.num_trials
            self._started = self._clock()
            self._completed = info.counts.get(TrialState.COMPLETED, 0)
            self._failed = info.counts.get(TrialState.FAILED, 0)
            self._pruned = info.counts.get(TrialState.PRUNED, 0)
            self._done_before = self._completed + self._failed + self._pruned
            self._best = info.best
            self._front = list(info.front)
        if self.live:
            self._display = Live(
                console=self.console,
                get_renderable=self.renderable,
                refresh_per_second=self._refresh,
                transient=False,
            )
            self._display.start()
            return
        goal = info.objectives.describe(ongoing=True)
        planned = f"{info.num_trials} trials" if info.num_trials else "until a stop condition"
        resumed = f", resumed with {self._done_before} done" if info.resumed else ""
        self._print(
            f"experiment {info.name}: {planned}, {info.max_concurrent} at a time, {goal}{resumed}"
        )

    def on_note(self, text: str) -> None:
        # Printed above the live display when there is one, as a plain line otherwise.
        self._print(text)

    def on_trial_start(self, trial: Trial) -> None:
        with self._lock:
            self._running[trial.trial_id] = _Running(self._clock())

    def on_trial_running(self, trial: Trial) -> None:
        with self._lock:
            running = self._running.get(trial.trial_id)
            if running is not None:
                running.began = self._clock()

    def on_trial_report(self, trial: Trial, report: Mapping[str, Any]) -> None:
        with self._lock:
            running = self._running.get(trial.trial_id)
            if running is not None:
                running.last_report = dict(report)

    def on_trial_complete(self, trial: Trial) -> None:
        with self._lock:
            self._running.pop(trial.trial_id, None)
            self._completed += 1
            self._finished_now += 1
            new_best = self._is_better(trial)
            if new_best:
                self._best = trial
            multi = self._objectives.multi
            front = self._objectives.add_to_front(self._front, trial) if multi else None
            if front is not None:
                self._front = front
            size = len(self._front)
        what = f"trial {trial.trial_id} completed {self._score(trial)}"
        if multi:
            joined = "joins the Pareto front" if front is not None else "Pareto front"
            trials = f"{size} trial{'s' if size != 1 else ''}"
            self._line(f"{what}; {joined}: {trials}", force=front is not None)
        elif new_best:
            self._line(f"{what}; new best: {format_config(trial.config)}", force=True)
        else:
            self._line(f"{what}; {self._best_text()}")

    def on_trial_error(self, trial: Trial) -> None:
        with self._lock:
            self._running.pop(trial.trial_id, None)
            self._finished_now += 1
            if trial.state is TrialState.PRUNED:
                self._pruned += 1
            else:
                self._failed += 1
            first = self._errors_shown == 0 and trial.state is not TrialState.PRUNED
        state = "pruned" if trial.state is TrialState.PRUNED else "FAILED"
        reason = _last_line(trial.error)
        # The first failure is always shown: it is often the same bug in every trial.
        if self._line(
            f"trial {trial.trial_id} {state}" + (f": {reason}" if reason else ""), force=first
        ):
            self._errors_shown += 1

    def on_experiment_end(self, result: Result) -> None:
        self.close()
        if self.live:
            return
        counts = {s: result.count(s) for s in TrialState}
        parts = [f"{n} {s.value.lower()}" for s, n in counts.items() if n]
        elapsed = format_duration(self._clock() - self._started)
        self._print(
            f"finished in {elapsed}: {len(result.trials)} trials "
            f"({', '.join(parts) or 'none'}); {result.stop_reason}"
        )

    def close(self) -> None:
        """Stop the live display (idempotent); call it when a run ends abnormally."""
        display, self._display = self._display, None
        if display is not None:
            display.stop()

    # -- what is shown ----------------------------------------------------------------
    def renderable(self) -> RenderableType:
        """The live display's current frame."""
        with self._lock:
            now = self._clock()
            done = self._completed + self._failed + self._pruned
            total = self._total
            flights = sorted(self._running.items())
            started = [(i, r.since, r.last_report) for i, r in flights if not r.queued(now)]
            queued = len(flights) - len(started)
            elapsed = now - self._started
            eta = self._eta(elapsed, done)
            best = self._best
            front = list(self._front)
        head = Table.grid(padding=(0, 1))
        head.add_row(
            Text(self._name, style="bold"),
            ProgressBar(total=float(total or 1), completed=float(done if total else 0), width=30),
            Text(f"{done}/{total}" if total else f"{done} done"),
            Text(f"elapsed {format_duration(elapsed)}  ETA {format_duration(eta)}", style="dim"),
        )
        counts = Text(
            f"running {len(started)} · "
            + (f"queued {queued} · " if queued else "")
            + f"completed {self._completed} · failed {self._failed}"
            + (f" · pruned {self._pruned}" if self._pruned else "")
        )
        parts: list[RenderableType] = [head, counts]
        if self._objectives.multi:
            parts += self._front_rows(front)
        elif best is not None:
            what = f"trial {best.trial_id}  {self._score(best)}  {format_config(best.config)}"
            parts.append(Text.assemble(("best ", "bold green"), what))
        if started:
            table = Table(box=None, padding=(0, 2), show_edge=False, header_style="dim")
            for column in ("trial", "elapsed", "last report"):
                table.add_column(column)
            for trial_id, since, last in started[:_MAX_RUNNING_ROWS]:
                report = format_config({k: v for k, v in last.items() if k != "time"})
                table.add_row(str(trial_id), format_duration(now - since), report)
            if len(started) > _MAX_RUNNING_ROWS:
                table.add_row("…", "", f"{len(started) - _MAX_RUNNING_ROWS} more")
            parts.append(table)
        return Group(*parts)

    def _eta(self, elapsed: float, done: int) -> float | None:
        """Remaining trials at this run's completion rate (trials done before a resume
        say nothing about this run's speed)."""
        if self._total is None or self._finished_now == 0 or elapsed <= 0:
            return None
        remaining = max(self._total - done, 0)
        return remaining * elapsed / self._finished_now

    def _is_better(self, trial: Trial) -> bool:
        value = self._objectives.value(trial)
        best = None if self._best is None else self._objectives.value(self._best)
        return value is not None and self._objectives.improves(value, best)

    def _score(self, trial: Trial) -> str:
        """``loss=0.1234`` for the optimized metric(s) of ``trial``."""
        return format_config({m.name: trial.metrics.get(m.name) for m in self._objectives})

    def _front_rows(self, front: list[Trial]) -> list[RenderableType]:
        """The live display's Pareto front: its size, then its trials' metrics, best
        first by the first metric."""
        if not front:
            return []
        first = self._objectives.metrics[0].name
        ranked = self._objectives.ranked(front, metric=first)
        title = f"{len(front)} trial(s), by {first}"
        rows: list[RenderableType] = [Text.assemble(("pareto front ", "bold green"), title)]
        table = Table(box=None, padding=(0, 2), show_edge=False, header_style="dim")
        for column in ("trial", *self._objectives.names, "config"):
            table.add_column(column)
        for t in ranked[:_MAX_FRONT_ROWS]:
            values = [format_value(t.metrics.get(name)) for name in self._objectives.names]
            table.add_row(str(t.trial_id), *values, format_config(t.config))
        if len(ranked) > _MAX_FRONT_ROWS:
            blanks = [""] * len(self._objectives)
            table.add_row("…", *blanks, f"{len(ranked) - _MAX_FRONT_ROWS} more")
        rows.append(table)
        return rows

    def _best_text(self) -> str:
        if self._best is None:
            return "no best yet"
        if len(self._objectives) == 1:
            score = format_value(self._best.metrics.get(self._objectives.metric))
        else:
            score = self._score(self._best)
        return f"best {score} (trial {self._best.trial_id})"

    # -- plain lines ------------------------------------------------------------------
    def _line(self, text: str, *, force: bool = False) -> bool:
        """Write one progress line unless throttled; return whether it was written."""
        if self.live:
            return False
        with self._lock:
            now = self._clock()
            if (
                not force
                and self._last_line is not None
                and (now - self._last_line < self._min_interval_s)
            ):
                return False
            self._last_line = now
            done = self._completed + self._failed + self._pruned
            total = f"/{self._total}" if self._total else ""
            stamp = f"[{format_duration(now - self._started):>7}]"
            queued = sum(1 for r in self._running.values() if r.queued(now))
            status = f"{done}{total} done, {len(self._running) - queued} running" + (
                f", {queued} queued" if queued else ""
            )
        self._print(f"{stamp} {status} | {text}")
        return True

    def _print(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)


def _last_line(error: str | None) -> str:
    lines = [line.strip() for line in (error or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""
