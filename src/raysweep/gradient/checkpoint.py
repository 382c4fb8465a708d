"""Persistence of a gradient run: the spec, one record per step, and checkpoints.

The optimizer is functional in the optax sense (the driver holds params, optimizer
state and the units' states), so a checkpoint is just those values written
with the step record in one transaction. They are JSON, never pickle: a tree is
the list of its leaves in tree order plus its structure as text, and reading it
back fills the leaves into a template built the same way as in the first run
(the initial params, ``optimizer.init(params)``).
"""

from __future__ import annotations

import enum
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from raysweep.errors import ExperimentMismatchError, SpecError
from raysweep.gradient.trees import decode_array, decode_value, encode_array, encode_value
from raysweep.store import HEARTBEAT_KEY, ExperimentStore, StepRecord, heartbeat, locate

__all__ = [
    "RunStatus",
    "RunStore",
    "build_spec",
    "decode_states",
    "decode_tree",
    "encode_states",
    "encode_tree",
    "heartbeat_interval",
]


class RunStatus(enum.StrEnum):
    """Values of the ``status`` meta key of a gradient run."""

    RUNNING = "running"
    COMPLETED = "completed"
    STOPPED = "stopped"
    FAILED = "failed"


def _jax() -> Any:
    from raysweep.gradient._lazy import require_jax

    return require_jax("checkpointing a gradient run")


def encode_tree(tree: Any) -> dict[str, Any]:
    """A pytree as ``{"structure": text, "leaves": [encoded arrays]}``."""
    jax = _jax()
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return {"structure": str(treedef), "leaves": [encode_array(leaf) for leaf in leaves]}


def decode_tree(template: Any, encoded: Mapping[str, Any], what: str) -> Any:
    """Fill the stored leaves into the structure of ``template``.

    Leaves come back as JAX arrays with their stored dtype and shape, which is
    what they are after any optax update.

    Raises:
        ExperimentMismatchError: ``template`` does not have the stored structure
            (the parameters or the optimizer changed since the run was started).
    """
    jax = _jax()
    leaves, treedef = jax.tree_util.tree_flatten(template)
    stored = encoded["leaves"]
    if str(treedef) != encoded["structure"] or len(leaves) != len(stored):
        raise ExperimentMismatchError(
            f"cannot resume: the stored {what} has structure {encoded['structure']} but this "
            f"run's has {treedef}; resume with the same parameters and optimizer as the first run"
        )
    return jax.tree_util.tree_unflatten(
        treedef, [jax.numpy.asarray(decode_array(leaf)) for leaf in stored]
    )


_UNSAVED = "$unsaved"


def encode_states(states: Mapping[str, Any]) -> dict[str, Any]:
    """Unit states as JSON; a state that is not plain data is marked unsaved."""
    out: dict[str, Any] = {}
    for name, state in states.items():
        try:
            out[name] = encode_value(state)
        except TypeError:
            out[name] = {_UNSAVED: type(state).__name__}
    return out


