"""What the optimizer hands to the callback after every step, and returns at the end."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Callback", "LazyObservables", "OptimizerOutput"]


class LazyObservables(Mapping[str, Any]):
    """A simulator's observables, fetched from Ray only when read (then kept)."""

    __slots__ = ("_cache", "_refs")

    def __init__(self, refs: Mapping[str, Any]) -> None:
        self._refs = dict(refs)
        self._cache: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key not in self._cache:
            from raysweep.gradient import _ray_exec

            self._cache[key] = _ray_exec.fetch_observable(self._refs[key])
        return self._cache[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._refs)

    def __len__(self) -> int:
        return len(self._refs)

    def __repr__(self) -> str:
        return f"<observables {sorted(self._refs)}, fetched on access>"


@dataclass(frozen=True, slots=True)
class OptimizerOutput:
    """The state of a run after a step; what ``run`` returns after the last one.

    Attributes:
        step: the step just completed (0-based).
        params: the parameters after this step's update (the next step's).
        opt_state: the optax state after the update.
        grads: the aggregated gradient (``None`` when a resume found nothing to do).
        losses: ``{objective name: loss}`` at the step's parameters.
        loss: the mean of ``losses``.
        observables: ``{component: {name: value}}``. For an objective, its ``aux``
            figures. For a simulator, its exposed observables, fetched from Ray
            only when you read one, because they can be large; they are readable
            while the run goes on (in the callback), not after ``run`` returned.
        history: the stored data of every step so far (see :class:`RayOptimizer`).
        stopped_early: whether the callback stopped the run at this step.
    """

    step: int
    params: Any
    opt_state: Any
    grads: Any
    losses: Mapping[str, float]
    loss: float
    observables: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    history: tuple[Mapping[str, Any], ...] = ()
    stopped_early: bool = False


#: ``callback(output, step) -> (modified output or None, keep_going)``.
Callback = Callable[[OptimizerOutput, int], tuple[OptimizerOutput | None, bool]]
