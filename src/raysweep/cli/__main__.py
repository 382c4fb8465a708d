"""``python -m raysweep.cli``: the same as the ``raysweep`` script."""

from __future__ import annotations

from raysweep.cli.main import main

if __name__ == "__main__":
    main()
