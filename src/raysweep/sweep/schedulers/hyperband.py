"""Asynchronous Hyperband: several ASHA brackets that differ in how early they judge.

Hyperband (Li et al., JMLR 2018) hedges against a ``grace_period`` that is too
aggressive: bracket ``s`` (``s = 0 .. brackets - 1``) is an ASHA whose first rung
is ``grace_period * reduction_factor**s``, so later brackets give their trials
longer before the first cut. The asynchronous version (Li et al., MLSys 2020;
Ray Tune's ``AsyncHyperBandScheduler``) runs the brackets side by side and
assigns each trial to one of them.

Bracket assignment is Hyperband's own allocation, made deterministic: bracket
``s`` with ``c`` rungs gets the share ``w_s = rf**c / (c + 1)`` of the trials
(normalized), the number of configurations Hyperband starts in a bracket with
``c`` cuts, so every bracket spends about the same budget. Trial ``i`` goes to
the bracket where ``frac(i * 0.618...)`` (the golden-ratio sequence, which
spreads consecutive ids evenly) falls among the cumulative shares. The choice
depends on the trial id only, so a resume or a re-run puts a trial in the same
bracket without any stored state. (Ray draws the bracket at random with
probabilities proportional to ``e**rungs``.)

Within a bracket every rule of :mod:`~raysweep.sweep.schedulers.asha` holds.
"""

from __future__ import annotations

import math
from typing import Any

from raysweep._checks import is_int
from raysweep.sweep.schedulers._base import check_option
from raysweep.sweep.schedulers.asha import ASHA, Bracket, rung_levels

__all__ = ["HyperBand"]

#: ``(sqrt(5) - 1) / 2``: the multiples of it modulo 1 are as evenly spread as any
#: sequence can be, so each bracket gets its share early, not after a long run.
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


class HyperBand(ASHA):
    """Asynchronous Hyperband: ``brackets`` ASHA brackets, each trial judged in one.

    Args:
        time_attr: what measures progress (see :class:`Scheduler`).
        max_t: the progress of a full trial; the rungs lie below it.
        grace_period: the first rung of bracket 0.
        reduction_factor: rungs are this factor apart; bracket ``s`` starts at
            ``grace_period * reduction_factor**s``.
        brackets: how many brackets; each needs at least one rung below ``max_t``.
        stop_grace_s: see :class:`Scheduler`.

    Raises:
        SpecError: for the checks of :class:`ASHA`, or too many brackets.

    Example:
        >>> HyperBand(max_t=27, grace_period=1, reduction_factor=3, brackets=3).bracket_rungs
        ((1, 3, 9), (3, 9), (9,))
    """

    name = "hyperband"

    def __init__(
        self,
        *,
        time_attr: str = "step",
        max_t: float = 100,
        grace_period: float = 1,
        reduction_factor: float = 3,
        brackets: int = 3,
        stop_grace_s: float = 30.0,
    ) -> None:
        super().__init__(
            time_attr=time_attr,
            max_t=max_t,
            grace_period=grace_period,
            reduction_factor=reduction_factor,
            stop_grace_s=stop_grace_s,
        )
        _check_brackets(self.name, brackets, max_t, grace_period, reduction_factor)
        self.brackets = brackets
        self._brackets = tuple(
            Bracket(rung_levels(grace_period, max_t, reduction_factor, first=s))
            for s in range(brackets)
        )
        shares = [reduction_factor ** len(b.rungs) / (len(b.rungs) + 1) for b in self._brackets]
        total = sum(shares)
        running = 0.0
        self._bounds: list[float] = []
        for share in shares:
            running += share / total
            self._bounds.append(running)

    @property
    def bracket_rungs(self) -> tuple[tuple[float, ...], ...]:
        """The rung levels of each bracket, ascending."""
        return tuple(b.rungs for b in self._brackets)

    @property
    def bracket_shares(self) -> tuple[float, ...]:
        """The fraction of trials each bracket gets in the long run."""
        lows = [0.0, *self._bounds[:-1]]
        return tuple(high - low for low, high in zip(lows, self._bounds, strict=True))

    def bracket_of(self, trial_id: int) -> int:
        """The bracket that judges trial ``trial_id`` (see the module docstring)."""
        u = (trial_id * _GOLDEN) % 1.0
        return next((s for s, bound in enumerate(self._bounds) if u < bound), len(self._bounds) - 1)


def _check_brackets(
    name: str, brackets: Any, max_t: Any, grace_period: Any, reduction_factor: Any
) -> None:
    """``brackets`` is a positive int and its last bracket still has a rung (the
    ladder itself was checked by :class:`ASHA`)."""
    check_option(name, "brackets", is_int(brackets) and brackets >= 1, "an integer >= 1", brackets)
    most = len(rung_levels(grace_period, max_t, reduction_factor))
    check_option(
        name,
        "brackets",
        brackets <= most,
        f"at most {most} (one per rung below max_t={max_t!r}; bracket s starts at rung s)",
        brackets,
    )
