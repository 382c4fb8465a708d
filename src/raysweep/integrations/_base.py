"""The base of every logging integration: the hooks enqueue, one worker thread logs.

A tracking library can be slow (a server far away, retries with back-off) or
fail (a full disk, a folder that cannot be written, an expired token). Neither
may stall the runner's loop or fail the sweep, so a :class:`LoggingCallback`'s
hooks only put an event on a bounded queue and return; one daemon thread per
integration takes events off it, in order, and calls the library.

What can go wrong, and what happens:

- The library raises: the error is logged once per integration (its type, the
  message and the traceback; later ones at debug level) and counted in
  :attr:`LoggingCallback.errors`; the run goes on. If what failed opens the run
  (the experiment or the gradient run), the events that need it are skipped
  until the next opening and counted in :attr:`LoggingCallback.dropped`.
- The library is slow: the queue fills up. A full queue drops the new event
  (counted in ``dropped``, a warning the first time); the runner never waits.
- The run ends: :meth:`LoggingCallback.close` (called by ``on_experiment_end``,
  by a ``with`` block, or at interpreter exit) waits for the queue to drain, at
  most ``flush_timeout_s``; if it has not drained, the number still pending is
  logged and the worker goes on in the background (call :meth:`flush` to wait
  again).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar

from raysweep._checks import expect_int, expect_number, expect_str
from raysweep.errors import MissingExtraError, SpecError
from raysweep.integrations._records import report_step
from raysweep.sweep.callbacks import Callback, ExperimentInfo
from raysweep.trial import Trial

if TYPE_CHECKING:
    from raysweep.gradient.output import OptimizerOutput
    from raysweep.sweep.result import Result

__all__ = [
    "DEFAULT_FLUSH_TIMEOUT_S",
    "DEFAULT_QUEUE_SIZE",
    "LoggingCallback",
    "option",
]

_log = logging.getLogger("raysweep.integrations")

#: Events held for the worker at most; a fuller queue drops new events.
DEFAULT_QUEUE_SIZE = 10_000
#: How long the end of a run waits for the queue to drain.
DEFAULT_FLUSH_TIMEOUT_S = 30.0

_Handler = Callable[..., None]


class _Close:
    """The marker that ends a worker when nothing was queued after it."""


_CLOSE = _Close()


def option(name: str, check: Callable[..., Any], value: Any, **kwargs: Any) -> Any:
    """``check(value, **kwargs)`` with the option's name leading its message.

    Example:
        >>> option("queue_size", expect_int, 3, minimum=1)
        3
    """
    try:
        return check(value, **kwargs)
    except SpecError as exc:
        raise SpecError(f"{name}: {exc}") from None


class LoggingCallback(Callback):
    """A callback that hands every event to a worker thread calling a tracking library.

    Subclasses say which library they need (:attr:`library`) and override the
    ``_log_*`` handlers they use; handlers run on the worker thread, one at a
    time, in the order of the events, so they may keep state without locks.
    Each instance is also a ``RayOptimizer.run`` callback (:meth:`__call__`).

    Args:
        run_name: the name of what is logged: the sweep's experiment name by
            default; a gradient run has no name of its own, so give one (the
            default is ``gradient-<time>``; a resumed fit continues the logged run
            only under the same name).
        queue_size: events held for the worker at most.
        flush_timeout_s: how long :meth:`close` waits for the queue to drain.

    Attributes:
        errors: calls of the library that raised.
        dropped: events not logged: the queue was full, or the run they belong
            to could not be opened.
    """

    #: ``(module, package, extra)``: imported on the worker, checked at construction.
    library: ClassVar[tuple[str, str, str]]
    #: Constructor options that are folders; a sweep file's relative ones are read
    #: against the file's folder.
    path_options: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        *,
        run_name: str | None = None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        flush_timeout_s: float = DEFAULT_FLUSH_TIMEOUT_S,
    ) -> None:
        module, package, extra = self.library
        if importlib.util.find_spec(module) is None:
            raise MissingExtraError(package, extra, type(self).__name__)
        if run_name is not None:
            run_name = option("run_name", expect_str, run_name)
        queue_size = option("queue_size", expect_int, queue_size, minimum=1)
        flush_timeout_s = option("flush_timeout_s", expect_number, flush_timeout_s)
        if flush_timeout_s < 0:
            raise SpecError(f"flush_timeout_s: expected seconds >= 0, got {flush_timeout_s!r}")
        self.run_name = run_name
        self.flush_timeout_s = float(flush_timeout_s)
        self.errors = 0
        self.dropped = 0
        self._queue: queue.Queue[tuple[_Handler, tuple[Any, ...], bool] | _Close] = queue.Queue(
            maxsize=queue_size
        )
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._open = False  # a run was opened and not yet ended (driver side)
        self._reported: dict[int, int] = {}  # trial id -> last step it reported live
        self._gradient_name: str | None = None
        self._warned_full = False
        self._skipping = False  # the opening failed: skip until the next one (worker side)

    # -- the experiment hooks (driver side: enqueue only) ---------------------------------
    def on_experiment_start(self, info: ExperimentInfo) -> None:
        self._open = True
        self._reported.clear()
        self._put(self._log_experiment_start, info, opens=True)

    def on_trial_start(self, trial: Trial) -> None:
        self._put(self._log_trial_start, trial)

    def on_trial_report(self, trial: Trial, report: Mapping[str, Any]) -> None:
        self._reported[trial.trial_id] = report_step(report)
        self._put(self._log_report, trial, dict(report))

    def on_trial_complete(self, trial: Trial) -> None:
        self._trial_ended(trial)

    def on_trial_error(self, trial: Trial) -> None:
        self._trial_ended(trial)

    def _trial_ended(self, trial: Trial) -> None:
        # Reports that did not come live (a short trial's come with its result, on
        # Ray) are in the trial's series: hand over those after the last one seen.
        last = self._reported.pop(trial.trial_id, -1)
        for report in trial.intermediate:
            if report_step(report) > last:
                self._put(self._log_report, trial, dict(report))
        self._put(self._log_trial_end, trial)

    def on_experiment_end(self, result: Result) -> None:
        self._end(result)
        self.close()

    def on_experiment_closed(self, error: BaseException | None) -> None:
        # A run ended by Ctrl-C or an error has no on_experiment_end: end it here.
        if self._open:
            self.close()

    # -- the gradient hook ----------------------------------------------------------------
    def __call__(self, output: OptimizerOutput, step: int) -> tuple[None, bool]:
        """``RayOptimizer.run``'s callback: log the step; never changes or stops the run.

        The first call of a run also hands over the steps before it (a resumed
        run's stored ones), so a new tracking run holds the whole series; the
        integration skips steps it logged already. Call :meth:`close` (or use a
        ``with`` block) when ``run`` returns.

        Example:
            >>> with TensorBoardCallback("tb", run_name="fit") as tb:  # doctest: +SKIP
            ...     opt.run(params, n_steps=100, callback=tb)
        """
        history = list(enumerate(output.history))
        if self._gradient_name is None:
            self._gradient_name = self.run_name or time.strftime("gradient-%Y%m%d-%H%M%S")
            self._open = True
            self._put(self._log_gradient_steps, self._gradient_name, history, True, opens=True)
        elif history:
            self._put(self._log_gradient_steps, self._gradient_name, history[-1:], False)
        return None, True

    # -- ending ---------------------------------------------------------------------------
    def close(self) -> bool:
        """End the open run (if any) and wait for the queue to drain, at most
        ``flush_timeout_s``; return whether it drained. The instance can be used again."""
        if self._open:
            self._end(None)
        with self._lock:
            running = self._thread is not None
        if not running:
            return True
        self._put_control(_CLOSE)
        drained = self.flush(self.flush_timeout_s)
        if not drained:
            _log.warning(
                "%s: %d event(s) still pending after %g s; they are logged in the background "
                "(call flush() to wait for them)",
                type(self).__name__,
                self._queue.unfinished_tasks,
                self.flush_timeout_s,
            )
        if self.errors or self.dropped:
            _log.warning(
                "%s: %d call(s) of the library failed and %d event(s) were dropped",
                type(self).__name__,
                self.errors,
                self.dropped,
            )
        atexit.unregister(self._at_exit)
        return drained

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every event queued so far was handled (at most ``timeout_s``
        seconds, ``None``: no bound); return whether they were."""
        done = self._queue.all_tasks_done
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with done:
            while self._queue.unfinished_tasks:
                if deadline is None:
                    done.wait()
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                done.wait(left)
        return True

    def __enter__(self) -> LoggingCallback:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- handlers (worker side; override what the library needs) --------------------------
    def _log_experiment_start(self, info: ExperimentInfo) -> None:
        """Open the experiment's run(s); a resumed experiment finds its earlier ones."""

    def _log_trial_start(self, trial: Trial) -> None:
        """A trial was dispatched; also called again for a trial run again."""

    def _log_report(self, trial: Trial, report: Mapping[str, Any]) -> None:
        """A report of a running trial (``report["step"]`` and its metrics)."""

    def _log_trial_end(self, trial: Trial) -> None:
        """A trial ended: COMPLETED, FAILED or PRUNED (``trial.state``)."""

    def _log_gradient_steps(
        self, name: str, steps: list[tuple[int, Mapping[str, Any]]], first: bool
    ) -> None:
        """Steps of a gradient run as ``(step, stored step data)``; ``first``: the
        first call of this run in this process, with every step so far."""

    def _log_end(self, result: Result | None) -> None:
        """The run ended (``result``: a sweep's; ``None``: a gradient run, or a sweep
        closed without an end, e.g. interrupted). Close what is still open."""

    # -- the queue and the worker ---------------------------------------------------------
    def _end(self, result: Result | None) -> None:
        self._open = False
        self._gradient_name = None
        self._put(self._log_end, result)

    def _put(self, handler: _Handler, *args: Any, opens: bool = False) -> None:
        with self._lock:
            self._start_worker()
            try:
                self._queue.put_nowait((handler, args, opens))
                return
            except queue.Full:
                self.dropped += 1
                warn = not self._warned_full
                self._warned_full = True
        if warn:
            _log.warning(
                "%s: the queue of %d events is full (the library is slower than the run); "
                "new events are dropped and counted",
                type(self).__name__,
                self._queue.maxsize,
            )

    def _put_control(self, item: _Close) -> None:
        """Queue the end marker; waits for room, at most ``flush_timeout_s``."""
        with self._lock:
            self._start_worker()
        # A worker stuck on the library leaves it full: close() logs what is pending.
        with contextlib.suppress(queue.Full):
            if self.flush_timeout_s:
                self._queue.put(item, timeout=self.flush_timeout_s)
            else:  # no wait at all (Queue.put's timeout=None would wait forever)
                self._queue.put_nowait(item)

    def _start_worker(self) -> None:
        """Start the worker unless one runs (called with the lock held)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._work, name=f"raysweep-{type(self).__name__}", daemon=True
        )
        self._thread.start()
        atexit.register(self._at_exit)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if not isinstance(item, _Close):
                    self._handle(*item)
            finally:
                self._queue.task_done()
            if isinstance(item, _Close):
                with self._lock:
                    if self._queue.empty():  # nothing came after it: this worker ends
                        self._thread = None
                        return

    def _handle(self, handler: _Handler, args: tuple[Any, ...], opens: bool) -> None:
        ends = getattr(handler, "__name__", "") == "_log_end"
        if opens:
            self._skipping = False
        elif self._skipping:
            # Nothing was opened: there is nothing to log into, or to end.
            self._skipping = not ends
            self.dropped += 0 if ends else 1
            return
        try:
            handler(*args)
        except Exception as exc:
            self.errors += 1
            if opens:
                self._skipping = True
            name = getattr(handler, "__name__", "handler")
            line = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
            if self.errors == 1:
                _log.error(
                    "%s: %s raised %s; the run goes on, later errors are counted in .errors",
                    type(self).__name__,
                    name,
                    line,
                    exc_info=True,
                )
            else:
                _log.debug("%s: %s raised %s", type(self).__name__, name, line)

    def _at_exit(self) -> None:
        """Drain the queue (bounded) when the interpreter exits before :meth:`close`."""
        self.close()
