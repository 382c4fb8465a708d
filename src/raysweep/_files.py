"""Writing a whole file so that nobody ever reads half of it."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["write_text_atomic"]


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` whole or not at all.

    A regular file is written under a temporary name beside it and renamed into
    place, so a reader (a browser reloading a report, a script reading an export)
    and a full disk never leave half a file where the last one was. The file gets
    the usual permissions (the umask's), unlike a ``tempfile`` (0600). Special
    files (``/dev/stdout``, a FIFO) are written directly.

    Raises:
        OSError: the file could not be written; no temporary file is left behind.
    """
    target = Path(path)
    direct = target.exists() and not target.is_file() and not target.is_dir()
    tmp = target if direct else target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        if not direct:
            os.replace(tmp, target)
    except OSError:
        if not direct:
            tmp.unlink(missing_ok=True)
        raise
    return target
