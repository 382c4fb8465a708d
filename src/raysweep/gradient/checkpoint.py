"""Persistence of a gradient run: the spec, one record per step, and checkpoints.

The optimizer is functional in the optax sense (the driver holds params, optimizer
state and simulator states), so a checkpoint is just those three values written
with the step record in one transaction. They are JSON, never pickle: a tree is
the list of its leaves in tree order plus its structure as text, and reading it
back fills the leaves into a template built the same way as in the first run
(the initial params, ``optimizer.init(params)``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from raysweep.errors import ExperimentMismatchError, SpecError
from raysweep.gradient.trees import decode_array, decode_value, encode_array, encode_value
from raysweep.store import SQLiteStore, StepRecord

__all__ = [
    "RunStatus",
    "RunStore",
    "build_spec",
    "decode_states",
    "decode_tree",
    "encode_states",
    "encode_tree",
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
    """Simulator states as JSON; a state that is not plain data is marked unsaved."""
    out: dict[str, Any] = {}
    for name, state in states.items():
        try:
            out[name] = encode_value(state)
        except TypeError:
            out[name] = {_UNSAVED: type(state).__name__}
    return out


def decode_states(encoded: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Stored simulator states, and ``{name: type}`` of those that were not stored."""
    states: dict[str, Any] = {}
    reset: dict[str, str] = {}
    for name, value in encoded.items():
        if isinstance(value, dict) and set(value) == {_UNSAVED}:
            states[name] = None
            reset[name] = str(value[_UNSAVED])
        else:
            states[name] = decode_value(value)
    return states, reset


class RunStore:
    """The experiment store of one gradient run, with the few calls the loop makes.

    Args:
        store: the open experiment.
    """

    __slots__ = ("store",)

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store

    @staticmethod
    def directory(storage: str | Path, name: str) -> Path:
        """Where the run named ``name`` lives under ``storage``."""
        return Path(storage) / name

    @classmethod
    def create(cls, storage: str | Path, spec: Mapping[str, Any]) -> RunStore:
        """A new run; ``ExperimentExistsError`` if one is stored under that name."""
        return cls(SQLiteStore.create(cls.directory(storage, spec["name"]), spec))

    @classmethod
    def resume(cls, storage: str | Path, spec: Mapping[str, Any]) -> RunStore:
        """Open a stored run to continue it, checking that it is the same run.

        Raises:
            ExperimentNotFoundError: nothing is stored under that name.
            ExperimentMismatchError: it is not a gradient run, or its simulators or
                objectives have other names.
        """
        store = SQLiteStore.open(cls.directory(storage, spec["name"]))
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
        return cls(store)

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
    ) -> None:
        """Store a completed step and what a resume needs to continue after it."""
        checkpoint = {
            "next_step": step + 1,
            "params": encode_tree(params),
            "opt_state": encode_tree(opt_state),
            "simulator_states": encode_states(states),
        }
        self.store.record_step(step, data, checkpoint)

    def event(self, kind: str, data: Mapping[str, Any] | None = None) -> None:
        """Append to the run's event log."""
        self.store.add_event(kind, data)

    def set_status(self, status: RunStatus) -> None:
        """Set the ``status`` meta key."""
        self.store.set_meta("status", status.value)

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
