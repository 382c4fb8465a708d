"""A simulated cluster: the real runner, searcher and store on a virtual clock.

Trying a searcher, a stop condition or (next) a scheduler on a real cluster costs
the cluster. The simulator costs a cheap surrogate: the objective runs in the
driver, and how long each trial *would* take comes from a function of its config
(``duration=``) or from the objective itself (``time_attr=``). Time is virtual, so
a week of cluster time with hundreds of trials in flight replays in seconds, and
everything else (runner, searcher, stop conditions, SQLite store) is the code that
runs on Ray. Modelled on syne-tune's simulator backend.

How it works. ``workers`` trials run at once; a trial submitted while every
worker is busy waits in a first-come queue, as a Ray task waits for a free CPU.
When a trial gets a worker, :meth:`wait` says so (:class:`TrialStarted`, at that
instant, before time moves on), and its objective runs *eagerly, to completion*,
in the driver; its reports and its end become timed events on a heap. :meth:`wait`
moves the clock to the next event (or by ``timeout``, whichever is first) and
returns every event due at that instant, so reports, completions, time-outs and
worker losses interleave in virtual-time order, reproducibly: events at the same
instant keep the order in which they were scheduled.

A decision taken mid-trial (the runner's time-out, a stop) cancels the trial,
and its remaining events are dropped: the objective already ran to its end in
the driver, but the runner sees only what happened up to the cancel, as on a
cluster. A scheduler's decision on a report (:meth:`SimulatedBackend.answer`)
takes effect at that report, as on Ray where ``report()`` waits for it: on
"stop" or "pause" the trial ends there, with the reports up to it and the
``interrupt`` a real trial's payload would carry. Checkpoints the objective saved
are held back and written at the virtual time they were made: when the trial
ends, the newest one saved before the report it ended at (what a real trial
would have left), so population-based training copies what a donor had at that
moment.

Queued time counts neither toward ``timeout_s`` (the runner measures from the
start, as on Ray, where the task itself says when it runs) nor toward the
trial's duration: the stored ``started_at`` is when it got a worker.

Example:
    >>> import raysweep as rs
    >>> backend = SimulatedBackend(workers=8, duration=lambda config: 60.0 * config["epochs"])
    >>> result = rs.run(lambda c: 1.0 / c["epochs"], {"epochs": rs.randint(1, 10)},
    ...                 num_trials=100, backend=backend,
    ...                 storage=tmp, name="sim")  # doctest: +SKIP
"""

from __future__ import annotations

import heapq
import itertools
import math
import pickle
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from raysweep.errors import SpecError
from raysweep.resources import Resources
from raysweep.sweep.execution._base import (
    NO_TRIAL_IO,
    Backend,
    Clock,
    Event,
    TrialFinished,
    TrialIO,
    TrialLost,
    TrialReported,
    TrialStarted,
)
from raysweep.sweep.execution._worker import MetricNames, Objective, execute_trial
from raysweep.sweep.reporting import current_trial
from raysweep.sweep.trial_files import TrialFiles, is_folder

__all__ = ["SimulatedBackend", "VirtualClock"]

#: The ``node`` stored for trials that ran on the simulator.
NODE = "simulated"

Duration = Callable[[Mapping[str, Any]], float]
Lose = Callable[[Mapping[str, Any], int], float | None]


class VirtualClock(Clock):
    """Simulated time: it moves only when the simulator moves it, never backwards.

    Args:
        start: the first reading, in Unix seconds. By default the wall-clock time
            at creation, so stored start and end times read as real dates in
            ``raysweep status`` and exports.
    """

    def __init__(self, start: float | None = None) -> None:
        self._time = time.time() if start is None else float(start)

    def now(self) -> float:
        return self._time

    def advance_to(self, when: float) -> None:
        """Move to ``when``; a time in the past is a bug in the caller."""
        if when < self._time:
            raise ValueError(f"a virtual clock never goes back: now {self._time}, asked {when}")
        self._time = when


