"""Shared pieces of the integration tests: a sweep in-process, gradient steps by
hand, and a reader of W&B's offline ``.wandb`` files."""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import raysweep as rs
from raysweep.gradient import OptimizerOutput
from raysweep.sweep.execution import FakeClock, InProcessBackend

SPACE = {"x": rs.uniform(0.0, 1.0), "layers": rs.randint(1, 4), "opt": rs.choice(["adam", "sgd"])}
STEPS = 3


def reporting(config: Mapping[str, Any]) -> dict[str, float]:
    """Reports ``loss`` at steps 0..2, returns the last loss and an extra metric."""
    loss = 0.0
    for step in range(STEPS):
        loss = float(config["x"]) / (step + 1)
        rs.report(step=step, loss=loss)
    return {"loss": loss, "accuracy": 1.0 - loss}


def sweep(storage: Path, callbacks: Sequence[rs.Callback], **options: Any) -> rs.Result:
    """A sweep of ``reporting`` in this process on a fake clock."""
    clock = options.pop("clock", FakeClock())
    backend = options.pop("backend", InProcessBackend(concurrency=2, clock=clock))
    options.setdefault("num_trials", 4)
    options.setdefault("name", "exp")
    options.setdefault("seed", 0)
    return rs.run(
        options.pop("objective", reporting),
        options.pop("space", SPACE),
        storage=storage,
        backend=backend,
        clock=clock,
        callbacks=list(callbacks),
        verbose=0,
        **options,
    )


def step_data(step: int) -> dict[str, Any]:
    """A stored gradient step as RayOptimizer records it."""
    return {
        "losses": {"fit": 1.0 / (step + 1)},
        "loss": 1.0 / (step + 1),
        "grad_norm": 0.5 / (step + 1),
        "params": {"a": 0.1 * step, "b": [1.0, 2.0]},
        "timings": {"step_s": 0.01, "simulators_s": 0.005, "objectives_s": 0.002},
        "simulators_run": ["s.0"],
        "not_ready_retries": 0,
        "aux": {"fit": {}},
    }


def gradient_outputs(first: int, last: int) -> Iterator[OptimizerOutput]:
    """The outputs RayOptimizer hands its callback for steps ``first..last`` (a run
    resumed at ``first`` holds the stored steps before it in its history)."""
    history = [step_data(s) for s in range(first)]
    for step in range(first, last + 1):
        history.append(step_data(step))
        yield OptimizerOutput(
            step=step,
            params={"a": 0.1 * (step + 1)},
            opt_state=(),
            grads={"a": 0.5},
            losses=history[-1]["losses"],
            loss=history[-1]["loss"],
            history=tuple(history),
        )


# -- W&B's offline transaction log ------------------------------------------------------
_HEADER = 7  # b":W&B", a 2-byte magic, a 1-byte version
_BLOCK = 32 * 1024
_RECORD_HEADER = 7  # crc32 (4), length (2), type (1): LevelDB's log format
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def wandb_records(path: Path) -> list[Any]:
    """Every record of a ``.wandb`` file, parsed with W&B's own protocol buffers."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B transaction log"
    records: list[Any] = []
    pos, pending = _HEADER, b""
    while pos + _RECORD_HEADER <= len(data):
        left_in_block = _BLOCK - pos % _BLOCK
        if left_in_block < _RECORD_HEADER:
            pos += left_in_block  # the block's zero padding
            continue
        length, kind = struct.unpack("<HB", data[pos + 4 : pos + 7])
        if length == 0 and kind == 0:
            break  # the rest of a block not yet written
        chunk = data[pos + 7 : pos + 7 + length]
        pos += _RECORD_HEADER + length
        pending = chunk if kind in (_FULL, _FIRST) else pending + chunk
        if kind in (_FULL, _LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def _key(item: Any) -> str:
    """An item's key; W&B writes either ``key`` or the parts of ``nested_key``."""
    return str(item.key) or "/".join(item.nested_key)


def wandb_exit_code(path: Path) -> int | None:
    """The exit code the run finished with (``None``: not finished)."""
    for record in wandb_records(path):
        if record.WhichOneof("record_type") == "exit":
            return int(record.exit.exit_code)
    return None


def wandb_history(path: Path) -> list[dict[str, Any]]:
    """The rows a run logged (``run.log``), each with its ``_step``."""
    import json

    rows = []
    for record in wandb_records(path):
        if record.WhichOneof("record_type") == "history":
            rows.append({_key(item): json.loads(item.value_json) for item in record.history.item})
    return rows


def wandb_config(path: Path) -> dict[str, Any]:
    """The run's config as its records set it."""
    import json

    config: dict[str, Any] = {}
    for record in wandb_records(path):
        kind = record.WhichOneof("record_type")
        items = record.run.config.update if kind == "run" else None
        if kind == "config":
            items = record.config.update
        for item in items or ():
            config[_key(item)] = json.loads(item.value_json)
    return config
