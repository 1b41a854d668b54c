"""store.py: opening stores, and every way opening can fail without touching the file."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

import mlmd_exercise as mx
from conftest import digest, write
from raw_mlmd import pb, metadata_store


def test_create_makes_a_store_any_mlmd_client_reads(db_path: Path):
    store = mx.open_store(db_path, create=True)
    mx.Tracker(store).log_dataset(write(db_path.parent / "d.csv", "a"), split="train")
    config = pb.ConnectionConfig()
    config.sqlite.filename_uri = str(db_path)
    other = metadata_store.MetadataStore(config)
    [artifact] = other.get_artifacts_by_type("DataSet")
    assert artifact.properties["split"].string_value == "train"
    assert str(store) == str(db_path)


def test_read_only_open_never_writes(db_path: Path):
    mx.Tracker(db_path).log_dataset(write(db_path.parent / "d.csv", "a"), split="train")
    before = digest(db_path)
    reader = mx.open_store(db_path)
    assert mx.count_by_state(reader) == {}
    assert mx.lineage_graph(reader).artifacts
    assert digest(db_path) == before


def _text(p: Path) -> Path:
    p.write_text("hello, not a database\n")
    return p


def _random(p: Path) -> Path:
    p.write_bytes(os.urandom(4096))
    return p


def _empty(p: Path) -> Path:
    p.touch()
    return p


def _other_app(p: Path) -> Path:
    con = sqlite3.connect(p)
    con.execute("CREATE TABLE notes (body TEXT)")
    con.commit()
    con.close()
    return p


@pytest.mark.parametrize(
    "make, create, message",
    [
        (lambda p: p.parent, False, "'{parent}' is a directory, not a store file"),
        (lambda p: p.parent, True, "'{parent}' is a directory, not a store file"),
        (lambda p: p.parent / "nodir" / "m.db", True, "directory '{parent}/nodir' for store '{parent}/nodir/m.db' does not exist"),
        (lambda p: p, False, "no MLMD store at '{path}': record a run first ('mlmd-exercise run', "
                                "or mlmd_exercise.Tracker in Python)"),
        (_text, False, "'{path}' is not an SQLite database"),
        (_text, True, "'{path}' is not an SQLite database"),
        (_random, True, "'{path}' is not an SQLite database"),
        (_empty, False, "'{path}' is not an MLMD store"),
        (_other_app, False, "'{path}' is an SQLite database of another application (it has table 'notes'): refusing to add MLMD's tables to it"),
        (_other_app, True, "'{path}' is an SQLite database of another application (it has table 'notes'): refusing to add MLMD's tables to it"),
    ],
    ids=["dir", "dir-create", "no-parent", "missing", "text", "text-create", "random-create",
         "empty", "other-app", "other-app-create"],
)
def test_open_errors_name_the_location_and_leave_the_file(tmp_path, make, create, message):
    path = make(tmp_path / "m.db")
    existed, before = path.exists(), digest(path)
    with pytest.raises(mx.StoreError) as e:
        mx.open_store(path, create=create)
    assert str(e.value) == message.format(path=path, parent=tmp_path)
    assert digest(path) == before
    assert path.exists() == existed


def test_a_store_collected_while_the_open_files_guard_is_held_does_not_hang(tmp_path):
    """The garbage collector may close a dropped Store at any moment, even while this thread
    is inside open_store holding the guard of the open-file registry (seen: a hung suite)."""
    import gc
    import threading

    from mlmd_exercise.store import sqlite as store_module

    dropped = [mx.open_store(tmp_path / "m.db", create=True)]
    done = threading.Event()

    def collect_inside_the_guard() -> None:
        with store_module.open_files_guard:
            dropped.clear()
            gc.collect()  # runs the dropped store's finalizer, which takes the guard too
        done.set()

    threading.Thread(target=collect_inside_the_guard, daemon=True).start()
    assert done.wait(10), "closing a store while the guard was held deadlocked"


def test_a_native_read_of_an_sqlite_store_opens_one_connection(db_path: Path, run_cli, monkeypatch):
    """The file is checked once per open, on the connection the native backend then reads with:
    opening a store and walking its lineage, in the API and in `lineage`, is one sqlite3.connect."""
    tracker = mx.Tracker(mx.open_store(db_path, create=True, backend="native"))
    with tracker.execution("Trainer", inputs={"examples": tracker.dataset(write(db_path.parent / "d.csv", "a"))}) as run:
        run.log_model(write(db_path.parent / "m.joblib", "m"), name="M")
    model = run.outputs["model"].id
    del tracker, run
    opened = []
    connect = sqlite3.connect

    def counted(*args, **kwargs):
        opened.append(args[0])
        return connect(*args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", counted)
    store = mx.open_store(db_path, backend="native")
    graph = mx.walk(store, artifact_id=model, direction="upstream")
    assert len(graph.executions) == 1 and len(graph.artifacts) == 2
    assert len(opened) == 1
    del store
    opened.clear()
    r = run_cli("--backend", "native", "--db", db_path, "lineage", "--artifact", model)
    assert r.code == 0 and "Trainer" in r.out
    assert len(opened) == 1


def test_a_closed_store_refuses_to_be_used_and_is_never_opened_again_behind_its_back(db):
    store = mx.open_store(db, create=True)
    tracker = mx.Tracker(store)
    with tracker.execution("Trainer"):
        pass
    store.close()
    with pytest.raises(mx.StoreError):
        store.backend.executions()
    with pytest.raises(mx.StoreError):
        with tracker.execution("Trainer"):
            pass
    assert mx.count_by_state(mx.open_store(db)) == {"COMPLETE": 1}
