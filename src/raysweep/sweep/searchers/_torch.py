"""How many threads torch uses while a searcher fits its model in the driver.

Optuna's GP sampler and Ax/BoTorch fit and optimize on torch in the driver
process, on the same machine as trials that already keep every core busy.
torch's default (one thread per core) then contends with the trials and with
itself: on a loaded 2-core machine a BoTorch proposal took 20-70 s with two
threads and about 1 s with one. So the model-based searchers set torch's
threads for the length of their own calls only (``threads=1`` by default, an
option of the searcher), and put the user's setting back afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from raysweep.errors import SpecError

__all__ = ["check_threads", "torch_threads"]


def check_threads(value: Any, searcher: str) -> int | None:
    """``threads`` checked: a positive integer, or ``None`` to leave torch's setting."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(
            f"searcher {searcher!r} threads must be a positive integer (torch threads for "
            f"fitting the model in the driver) or null to keep torch's own, got {value!r}"
        )
    return value


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Within the block torch runs on ``threads`` intra-op threads (``None``: as set)."""
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    if before == threads:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
