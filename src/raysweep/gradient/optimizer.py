"""``RayOptimizer``: fit parameters with gradients from parallel simulations on Ray.

Each step runs the simulators on Ray, feeds their observables (by reference) to
the objectives, aggregates the objectives' gradients and takes one optax step.
``step(params, state)`` is that step as a function, optax-style: everything
it needs besides the params is in the :class:`OptimizerState` it receives, and
it returns the next one. ``run`` is a loop of steps that stores each with its
state, so a stored step is a complete checkpoint: ``resume=True`` continues
after a crash from the last stored step.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from raysweep.errors import SpecError
from raysweep.gradient._lazy import require_jax, require_optax
from raysweep.gradient.output import Callback, OptimizerOutput, OptimizerState, StepOutput
from raysweep.gradient.trees import tree_mean
from raysweep.gradient.units import Objective, Simulator, validate_units

if TYPE_CHECKING:
    from raysweep.gradient._session import Session

__all__ = ["RayOptimizer"]

#: ``on_event(kind, data)`` of a step: retries and not-ready answers (``run`` stores them).
OnEvent = Callable[[str, Mapping[str, Any]], None]


class RayOptimizer:
    """Gradient descent whose gradients come from parallel simulations on Ray.

    Args:
        simulators: the simulators; names unique (see ``Simulator.create_n``).
        objectives: the objectives; their gradients are aggregated in this order.
        optimizer: any optax ``GradientTransformation``, e.g. ``optax.adam(1e-2)``.
        aggregate_grad_fn: combines the list of gradients, one per objective, into
            one; ``tree_mean`` by default, ``tree_weighted(ws)`` for fixed weights.
        remote_options_default: Ray task options for every unit; each unit's
            ``scheduler_hints`` are applied on top (per-unit hints win).
        name: the run's name; with ``storage`` it is stored at
            ``<storage>/<name>/experiment.db``.
        storage: the folder holding experiments; ``None`` stores nothing.
        resume: continue the stored run ``name`` after its last completed step
            (same simulators and objectives) instead of starting a new one;
            ``"auto"``: continue it if it is stored, else start it (a batch job
            that may be preempted and requeued).
        runtime_env: Ray runtime environment for every unit (e.g. env vars such as
            ``JAX_ENABLE_X64``); given to ``ray.init`` when this run starts Ray,
            else set on the units' worker processes.
        address: the Ray cluster to connect to (else ``RAY_ADDRESS``, else a local
            Ray), unless Ray is already initialized in this process.

    A step runs every simulator read by an objective that does not reuse
    observables (the default), dispatches each objective as soon as its
    simulators finished, and re-runs only the simulators of an objective that
    answers :class:`NotReady`: those exposing its ``needs_update``, or all it
    reads when it names none (a second not-ready answer in a step fails it
    with :class:`~raysweep.gradient.StepFailedError`). Simulators read only by
    reusing objectives (DiffTRe) run when their observables are missing or an
    objective asks. Units receive params with NumPy leaves (``jax.device_get``).
    An objective whose ``compute`` takes ``state`` keeps a state across calls
    (see :class:`Objective`); it is part of :class:`OptimizerState` and of
    every checkpoint.

    Units run in worker processes (Ray actors) that live for the whole run, so
    imports and JIT-compiled code are paid for once, not every step. Each
    process holds the resources of its units' hints; units with the same hints
    share as many processes as the free resources hold at once (one per unit
    when they all fit), and each unit stays in its process. The processes keep
    caches only: params, optimizer state and simulator states stay with the
    driver. Calls, and the processes, are named after their units in the Ray
    dashboard. A unit whose code raises, or whose process dies (it is started
    again), is re-run up to its ``max_retries`` before the step fails. When
    ``run`` returns or raises, the processes are gone.

    ``step`` used on its own connects to Ray and starts the processes on its
    first call and keeps them for the next calls; ``close()`` (or leaving a
    ``with RayOptimizer(...) as opt:`` block, or the optimizer being garbage
    collected, or the interpreter's exit) ends them, and disconnects from Ray
    if the optimizer connected. A step that raises ends the processes; the next
    starts new ones. ``run`` uses the processes of earlier ``step`` calls when
    they are up (and leaves them up), else starts and ends its own.

    Every stored step's data holds ``losses``, ``loss``, ``grad_norm``, ``params``
    (the parameters the step evaluated, as JSON), ``timings`` (``step_s``,
    ``simulators_s``, ``objectives_s``), ``simulators_run``, ``not_ready_retries``
    and ``aux``.

    Its checkpoint holds the updated params, the optimizer state, the simulator
    states and the objective states.

    Example:
        >>> opt = RayOptimizer(simulators=sims, objectives=[obj],  # doctest: +SKIP
        ...                    optimizer=optax.adam(1e-2), name="fit", storage="runs")
        >>> out = opt.run({"r0": 1.0}, n_steps=50)  # doctest: +SKIP
        >>> with RayOptimizer(sims, [obj], optax.sgd(0.1)) as opt:  # doctest: +SKIP
        ...     state = None
        ...     for _ in range(10):
        ...         out = opt.step(params, state)
        ...         params, state = out.params, out.state
    """

    def __init__(
        self,
        simulators: Sequence[Simulator],
        objectives: Sequence[Objective],
        optimizer: Any,
        aggregate_grad_fn: Callable[[list[Any]], Any] = tree_mean,
        remote_options_default: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        storage: str | os.PathLike[str] | None = None,
        resume: bool | str = False,
        runtime_env: Mapping[str, Any] | None = None,
        address: str | None = None,
    ) -> None:
        self.simulators = list(simulators)
        self.objectives = list(objectives)
        self.producer = validate_units(self.simulators, self.objectives)
        if optimizer is None:
            raise SpecError(
                "no optimizer given: pass an optax GradientTransformation, e.g. optax.adam(1e-2)"
            )
        if aggregate_grad_fn is None:
            raise SpecError(
                "no aggregate_grad_fn given: pass a function combining the list of "
                "gradients (one per objective) into one, e.g. tree_mean"
            )
        if not (
            callable(getattr(optimizer, "init", None))
            and callable(getattr(optimizer, "update", None))
        ):
            raise SpecError(
                f"optimizer must be an optax GradientTransformation (with init and "
                f"update), e.g. optax.adam(1e-2); got {optimizer!r}"
            )
        if not callable(aggregate_grad_fn):
            raise SpecError(
                f"aggregate_grad_fn must be callable, e.g. tree_mean; got {aggregate_grad_fn!r}"
            )
        if remote_options_default is not None and not isinstance(remote_options_default, Mapping):
            raise SpecError(
                f"remote_options_default must be a dict of Ray task options, "
                f"got {remote_options_default!r}"
            )
        if storage is not None and name is None:
            raise SpecError("storage needs a name: RayOptimizer(..., name='fit', storage='runs')")
        if not isinstance(resume, bool) and resume != "auto":
            raise SpecError(
                f"resume: expected True, False or 'auto' (continue the run if it is stored, "
                f"else start it), got {resume!r}"
            )
        if resume and storage is None:
            raise SpecError("resume=True needs storage and name to find the stored run")
        if runtime_env is not None and not isinstance(runtime_env, Mapping):
            raise SpecError(
                f"runtime_env must be a dict such as "
                f"{{'env_vars': {{'JAX_ENABLE_X64': 'True'}}}}, got {runtime_env!r}"
            )
        self.optimizer = optimizer
        self.aggregate_grad_fn = aggregate_grad_fn
        self.remote_options_default = dict(remote_options_default or {})
        self.name = name
        self.storage = storage
        self.resume: bool | str = resume
        self.runtime_env = None if runtime_env is None else dict(runtime_env)
        self.address = address
        self.options = {
            unit.name: unit.scheduler_hints.to_ray_options(self.remote_options_default)
            for unit in [*self.simulators, *self.objectives]
        }
        self._session: Session | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    # -- one step ---------------------------------------------------------------------
    def init(self, params: Any) -> OptimizerState:
        """The state before the first step: ``optimizer.init(params)``, no unit states.

        ``step(params)`` without a state starts from this.
        """
        units: list[Simulator | Objective] = [*self.simulators, *self.objectives]
        return OptimizerState(
            optimizer_state=self.optimizer.init(params),
            component_state={unit.name: None for unit in units},
            observables={},
            step=0,
        )

    def step(self, params: Any, state: OptimizerState | None = None) -> StepOutput:
        """Take one step from ``params``; functional: pass the returned state back.

        Runs the simulators and objectives (starting Ray and the units'
        processes on the first call, see the class), aggregates the gradients
        and applies one optax update. Nothing is stored (``run`` stores).

        Args:
            params: the parameters to evaluate (a pytree).
            state: the ``state`` of the previous step's output; ``None`` starts
                from :meth:`init`.

        Returns:
            The updated params, the next state, the aggregated gradient, and the
            objectives' losses and aux figures.

        Raises:
            StepFailedError: a ``RuntimeError``: a unit failed past its retries, an
                objective was still not ready when its attempts ran out, or
                returned a gradient unlike the params. ``state`` is unchanged,
                so the step can be tried again.
            NonFiniteGradientError: a ``RuntimeError``: NaN/Inf in the gradient.
            SpecError: ``state`` is not an ``OptimizerState`` of these units.
            RayConnectError: the Ray cluster at ``address`` did not answer.

        Example:
            >>> out = opt.step({"a": 0.0})  # doctest: +SKIP
            >>> out = opt.step(out.params, out.state)  # doctest: +SKIP
        """
        return self._step(params, state, None)

    def _step(
        self, params: Any, state: OptimizerState | None, on_event: OnEvent | None
    ) -> StepOutput:
        """``step``, reporting retries and not-ready answers to ``on_event``."""
        optax = require_optax("RayOptimizer")
        jax = require_jax("RayOptimizer")
        from raysweep.gradient._update import apply_results

        state = self.init(params) if state is None else self._checked(state)
        session = self._open_session()
        host_params = jax.device_get(params)
        try:
            res = session.engine().run_step(
                state.step,
                host_params,
                state.component_state,
                state.observables,
                *(() if on_event is None else (on_event,)),
            )
        except BaseException:
            session.end_hosts()  # calls may still run in them; the next step starts anew
            raise
        upd = apply_results(
            state.step,
            res,
            self.objectives,
            self.aggregate_grad_fn,
            self.optimizer,
            optax,
            params,
            host_params,
            state.optimizer_state,
        )
        return StepOutput(
            params=upd.params,
            state=OptimizerState(upd.opt_state, res.states, res.observables, state.step + 1),
            grads=upd.grads,
            losses=upd.losses,
            aux=upd.aux,
            record=upd.record,
        )

    def _checked(self, state: Any) -> OptimizerState:
        if not isinstance(state, OptimizerState):
            raise SpecError(
                f"state must be the OptimizerState of a previous step's output "
                f"(out.state) or None to start, got {type(state).__name__}"
            )
        unknown = sorted(set(state.component_state) - set(self.options))
        unknown += sorted(set(state.observables) - set(self.producer))
        if unknown:
            raise SpecError(
                f"state holds names that are not units or observables of this optimizer: "
                f"{unknown}; pass the state of a step of this optimizer"
            )
        return state

    # -- the loop ---------------------------------------------------------------------
    def run(self, params: Any, n_steps: int, callback: Callback | None = None) -> OptimizerOutput:
        """Take ``n_steps`` steps in all (a resume counts the stored ones).

        Each step is :meth:`step`; ``run`` adds the store, the callback and resume.

        Args:
            params: the initial parameters (a pytree); on resume, parameters of the
                same structure (their values are replaced by the stored ones).
            n_steps: total number of steps of the run.
            callback: ``callback(output, step) -> (modified output | None,
                keep_going)``, after every step, before it is stored; returning a
                modified output continues from its ``params``/``opt_state``;
                ``(None, False)`` stops the run.

        Returns:
            The output of the last step, with ``history`` of every step.

        Raises:
            StepFailedError: a step could not complete: a unit failed past its
                retries, an objective stayed not ready, or returned a gradient
                unlike the params (see the message).
            NonFiniteGradientError: a ``RuntimeError``: NaN/Inf in the gradient.
            ExperimentExistsError / ExperimentNotFoundError / ExperimentMismatchError:
                the store does not fit the request (see ``resume``).
            RayConnectError: the Ray cluster at ``address`` did not answer.
        """
        if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
            raise SpecError(f"n_steps must be a whole number >= 1, got {n_steps!r}")
        require_optax("RayOptimizer")
        require_jax("RayOptimizer")
        from raysweep.gradient._run import run_loop

        return run_loop(self, params, n_steps, callback)

    # -- the processes --------------------------------------------------------------
    def close(self) -> None:
        """End the units' processes; disconnect from Ray if this optimizer connected.

        Safe to call more than once; a later ``step`` starts them again.
        """
        finalizer, self._finalizer, self._session = self._finalizer, None, None
        if finalizer is not None:
            finalizer()

    def __enter__(self) -> RayOptimizer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _has_session(self) -> bool:
        return self._session is not None and self._session.alive

    def _open_session(self) -> Session:
        """The live session, opened (Ray joined or started) if there is none."""
        if self._session is not None and self._session.alive:
            return self._session
        self.close()  # a session whose Ray was shut down under it: let it go
        from raysweep.gradient._session import Session

        session = Session(
            self.simulators,
            self.objectives,
            self.producer,
            self.options,
            self.address,
            self.runtime_env,
        )
        self._session = session
        # Ends the processes when the optimizer is collected or at exit, whichever first.
        self._finalizer = weakref.finalize(self, session.close)
        return session
