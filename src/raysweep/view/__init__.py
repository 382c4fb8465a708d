"""Reading experiments: :func:`load` an experiment into a notebook, and the tables
and status that ``raysweep status``, ``export`` and ``ls`` show.

Example:
    >>> import raysweep as rs
    >>> exp = rs.load("runs/demo")  # doctest: +SKIP
    >>> exp.kind, exp.status, len(exp.trials)  # doctest: +SKIP
    ('sweep', 'completed', 50)
"""

from __future__ import annotations

from raysweep.view.experiment import Experiment, load

__all__ = ["Experiment", "load"]
