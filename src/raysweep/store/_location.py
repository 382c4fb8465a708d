"""Where an experiment is stored: one function turns ``storage`` and a name into a place.

``storage`` is a folder path (the experiment lives in
``<storage>/<name>/experiment.db``) or a URL. The URL scheme picks the store
implementation from :data:`_SCHEMES`; ``file://`` is the only one today, and a
database server (``postgresql://``) plugs in as one more entry there, without
touching ``raysweep.run``, the gradient optimizer or the CLI, which all go
through :func:`locate` and :func:`open_experiment`.

:func:`locate` only parses and validates, so ``run()`` can check ``storage``
before anything starts; the :class:`Location` it returns does the disk work.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from raysweep.errors import ExperimentNotFoundError, SpecError, StoreError
from raysweep.store._base import ExperimentStore
from raysweep.store.sqlite import DB_FILENAME, SQLiteStore

__all__ = ["Location", "experiments_in", "locate", "open_experiment"]

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass(frozen=True, slots=True)
class Location:
    """One experiment's place in a store: what :func:`locate` returns.

    Attributes:
        url: the experiment's address, e.g. ``file:///home/me/runs/demo``.
        directory: the experiment folder, for stores kept in files (else ``None``).
    """

    url: str
    directory: Path | None

    def __str__(self) -> str:
        return str(self.directory) if self.directory is not None else _redact(self.url)

    @property
    def _scheme(self) -> _Scheme:
        return _SCHEMES[self.url.split(":", 1)[0]]

    def exists(self) -> bool:
        """Whether an experiment is stored here (a damaged one included)."""
        return self._scheme.exists(self)

    def create(self, spec: Mapping[str, Any]) -> ExperimentStore:
        """Create the experiment, atomically: exactly one of several creators wins.

        Raises:
            ExperimentExistsError: one is stored here already; it is left as it is.
        """
        return self._scheme.create(self, spec)

    def open(self, *, readonly: bool = False) -> ExperimentStore:
        """Open the stored experiment; for writing, an older schema is migrated.

        Raises:
            ExperimentNotFoundError: nothing is stored here.
            StoreError: it is damaged, not a raysweep experiment, newer than this
                raysweep, or cannot be read (or written, unless ``readonly``).
        """
        return self._scheme.open(self, readonly)

    def check_writable(self) -> None:
        """Check that the experiment can be created or written here; writes nothing.

        Raises:
            SpecError: naming ``storage``: a file is where a folder must be, or a
                folder cannot be created or written by this user.
        """
        self._scheme.check_writable(self)


class _Scheme(Protocol):
    """What a URL scheme provides; one entry of :data:`_SCHEMES`.

    ``locate`` takes a storage URL and an experiment name (``run()``'s view),
    ``at`` the URL of one experiment (``raysweep status``'s view); both raise
    :class:`SpecError` for a URL of this scheme that they cannot use.
    """

    def locate(self, url: str, name: str) -> Location: ...

    def at(self, url: str) -> Location: ...

    def exists(self, location: Location) -> bool: ...

    def create(self, location: Location, spec: Mapping[str, Any]) -> ExperimentStore: ...

    def open(self, location: Location, readonly: bool) -> ExperimentStore: ...

    def check_writable(self, location: Location) -> None: ...

    def listing(self, url: str) -> list[Location]: ...


def _folder(location: Location) -> Path:
    if location.directory is None:  # only a Location made by hand can lack it
        raise StoreError(f"{location.url}: a file location needs its directory")
    return location.directory


class _FileScheme:
    """``file://`` URLs and plain paths: one SQLite file per experiment folder."""

    def locate(self, url: str, name: str) -> Location:
        return _file_location(self._path(url, "storage"), name)

    def at(self, url: str) -> Location:
        folder = self._path(url, "experiment")
        return Location(url=folder.as_uri(), directory=folder)

    @staticmethod
    def _path(url: str, field: str) -> Path:
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise SpecError(
                f"{field}: a file:// URL names a folder on this machine, got host "
                f"{parts.netloc!r} in {url!r}; mount it and give its path, e.g. file:///mnt/runs"
            )
        if parts.query or parts.fragment:
            raise SpecError(f"{field}: a file:// URL takes no query or fragment, got {url!r}")
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise SpecError(f"{field}: a file:// URL needs an absolute path, got {url!r}")
        return Path(path)

    def exists(self, location: Location) -> bool:
        return SQLiteStore.exists(_folder(location))

    def listing(self, url: str) -> list[Location]:
        folder = self._path(url, "storage")
        try:
            children = sorted(folder.iterdir())
        except FileNotFoundError:
            raise SpecError(f"storage: there is no folder {folder}") from None
        except NotADirectoryError:
            raise SpecError(f"storage: {folder} is a file, not a folder of experiments") from None
        except PermissionError:
            raise StoreError(f"cannot look into {folder}: permission denied") from None
        return [
            Location(url=child.absolute().as_uri(), directory=child.absolute())
            for child in children
            if _holds_experiment(child)
        ]

    def create(self, location: Location, spec: Mapping[str, Any]) -> ExperimentStore:
        return SQLiteStore.create(_folder(location), spec)

    def open(self, location: Location, readonly: bool) -> ExperimentStore:
        return SQLiteStore.open(_folder(location), readonly=readonly)

    def check_writable(self, location: Location) -> None:
        directory = _folder(location)
        probe = directory  # the nearest existing folder is where mkdir will start
        while True:
            try:
                mode = os.stat(probe).st_mode
                break
            except (FileNotFoundError, NotADirectoryError):
                probe = probe.parent
            except PermissionError:
                raise SpecError(
                    f"storage: this user may not look into {probe.parent} (needed for "
                    f"{directory}); choose a storage folder this user can write"
                ) from None
        if not stat.S_ISDIR(mode):
            raise SpecError(
                f"storage: {probe} is a file, but experiments are stored in folders under "
                f"storage; give a folder (or a file:// URL) to hold {directory.name!r}"
            )
        if not os.access(probe, os.W_OK | os.X_OK):
            what = "write" if probe == directory else "create folders in"
            raise SpecError(
                f"storage: this user may not {what} {probe} (needed for {directory}); "
                f"choose a storage folder this user can write"
            )
        db = SQLiteStore.db_path(directory)
        if probe == directory and db.exists() and not os.access(db, os.W_OK):
            raise SpecError(f"storage: {db} is read-only for this user")


#: URL scheme -> the store implementation behind it.
_SCHEMES: dict[str, _Scheme] = {"file": _FileScheme()}


def _supported() -> str:
    return ", ".join(f"{scheme}://" for scheme in _SCHEMES) + " or a folder path"


def _redact(url: str) -> str:
    """``url`` without a password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def _file_location(directory: Path, name: str) -> Location:
    folder = (directory / name).absolute()
    return Location(url=folder.as_uri(), directory=folder)


def _check_name(name: Any) -> None:
    if (
        not isinstance(name, str)
        or not name
        or name in (".", "..")
        or any(c in name for c in "/\\\0")
    ):
        raise SpecError(
            f"name: expected a non-empty experiment name usable as a folder name "
            f"(no '/'), got {name!r}"
        )


def _scheme_of(text: str, field: str) -> _Scheme | None:
    """The scheme of a URL (``None`` for a path); SpecError for an unsupported one."""
    match = _URL.match(text)
    if match is None:
        return None
    scheme = match.group(1).lower()
    if scheme not in _SCHEMES:
        raise SpecError(
            f"{field}: unsupported URL scheme {scheme!r} in {_redact(text)!r}; "
            f"supported: {_supported()}"
        )
    return _SCHEMES[scheme]


def locate(storage: str | os.PathLike[str], name: str) -> Location:
    """Where the experiment ``name`` lives in ``storage``; touches nothing on disk.

    Args:
        storage: a folder path (relative to the working directory, ``~`` expanded)
            or a URL such as ``file:///home/me/runs``.
        name: the experiment name, one folder name.

    Raises:
        SpecError: naming ``storage`` (not a path or URL, an unsupported scheme)
            or ``name``.

    Example:
        >>> str(locate("file:///tmp/runs", "demo"))
        '/tmp/runs/demo'
        >>> locate("/tmp/runs", "demo").url
        'file:///tmp/runs/demo'
    """
    _check_name(name)
    if isinstance(storage, os.PathLike):
        storage = os.fspath(storage)
    if not isinstance(storage, str):
        raise SpecError(
            f"storage: expected a folder path or a URL ({_supported()}), "
            f"got {type(storage).__name__} {storage!r}"
        )
    if "\0" in storage:
        raise SpecError(f"storage: a path cannot contain a NUL character, got {storage!r}")
    scheme = _scheme_of(storage, "storage")
    if scheme is not None:
        return scheme.locate(storage, name)
    return _file_location(Path(storage).expanduser(), name)


def experiments_in(storage: str | os.PathLike[str]) -> list[Location]:
    """The experiments stored under ``storage`` (a folder path or URL), by name.

    Folders without an experiment are left out; a damaged experiment is listed
    (opening it says what is wrong).

    Raises:
        SpecError: ``storage`` is not a folder (or an unsupported URL).
        StoreError: this user may not look into it.

    Example:
        >>> [str(loc) for loc in experiments_in("runs")]  # doctest: +SKIP
        ['runs/demo', 'runs/fit']
    """
    text = os.fspath(storage)
    scheme = _scheme_of(text, "storage")
    if scheme is None:
        return _SCHEMES["file"].listing(Path(text).expanduser().absolute().as_uri())
    return scheme.listing(text)


def open_experiment(
    path_or_url: str | os.PathLike[str], *, readonly: bool = True
) -> ExperimentStore:
    """Open a stored experiment given its folder, its ``experiment.db``, or a URL.

    What ``raysweep status`` and ``raysweep export`` use. Read-only (the
    default) never writes anything, so it is safe while a run writes the same
    experiment, and works on folders this user may only read.

    Raises:
        ExperimentNotFoundError: no experiment there; when the path is a storage
            folder holding experiments, the message lists them.
        StoreError: the experiment is damaged, not a raysweep experiment, newer
            than this raysweep, or cannot be read.
        SpecError: an unsupported URL scheme.

    Example:
        >>> store = open_experiment("runs/demo")  # doctest: +SKIP
        >>> store.read_spec()["name"]  # doctest: +SKIP
        'demo'
    """
    text = os.fspath(path_or_url)
    scheme = _scheme_of(text, "experiment")
    location = scheme.at(text) if scheme is not None else None
    if location is not None and location.directory is None:
        return location.open(readonly=readonly)
    given = Path(text) if location is None else _folder(location)
    try:
        is_file = given.is_file()
        if is_file and given.name != DB_FILENAME:
            raise ExperimentNotFoundError(
                f"{given} is not an experiment folder or an {DB_FILENAME} file"
            )
        if is_file:
            return SQLiteStore.open_file(given, readonly=readonly)
        if not SQLiteStore.exists(given) and given.is_dir():
            inside = sorted(p.name for p in given.iterdir() if SQLiteStore.exists(p))
            if inside:
                shown = ", ".join(os.path.join(str(given), n) for n in inside[:5])
                more = f" and {len(inside) - 5} more" if len(inside) > 5 else ""
                raise ExperimentNotFoundError(
                    f"{given} holds experiments rather than being one; pass one of: {shown}{more}"
                )
        if not is_file and not given.exists():
            raise ExperimentNotFoundError(_not_there(given))
    except PermissionError:
        raise StoreError(f"cannot look into {given}: permission denied") from None
    return SQLiteStore.open(given, readonly=readonly)


def _not_there(given: Path) -> str:
    """Why nothing is at ``given``, with the experiments beside it named like it."""
    parent = given.parent
    if not parent.is_dir():
        return f"no experiment found at {given}: there is no folder {parent}"
    names = sorted(p.name for p in parent.iterdir() if _holds_experiment(p))
    close = difflib.get_close_matches(given.name, names, n=3, cutoff=0.6)
    if close:
        shown = " or ".join(os.path.join(str(parent), n) for n in close)
        return f"no experiment found at {given}: no such folder; did you mean {shown}?"
    return f"no experiment found at {given}: no such folder"


def _holds_experiment(folder: Path) -> bool:
    """Whether ``folder`` holds an experiment; ``False`` where this user may not look."""
    try:
        return SQLiteStore.exists(folder)
    except StoreError:
        return False