def decode_states(encoded: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Stored unit states, and ``{name: type}`` of those that were not stored."""
    states: dict[str, Any] = {}
    reset: dict[str, str] = {}
    for name, value in encoded.items():
        if isinstance(value, dict) and set(value) == {_UNSAVED}:
            states[name] = None
            reset[name] = str(value[_UNSAVED])
        else:
            states[name] = decode_value(value)
    return states, reset


#: Heartbeat interval of a gradient run at start and after a short step (seconds).
MIN_HEARTBEAT_S = 60.0
#: Before its first step a run promises a heartbeat within this long: the first
#: step also compiles and starts every simulator, and its length is unknown.
FIRST_STEP_BOUND_S = 900.0


def heartbeat_interval(last_step_s: float | None) -> float:
    """How long a gradient run may take until its next heartbeat.

    A run writes its heartbeat only when it records a step, so the bound follows
    the last step's length: the larger of :data:`MIN_HEARTBEAT_S` and three
    times that step (steps vary; ``raysweep status`` only calls the driver
    unresponsive after three intervals, so nine of those steps). Before any step
    it is :data:`FIRST_STEP_BOUND_S`.

    Example:
        >>> heartbeat_interval(5.0), heartbeat_interval(100.0), heartbeat_interval(None)
        (60.0, 300.0, 900.0)
    """
    if last_step_s is None:
        return FIRST_STEP_BOUND_S
    return max(MIN_HEARTBEAT_S, 3.0 * last_step_s)


class RunStore:
    """The experiment store of one gradient run, with the few calls the loop makes.

    Args:
        store: the open experiment.
        clock: Unix time source for heartbeats (tests pass a fake one).
    """

    __slots__ = ("_clock", "_last_beat", "_last_step_s", "store")

    def __init__(self, store: ExperimentStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._clock = clock
        self._last_beat: float | None = None
        self._last_step_s: float | None = None

    @classmethod
    def create(
        cls,
        storage: str | os.PathLike[str],
        spec: Mapping[str, Any],
        clock: Callable[[], float] = time.time,
    ) -> RunStore:
        """A new run; ``ExperimentExistsError`` if one is stored under that name."""
        return cls(locate(storage, spec["name"]).create(spec), clock)

    @classmethod
    def resume(
        cls,
        storage: str | os.PathLike[str],
        spec: Mapping[str, Any],
        clock: Callable[[], float] = time.time,
    ) -> RunStore:
        """Open a stored run to continue it, checking that it is the same run.

        A run stored by an older raysweep is migrated to the current schema.

        Raises:
            ExperimentNotFoundError: nothing is stored under that name.
            ExperimentMismatchError: it is not a gradient run, or its simulators or
                objectives have other names.
            StoreError: the stored run is damaged or cannot be written.
        """
        store = locate(storage, spec["name"]).open()
        stored = store.read_spec()
        if stored.get("kind") != "gradient":
            store.close()
            raise ExperimentMismatchError(
                f"cannot resume {spec['name']!r}: it is a {stored.get('kind', 'non-gradient')!r} "
                f"experiment, not a gradient run"
            )
        diffs = [
            f"{key}: stored {stored.get(key)!r}, given {spec[key]!r}"
            for key in ("simulators", "objectives")
            if list(stored.get(key, [])) != list(spec[key])
        ]
        if diffs:
            store.close()
            raise ExperimentMismatchError(
                f"cannot resume {spec['name']!r} with other units ({'; '.join(diffs)}); "
                f"use the same simulator and objective names, or start a new run under another name"
            )
        if stored.get("n_steps") != spec["n_steps"]:
            store.add_event(
                "n_steps_changed", {"from": stored.get("n_steps"), "to": spec["n_steps"]}
            )
            store.write_spec({**stored, "n_steps": spec["n_steps"]})
        return cls(store, clock)

    def latest(self) -> StepRecord | None:
        """The last completed step with its checkpoint."""
        return self.store.latest_checkpoint()

    def history(self) -> list[dict[str, Any]]:
        """The data of every stored step, oldest first."""
        return [dict(rec.data) for rec in self.store.steps()]

    def record(
        self,
        step: int,
        data: Mapping[str, Any],
        params: Any,
        opt_state: Any,
        states: Mapping[str, Any],
        objective_states: Mapping[str, Any] | None = None,
    ) -> None:
        """Store a completed step and what a resume needs to continue after it.

        ``states`` are the simulators' states, ``objective_states`` those of the
        objectives (stored under ``objective_states``; a checkpoint of a run
        stored before objectives had states lacks the key and resumes with none).
        """
        checkpoint = {
            "next_step": step + 1,
            "params": encode_tree(params),
            "opt_state": encode_tree(opt_state),
            "simulator_states": encode_states(states),
            "objective_states": encode_states(objective_states or {}),
        }
        self.store.record_step(step, data, checkpoint)
        now = self._clock()
        if self._last_beat is not None:
            self._last_step_s = max(0.0, now - self._last_beat)
        self._beat(now)

    def event(self, kind: str, data: Mapping[str, Any] | None = None) -> None:
        """Append to the run's event log."""
        self.store.add_event(kind, data)

    def set_status(self, status: RunStatus) -> None:
        """Set the ``status`` meta key; ``RUNNING`` also writes the first heartbeat."""
        if status is RunStatus.RUNNING:
            now = self._clock()
            self._last_beat = now
            self.store.commit(meta={"status": status.value, HEARTBEAT_KEY: self._heartbeat(now)})
            return
        self.store.set_meta("status", status.value)

    def _heartbeat(self, now: float) -> dict[str, Any]:
        return heartbeat(heartbeat_interval(self._last_step_s), now=now)

    def _beat(self, now: float) -> None:
        self._last_beat = now
        self.store.set_meta(HEARTBEAT_KEY, self._heartbeat(now))

    def close(self) -> None:
        """Release the database connection."""
        self.store.close()


def build_spec(
    name: str,
    simulators: Sequence[str],
    objectives: Sequence[str],
    n_steps: int,
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    """The JSON spec stored when a gradient run is created."""
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise SpecError(f"a stored run needs a name usable as a folder name, got {name!r}")
    return {
        "kind": "gradient",
        "name": name,
        "simulators": list(simulators),
        "objectives": list(objectives),
        "n_steps": n_steps,
        **extra,
    }
