"""Damaged, empty, truncated and foreign files: one StoreError line, and nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from raysweep.errors import StoreError
from raysweep.store import ExperimentStore, locate
from tests.store.broken import AT_OPEN, BROKEN
from tests.store.helpers import fingerprint


@pytest.mark.parametrize("case", AT_OPEN)
@pytest.mark.parametrize("readonly", [True, False])
def test_a_bad_file_is_refused_when_opened(tmp_path: Path, case: str, readonly: bool) -> None:
    """Opening (to read, or to resume) a bad file raises one line naming it; it stays as it was."""
    make, fragment = BROKEN[case]
    folder = tmp_path / "runs" / "exp"
    make(folder)
    before = fingerprint(folder)
    with pytest.raises(StoreError) as caught:
        locate(tmp_path / "runs", "exp").open(readonly=readonly)
    message = str(caught.value)
    assert str(folder / "experiment.db") in message
    assert fragment in message
    assert "\n" not in message
    assert fingerprint(folder) == before


def _read_everything(store: ExperimentStore) -> None:
    store.read_spec()
    store.trials()
    store.count_by_state()


@pytest.mark.parametrize(
    "case", ["no spec", "spec not json", "unknown trial state", "trial config"]
)
def test_bad_rows_fail_when_read(tmp_path: Path, case: str) -> None:
    """A store with a bad spec or trial row opens, and reading that row names the file and row."""
    make, fragment = BROKEN[case]
    folder = tmp_path / "runs" / "exp"
    make(folder)
    before = fingerprint(folder)
    store = locate(tmp_path / "runs", "exp").open(readonly=True)
    try:
        with pytest.raises(StoreError, match=r"experiment\.db") as caught:
            _read_everything(store)
    finally:
        store.close()
    assert fragment in str(caught.value)
    assert fingerprint(folder) == before


def test_a_store_damaged_after_opening_fails_with_a_store_error(tmp_path: Path) -> None:
    """A file overwritten while a reader holds it open gives a StoreError, not an sqlite3 error."""
    folder = tmp_path / "runs" / "exp"
    BROKEN["spec mode"][0](folder)  # any healthy-at-the-SQL-level store
    store = locate(tmp_path / "runs", "exp").open(readonly=True)
    try:
        (folder / "experiment.db").write_bytes(b"\0" * 8192)
        with pytest.raises(StoreError, match=r"experiment\.db"):
            store.trials()
    finally:
        store.close()
