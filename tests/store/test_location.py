"""Stores by path or URL: locate() parses without touching disk, Location opens and creates."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from raysweep.errors import (
    ExperimentExistsError,
    ExperimentNotFoundError,
    SpecError,
    StoreError,
)
from raysweep.store import Location, locate, open_experiment


def test_a_path_and_a_file_url_are_the_same_place(tmp_path: Path) -> None:
    """A folder path and the file:// URL of that folder locate the same experiment folder."""
    by_path = locate(tmp_path / "runs", "demo")
    by_url = locate((tmp_path / "runs").as_uri(), "demo")
    assert by_path == by_url
    assert by_path.directory == tmp_path / "runs" / "demo"
    assert by_path.url == (tmp_path / "runs" / "demo").as_uri()
    assert str(by_path) == str(tmp_path / "runs" / "demo")


def test_locate_touches_nothing_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """locate() creates no folder; a relative storage becomes absolute at once."""
    monkeypatch.chdir(tmp_path)
    location = locate("runs", "demo")
    assert location.directory == tmp_path / "runs" / "demo"
    assert not (tmp_path / "runs").exists()
    assert not location.exists()


def test_unsupported_scheme_names_storage_and_the_supported_ones() -> None:
    """postgresql:// (not yet a store) is a SpecError naming storage, the scheme and file://."""
    with pytest.raises(SpecError) as caught:
        locate("postgresql://me:secret@db/sweeps", "demo")
    message = str(caught.value)
    assert message.startswith("storage:")
    assert "'postgresql'" in message
    assert "file://" in message
    assert "secret" not in message


@pytest.mark.parametrize(
    ("storage", "fragment"),
    [
        ("file://otherhost/runs", "host"),
        ("file://relative/runs", "host"),
        ("file:///runs?x=1", "query"),
        (42, "folder path or a URL"),
    ],
)
def test_bad_storage_is_a_spec_error(storage: object, fragment: str) -> None:
    """A remote, relative or decorated file:// URL, or a non-path, is refused naming storage."""
    with pytest.raises(SpecError, match=fragment) as caught:
        locate(storage, "demo")  # type: ignore[arg-type]
    assert str(caught.value).startswith("storage:")


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", None])
def test_bad_name_is_a_spec_error(tmp_path: Path, name: object) -> None:
    """A name that is not one folder name is refused naming name."""
    with pytest.raises(SpecError, match=r"^name:"):
        locate(tmp_path, name)  # type: ignore[arg-type]


def test_location_pickles(tmp_path: Path) -> None:
    """A Location survives a pickle round trip (it travels to Ray workers and subprocesses)."""
    location = locate(tmp_path / "runs", "demo")
    assert pickle.loads(pickle.dumps(location)) == location


def test_create_then_open(tmp_path: Path) -> None:
    """create() makes the experiment once; open() reads it; a second create() is refused."""
    location = locate(tmp_path.as_uri(), "demo")
    location.create({"kind": "sweep", "name": "demo"}).close()
    assert location.exists()
    with pytest.raises(ExperimentExistsError, match="resume"):
        location.create({"kind": "sweep", "name": "other"})
    store = location.open(readonly=True)
    assert store.read_spec()["name"] == "demo"
    store.close()


def test_open_of_nothing_is_not_found(tmp_path: Path) -> None:
    """Opening a location without an experiment names its folder."""
    with pytest.raises(ExperimentNotFoundError, match="nothing"):
        locate(tmp_path, "nothing").open()


def test_check_writable_refuses_a_file_as_storage(tmp_path: Path) -> None:
    """A storage path that is a file is a SpecError naming storage; nothing is written."""
    (tmp_path / "runs").write_text("not a folder")
    with pytest.raises(SpecError, match=r"^storage: .*runs is a file"):
        locate(tmp_path / "runs" / "deeper", "demo").check_writable()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]


def test_check_writable_accepts_a_folder_to_be_made(tmp_path: Path) -> None:
    """A storage folder that does not exist yet under a writable one is fine, and not made."""
    locate(tmp_path / "a" / "b", "demo").check_writable()
    assert not (tmp_path / "a").exists()


def _experiment(folder: Path) -> None:
    locate(folder.parent, folder.name).create({"kind": "sweep", "name": folder.name}).close()


@pytest.mark.parametrize("form", ["folder", "db", "url", "db-url"])
def test_open_experiment_forms(tmp_path: Path, form: str) -> None:
    """open_experiment takes the folder, its experiment.db, or either as a file:// URL."""
    folder = tmp_path / "runs" / "demo"
    _experiment(folder)
    target = {
        "folder": str(folder),
        "db": str(folder / "experiment.db"),
        "url": folder.as_uri(),
        "db-url": (folder / "experiment.db").as_uri(),
    }[form]
    store = open_experiment(target)
    try:
        assert store.read_spec()["name"] == "demo"
        with pytest.raises(Exception, match="read-only"):
            store.set_meta("x", 1)
    finally:
        store.close()


def test_open_experiment_of_a_storage_folder_lists_experiments(tmp_path: Path) -> None:
    """Given the storage folder, the error lists the experiments it holds."""
    _experiment(tmp_path / "runs" / "b")
    _experiment(tmp_path / "runs" / "a")
    with pytest.raises(ExperimentNotFoundError, match="holds experiments") as caught:
        open_experiment(tmp_path / "runs")
    assert str(caught.value).index("runs/a") < str(caught.value).index("runs/b")


def test_open_experiment_of_another_file(tmp_path: Path) -> None:
    """A file that is not named experiment.db is not taken for an experiment."""
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ExperimentNotFoundError, match="not an experiment folder"):
        open_experiment(tmp_path / "notes.txt")


def test_open_experiment_refuses_an_unknown_scheme() -> None:
    """An experiment URL of an unsupported scheme is a SpecError listing the supported ones."""
    with pytest.raises(SpecError, match="file://"):
        open_experiment("s3://bucket/runs/demo")


def test_a_location_without_its_directory_is_an_error() -> None:
    """A file Location made by hand without a directory fails clearly instead of guessing."""
    with pytest.raises(StoreError, match="directory"):
        Location(url="file:///x/demo", directory=None).exists()


def test_check_writable_refuses_a_file_deeper_in_the_path(tmp_path: Path) -> None:
    """A file anywhere above the experiment folder is named, not a folder below it."""
    (tmp_path / "runs").write_text("not a folder")
    with pytest.raises(SpecError, match=r"runs is a file"):
        locate(tmp_path / "runs" / "a" / "b", "demo").check_writable()


def test_experiment_url_errors_name_the_experiment() -> None:
    """A bad file:// URL given to status/export names the experiment argument, not storage."""
    with pytest.raises(SpecError, match=r"^experiment: .*host"):
        open_experiment("file://otherhost/runs/demo")