class _Flight:
    """One attempt of one trial on the simulator. Heap entries point at it, so a
    cancelled attempt's events are recognised (and skipped) by identity."""

    __slots__ = ("attempt", "config", "delivered", "files", "payload", "trial_id")

    def __init__(self, trial_id: int, config: Mapping[str, Any], attempt: int) -> None:
        self.trial_id = trial_id
        self.config = config
        self.attempt = attempt
        self.delivered = 0  # reports returned by wait() so far
        self.files: _HeldFiles | None = None
        self.payload: dict[str, Any] = {}


class _HeldFiles(TrialFiles):
    """A trial folder whose checkpoints wait for their virtual time.

    The objective runs to its end at once; each checkpoint is held in memory with
    the number of reports made before it. When report ``k`` is delivered, the
    checkpoints made before it are written (a real trial had written them by
    then); those made after a trial's last delivered report are dropped if it was
    stopped, paused, cancelled or lost there, and written if it finished.
    """

    def __init__(self, real: TrialFiles) -> None:
        super().__init__(real.path.parent, real.trial_id, real.keep)
        self._held: list[tuple[int, tuple[str, Any], int | None]] = []

    def save(self, value: Any, *, step: int | None = None) -> Any:
        ctx = current_trial()
        made = len(ctx.reports) if ctx is not None else 0
        if is_folder(value):
            copy = tempfile.mkdtemp(prefix="raysweep-sim-ckpt-")
            shutil.copytree(value, copy, dirs_exist_ok=True)
            self._held.append((made, ("dir", copy), step))
        else:
            self._held.append((made, ("object", pickle.dumps(value)), step))
        return None

    def release(self, reports: float) -> None:
        """Write, in order, the checkpoints made before report number ``reports``."""
        while self._held and self._held[0][0] <= reports:
            _, (kind, data), step = self._held.pop(0)
            value = Path(data) if kind == "dir" else pickle.loads(data)
            TrialFiles.save(self, value, step=step)
            if kind == "dir":
                shutil.rmtree(data, ignore_errors=True)

    def discard(self) -> None:
        for _, (kind, data), _ in self._held:
            if kind == "dir":
                shutil.rmtree(data, ignore_errors=True)
        self._held.clear()


