"""Import a sweep's objective (``module:function``) from the sweep file's folder.

Why not just put the folder on ``sys.path``: that would leak into everything
the process imports afterwards, and a second sweep file in another folder with
its own ``objective.py`` would silently get the first one's module. So the
folder is on ``sys.path`` only while the module (and what it imports at import
time) loads, and a module this loader imported earlier is imported afresh.

Workers do not have the folder on their path either; every module that came
from it is registered with Ray's cloudpickle to travel by value.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from raysweep.errors import SpecError

__all__ = ["load_objective"]

#: Top-level names of modules imported from sweep folders by this process; only
#: these may be replaced when another folder provides a module of the same name.
_FROM_SWEEP_FOLDERS: set[str] = set()


def load_objective(ref: str, base: Path) -> tuple[Callable[..., Any], tuple[str, ...]]:
    """Import ``ref`` (``"module:function"``, both parts may be dotted) and return
    the callable and the names of the modules imported from ``base``.

    Raises:
        SpecError: the reference is malformed, the module is missing or fails to
            import, the attribute is missing or not callable. (Whether it takes
            the configuration is the sweep configuration's check.)
    """
    module_name, _, attr = ref.partition(":")
    if not _dotted(module_name) or not _dotted(attr):
        raise SpecError(f"expected 'module:function' (e.g. 'objective:train'), got {ref!r}")
    top = module_name.split(".")[0]
    local = (base / f"{top}.py").is_file() or (base / top / "__init__.py").is_file()
    if local:
        module, modules = _import_local(module_name, top, base)
    else:
        module, modules = _import_installed(module_name, base), ()
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            found = getattr(module, "__file__", None) or module_name
            raise SpecError(f"no attribute {part!r} in {_shown(found, base)} (from {ref!r})")
        obj = getattr(obj, part)
    if not callable(obj):
        raise SpecError(f"{ref!r} is not callable (it is of type {type(obj).__name__})")
    _register(modules)
    return obj, modules


def _dotted(name: str) -> bool:
    return bool(name) and all(part.isidentifier() for part in name.split("."))


def _shown(path: str, base: Path) -> str:
    """``path`` relative to the sweep folder when inside it (shorter messages)."""
    try:
        return str(Path(path).resolve().relative_to(base))
    except ValueError:
        return path


def _inside(module: ModuleType, base: Path) -> bool:
    file = getattr(module, "__file__", None)
    return file is not None and Path(file).resolve().is_relative_to(base)


@contextmanager
def _on_path(base: Path) -> Iterator[None]:
    entry = str(base)
    sys.path.insert(0, entry)
    importlib.invalidate_caches()
    try:
        yield
    finally:
        # The module may have edited sys.path itself; remove only our entry.
        if entry in sys.path:
            sys.path.remove(entry)


def _import_local(module_name: str, top: str, base: Path) -> tuple[ModuleType, tuple[str, ...]]:
    existing = sys.modules.get(top)
    if existing is not None:
        if top not in _FROM_SWEEP_FOLDERS and not _inside(existing, base):
            where = getattr(existing, "__file__", None) or "built in"
            raise SpecError(
                f"the module {top!r} in {base} has the name of a module this program already "
                f"imported ({where}); rename {top}.py"
            )
        for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
            del sys.modules[name]
    before = set(sys.modules)
    with _on_path(base):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            _forget(before)
            if exc.name == module_name or module_name.startswith(f"{exc.name}."):
                raise SpecError(f"no module {exc.name!r} in {base}") from None
            raise _import_error(module_name, exc, base) from None
        except (Exception, SystemExit) as exc:  # the user's module may raise anything
            _forget(before)
            raise _import_error(module_name, exc, base) from None
    _FROM_SWEEP_FOLDERS.add(top)
    new = sorted(n for n in set(sys.modules) - before if _inside(sys.modules[n], base))
    return module, tuple(new)


def _import_installed(module_name: str, base: Path) -> ModuleType:
    try:
        found = importlib.util.find_spec(module_name)
    except ModuleNotFoundError:
        found = None
    except (Exception, SystemExit) as exc:  # a parent package failed to import
        raise _import_error(module_name, exc, base) from None
    if found is None:
        top = module_name.split(".")[0]
        raise SpecError(
            f"cannot find module {module_name!r}: no {top}.py or {top}/ package in {base}, "
            f"and no installed module of that name"
        )
    try:
        return importlib.import_module(module_name)
    except (Exception, SystemExit) as exc:
        raise _import_error(module_name, exc, base) from None


def _forget(before: set[str]) -> None:
    """Drop half-imported modules so a corrected file is imported afresh."""
    for name in set(sys.modules) - before:
        del sys.modules[name]


def _import_error(module_name: str, exc: BaseException, base: Path) -> SpecError:
    """One line: which module, where in the user's code, and the exception."""
    location = ""
    if isinstance(exc, SyntaxError) and exc.filename:
        location = f" ({_shown(exc.filename, base)}:{exc.lineno})"
        text = f"SyntaxError: {exc.msg}"
    else:
        frames = [
            f
            for f in traceback.extract_tb(exc.__traceback__)
            if "<frozen" not in f.filename and f.filename != __file__
        ]
        # Point at the user's line, even when the exception came from a library it called.
        mine = [f for f in frames if Path(f.filename).resolve().is_relative_to(base)]
        if mine or frames:
            frame = (mine or frames)[-1]
            location = f" ({_shown(frame.filename, base)}:{frame.lineno})"
        message = str(exc).strip().splitlines()
        text = f"{type(exc).__name__}: {message[0]}" if message else type(exc).__name__
    return SpecError(f"importing {module_name!r} failed{location}: {text}")


def _register(modules: tuple[str, ...]) -> None:
    if not modules:
        return
    from raysweep.sweep.execution import register_by_value

    for name in modules:
        register_by_value(sys.modules[name])
