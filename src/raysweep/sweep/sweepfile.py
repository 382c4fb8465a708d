"""Sweep files: a YAML description of a sweep, checked completely at load time.

``raysweep run sweep.yaml`` should fail in the first second, with one line that
names the file, the field, the value and what would be right, not twenty
minutes later on a worker. A sweep file is read into the same
:class:`~raysweep.sweep.config.SweepConfig` that :func:`raysweep.run` builds from
its arguments, through the same checks: this module only reads YAML, refuses a
document that is not a mapping, and prefixes messages with the file's path.

Paths in the file (the objective module, ``storage``, a ``space`` file, a
relative ``runtime_env.working_dir``) are relative to the YAML's folder, so a
sweep runs the same from any working directory. The objective's module is looked
up first in that folder (``module.py`` or a package ``module/``), then among
installed modules; modules from the folder travel to Ray workers by value.

Example:
    >>> config = load_sweep_file("examples/demo/sweep.yaml")  # doctest: +SKIP
    >>> result = raysweep.run(config.replace(num_trials=10))  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from raysweep.errors import SpecError
from raysweep.sweep._yaml import first_line, parse_yaml
from raysweep.sweep.config import SweepConfig

__all__ = ["SWEEP_KEYS", "load_sweep_file"]

#: Every top-level key a sweep file may have.
SWEEP_KEYS = SweepConfig.file_keys()


def load_sweep_file(path: str | Path) -> SweepConfig:
    """Read and check a sweep YAML.

    ``objective`` (``module:function``) and ``space`` are required; every other
    key is an option of :func:`raysweep.run` with the same meaning (see
    :data:`SWEEP_KEYS`). ``searcher`` is a name or ``{name: sobol, <option>:
    <value>}``; ``space`` is a mapping of parameters, an Ax-style parameter list,
    or the path of a JSON/YAML file holding either. Without ``name``, the
    experiment is named after the file, so ``--resume`` finds it again; without
    ``storage``, it is stored in ``runs/`` next to the file.

    Raises:
        SpecError: anything wrong with the file, in one line naming the file and field.

    Example:
        >>> load_sweep_file("examples/demo/sweep.yaml").num_trials  # doctest: +SKIP
        40
    """
    file = Path(path)
    where = str(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{where}: no such sweep file") from None
    except IsADirectoryError:
        raise SpecError(f"{where}: is a folder, expected a sweep YAML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{where}: cannot read the sweep file: {first_line(exc)}") from None
    doc = parse_yaml(text, where)
    if doc is None:
        raise SpecError(
            f"{where}: the file is empty; expected a mapping with at least 'objective' and 'space'"
        )
    if not isinstance(doc, dict):
        raise SpecError(
            f"{where}: expected a mapping of keys (objective, space, ...) at the "
            f"top level, got a {type(doc).__name__}"
        )
    for key in doc:
        if not isinstance(key, str):
            raise SpecError(f"{where}: keys must be strings, got {key!r}")
    try:
        return SweepConfig.build(
            doc, base=file.resolve().parent, source=file, keys=SweepConfig.file_keys()
        )
    except SpecError as exc:
        message = " ".join(str(exc).split())
        raise type(exc)(f"{where}: {message}") from None