class SimulatedBackend(Backend):
    """Runs objectives in-process and plays their timing on a virtual clock.

    Give exactly one of ``duration`` and ``time_attr``.

    Args:
        workers: trials that run at once (the simulated cluster's size); further
            submitted trials wait in a queue. Set ``max_concurrent`` above it to
            simulate a busy cluster, or leave ``max_concurrent`` unset to fill it.
        duration: ``duration(config) -> seconds`` the trial takes (failing or not).
            Its reports are spread evenly over that time: report ``i`` of ``n``
            happens at ``(i + 1) / n`` of it, the result right after the last one.
        time_attr: the name of a metric that carries the virtual seconds since the
            trial started, in each :func:`raysweep.report` and in the returned
            dict (a surrogate that knows its epoch costs). Time never runs back: a
            report without it, or with a smaller value, happens together with the
            one before. The trial ends at the returned value, else at its last
            report (a trial that raised ends there too).
        lose: ``lose(config, attempt) -> seconds | None``: after how many seconds
            of the ``attempt``-th run (1, 2, ... per trial on this backend) its
            worker dies, producing :class:`TrialLost`; ``None``, or a time at or
            after the trial's end, means it survives. Makes retries testable.
        clock: the virtual clock to move (default: a new one). The runner must
            read the same one: :func:`raysweep.run` takes it from :meth:`clock`.

    Raises:
        SpecError: a bad argument, or ``duration``/``lose`` returning something
            other than a finite number of seconds >= 0.
    """

    def __init__(
        self,
        *,
        workers: int,
        duration: Duration | None = None,
        time_attr: str | None = None,
        lose: Lose | None = None,
        clock: VirtualClock | None = None,
    ) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise SpecError(f"SimulatedBackend: workers must be an integer >= 1, got {workers!r}")
        if (duration is None) == (time_attr is None):
            raise SpecError(
                "SimulatedBackend: give exactly one of duration=(config -> seconds) and "
                f"time_attr=(a reported metric holding elapsed seconds), got duration={duration!r} "
                f"and time_attr={time_attr!r}"
            )
        if time_attr is not None and (not isinstance(time_attr, str) or not time_attr):
            raise SpecError(f"SimulatedBackend: time_attr must be a metric name, got {time_attr!r}")
        self._workers = workers
        self._duration = duration
        self._time_attr = time_attr or ""  # read only when duration is None
        self._lose = lose
        self._clock = clock if clock is not None else VirtualClock()
        self._objective: Objective | None = None
        self._metric: MetricNames = "loss"
        self._running: dict[int, _Flight] = {}
        self._queued: dict[int, _Flight] = {}
        self._queue: deque[_Flight] = deque()
        self._heap: list[tuple[float, int, _Flight, Event]] = []
        self._began: list[tuple[_Flight, TrialStarted]] = []  # not yet returned by wait
        self._seq = itertools.count()
        self._attempts: dict[int, int] = {}
        self._io = TrialIO()

    # -- the Backend interface ----------------------------------------------------------
    def clock(self) -> VirtualClock:
        """The virtual clock, which :func:`raysweep.run` then uses as its own."""
        return self._clock

    def prepare(
        self,
        objective: Objective,
        *,
        metric: MetricNames,
        hints: Resources,
        io: TrialIO = NO_TRIAL_IO,
    ) -> None:
        self._objective = objective
        self._metric = metric
        self._io = io

    def answer(self, trial_id: int, decision: str, until: tuple[str, float] | None = None) -> None:
        """End the trial at its last delivered report on "stop" or "pause"."""
        flight = self._running.get(trial_id)
        if flight is None or decision not in ("stop", "pause"):
            return
        reports = list(flight.payload.get("reports") or [])[: flight.delivered]
        payload = {
            **flight.payload,
            "ok": False,
            "metrics": {},
            "error": None,
            "interrupt": decision,
            "reports": reports,
            "ended_at": self._clock.now(),
        }
        if flight.files is not None:
            flight.files.discard()  # made after the report it stopped at: never written
        ended = _Flight(flight.trial_id, flight.config, flight.attempt)
        ended.delivered = flight.delivered
        ended.payload = payload
        self._running[trial_id] = ended  # the old flight's events are skipped from now
        self._push(self._clock.now(), ended, TrialFinished(trial_id, payload))

    def submit(self, trial_id: int, config: Mapping[str, Any]) -> None:
        if trial_id in self._running or trial_id in self._queued:
            raise RuntimeError(f"trial {trial_id} is already in flight on the simulator")
        attempt = self._attempts.get(trial_id, 0) + 1
        self._attempts[trial_id] = attempt
        flight = _Flight(trial_id, config, attempt)
        if len(self._running) < self._workers:
            self._start(flight)
        else:
            self._queued[trial_id] = flight
            self._queue.append(flight)

    def wait(self, timeout: float | None) -> Sequence[Event]:
        """Advance to the next event or by ``timeout``, whichever comes first, and
        return every event due then. With nothing scheduled and no timeout there
        is nothing to wait for: return at once.

        Trials that got a worker since the last call are returned first, at once,
        without moving the clock: the runner must know of a start (and set the
        trial's deadline) before time passes it.
        """
        began = self._take_began()
        if began:
            return began
        heap, running, clock = self._heap, self._running, self._clock
        while heap and running.get(heap[0][2].trial_id) is not heap[0][2]:
            heapq.heappop(heap)  # an event of a cancelled attempt
        now = clock.now()
        if not heap:
            if timeout is not None:
                clock.advance_to(now + timeout)
            return []
        due = heap[0][0]
        if timeout is not None and due > now + timeout:
            clock.advance_to(now + timeout)
            return []
        if due > now:
            clock.advance_to(due)
            now = due
        events: list[Event] = []
        while heap and heap[0][0] <= now:
            _, _, flight, event = heapq.heappop(heap)
            if running.get(flight.trial_id) is not flight:
                continue
            events.append(event)
            if isinstance(event, TrialReported):
                if flight.files is not None:
                    flight.files.release(flight.delivered)
                flight.delivered += 1
            else:  # the attempt ends; its worker frees
                if flight.files is not None:
                    if isinstance(event, TrialFinished):
                        flight.files.release(math.inf)
                    flight.files.discard()
                del running[flight.trial_id]
                self._start_queued()
                events += self._take_began()
        return events

    def cancel(self, trial_id: int) -> None:
        """Drop the trial's pending events (or its place in the queue)."""
        flight = self._running.pop(trial_id, None)
        if flight is not None:
            if flight.files is not None:
                flight.files.discard()
            self._start_queued()
        else:
            self._queued.pop(trial_id, None)  # its queue entry is skipped when reached

    def default_concurrency(self, hints: Resources) -> int:
        return self._workers

    @property
    def queued(self) -> int:
        """Trials submitted and waiting for a free worker."""
        return len(self._queued)

    # -- simulation -----------------------------------------------------------------------
    def _take_began(self) -> list[Event]:
        """The starts not yet returned, of attempts still running."""
        began: list[Event] = [e for f, e in self._began if self._running.get(f.trial_id) is f]
        self._began.clear()
        return began

    def _start_queued(self) -> None:
        while self._queue and len(self._running) < self._workers:
            flight = self._queue.popleft()
            if self._queued.pop(flight.trial_id, None) is flight:
                self._start(flight)

    def _start(self, flight: _Flight) -> None:
        """Give ``flight`` a worker now: run the objective and schedule what follows."""
        if self._objective is None:
            raise RuntimeError("SimulatedBackend.prepare() was not called")
        self._running[flight.trial_id] = flight
        start = self._clock.now()
        self._began.append((flight, TrialStarted(flight.trial_id, start, NODE)))
        real = self._io.files(flight.trial_id)
        flight.files = None if real is None else _HeldFiles(real)
        payload = execute_trial(
            self._objective,
            flight.trial_id,
            flight.config,
            self._metric,
            node=NODE,
            files=flight.files,
            log_output=self._io.log_output,
        )
        flight.payload = payload
        reports: list[dict[str, Any]] = payload["reports"]
        offsets, end = self._timing(flight, reports, payload)
        lost_at = self._lost_at(flight)
        for report, offset in zip(reports, offsets, strict=True):
            report["time"] = start + offset
            report["time_total_s"] = offset
        payload["started_at"] = start
        payload["ended_at"] = start + end
        for report, offset in zip(reports, offsets, strict=True):
            if lost_at is not None and offset > lost_at:
                break
            self._push(start + offset, flight, TrialReported(flight.trial_id, dict(report)))
        if lost_at is not None and lost_at < end:
            reason = f"simulated worker loss after {lost_at:g} s (attempt {flight.attempt})"
            self._push(start + lost_at, flight, TrialLost(flight.trial_id, reason))
        else:
            self._push(start + end, flight, TrialFinished(flight.trial_id, payload))

    def _timing(
        self, flight: _Flight, reports: list[dict[str, Any]], payload: Mapping[str, Any]
    ) -> tuple[list[float], float]:
        """Seconds after the start of each report, and of the end."""
        if self._duration is not None:
            total = _seconds(self._duration(flight.config), "duration(config)", flight)
            n = len(reports)
            return [total * (i + 1) / n for i in range(n)], total
        attr = self._time_attr
        offsets: list[float] = []
        last = 0.0
        for report in reports:
            value = report.get(attr)
            if isinstance(value, int | float) and value > last:
                last = float(value)
            offsets.append(last)
        value = (payload.get("metrics") or {}).get(attr)
        end = float(value) if isinstance(value, int | float) and value > last else last
        return offsets, end

    def _lost_at(self, flight: _Flight) -> float | None:
        if self._lose is None:
            return None
        value = self._lose(flight.config, flight.attempt)
        return None if value is None else _seconds(value, "lose(config, attempt)", flight)

    def _push(self, when: float, flight: _Flight, event: Event) -> None:
        heapq.heappush(self._heap, (when, next(self._seq), flight, event))


def _seconds(value: Any, what: str, flight: _Flight) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise SpecError(
            f"SimulatedBackend: {what} returned {value!r} for trial {flight.trial_id}; "
            f"it must be a finite number of seconds >= 0"
        )
    return float(value)
