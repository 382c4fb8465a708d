"""The Ray side of an optimizer between steps: the connection and the units' hosts.

``RayOptimizer.step`` opens a session on its first call and keeps it, so the
hosts (and what units cache in them: imports, compiled code) serve every later
step. The session ends with ``RayOptimizer.close()``, the ``with`` block, the
optimizer being garbage collected, or the interpreter's exit, whichever comes
first. ``run`` opens its own session unless one is open, and closes only its own.

A step that raises ends the hosts (calls may still run in them) but keeps the
Ray connection, so the observable references held by the caller's
``OptimizerState`` stay valid; the next step starts new hosts. Ray is shut
down only by the session that started it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from raysweep.gradient import _ray_exec as rx
from raysweep.gradient._step import StepEngine
from raysweep.gradient.units import Objective, Simulator

__all__ = ["Session"]


class Session:
    """A Ray connection and, between failures, the hosts of one optimizer's units.

    Args:
        simulators, objectives: the units.
        producer: qualified observable name -> simulator name.
        options: unit name -> Ray task options (hints over the defaults), checked.
        address, runtime_env: where and how to connect (see ``RayOptimizer``).
    """

    def __init__(
        self,
        simulators: Sequence[Simulator],
        objectives: Sequence[Objective],
        producer: Mapping[str, str],
        options: Mapping[str, Mapping[str, Any]],
        address: str | None,
        runtime_env: Mapping[str, Any] | None,
    ) -> None:
        self._simulators = list(simulators)
        self._objectives = list(objectives)
        self._producer = dict(producer)
        self._options = {unit: dict(opts) for unit, opts in options.items()}
        self._runtime_env = None if runtime_env is None else dict(runtime_env)
        for unit, opts in self._options.items():
            rx.validate_options(opts, unit)
        self.started = rx.ensure_ray(address, self._runtime_env)
        self._engine: StepEngine | None = None
        self.closed = False

    @property
    def alive(self) -> bool:
        """Whether the session can still run steps (not closed, Ray still connected)."""
        return not self.closed and rx.connected()

    def engine(self) -> StepEngine:
        """The step engine on this session's hosts, starting the hosts if needed."""
        if self._engine is None:
            units: list[Simulator | Objective] = [*self._simulators, *self._objectives]
            executor = rx.Executor(
                units,
                {unit.name: self._task_options(unit.name) for unit in units},
                {unit.name: unit.scheduler_hints.gpu_memory for unit in units},
            )
            self._engine = StepEngine(
                self._simulators,
                self._objectives,
                self._producer,
                {unit.name: self._retries(unit.name) for unit in units},
                executor,
            )
        return self._engine

    def end_hosts(self) -> None:
        """End every host and drain its calls (after a failed step, and at close)."""
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.executor.close(settle=not self.started)

    def close(self) -> None:
        """End the hosts; disconnect from Ray if this session connected. Idempotent."""
        if self.closed:
            return
        self.closed = True
        try:
            self.end_hosts()
        finally:
            if self.started:
                rx.shutdown()

    def _task_options(self, unit: str) -> dict[str, Any]:
        options = dict(self._options[unit])
        if self._runtime_env and not self.started and "runtime_env" not in options:
            options["runtime_env"] = self._runtime_env
        return options

    def _retries(self, unit: str) -> int:
        # Ray's -1 (retry forever) would loop on a deterministic bug in user code.
        return max(0, int(self._options[unit].get("max_retries", 0) or 0))
