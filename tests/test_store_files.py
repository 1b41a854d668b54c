"""SQLite store files in odd places and odd states, on both backends: read-only media, a full
disk, damage, an empty file, a file deleted or replaced under a writer, and `backup`.

The media are real: a read-only bind mount and an 8 MB tmpfs (both need root; the tests skip
where mounting is not permitted, saying so)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator, List, Union

import pytest

import mlmd_exercise as mx
from conftest import NATIVE_TOO, STORES, backend_of, digest, run_module, server_admin, server_base

SQLITE = [s for s in STORES if s.startswith("sqlite")]
POSTGRES = [s for s in STORES if s.startswith("postgresql")]


@pytest.fixture(params=SQLITE)
def backend(request) -> Iterator[str]:
    """Each backend on SQLite ($MLMD_BACKEND set for the test and its subprocesses)."""
    with backend_of(request.param):
        yield request.param


@contextlib.contextmanager
def mounted(target: Path, *commands: List[str]) -> Iterator[Path]:
    """`target` with `commands` (each a `mount` argument list ending before the target) run
    on it, unmounted after; the test is skipped where mounting is not permitted."""
    target.mkdir(parents=True, exist_ok=True)
    done = 0
    try:
        for args in commands:
            proc = subprocess.run(["mount", *args, str(target)], capture_output=True, text=True)
            if proc.returncode != 0:
                pytest.skip(f"cannot mount here ({proc.stderr.strip() or 'mount failed'}): needs root")
            done += 1
        yield target
    finally:
        for _ in range(done):
            subprocess.run(["umount", "--lazy", str(target)], capture_output=True)  # even if a file is still open there


def record(db: Union[Path, str], runs: int, **params) -> mx.Tracker:
    tracker = mx.Tracker(db, experiment="files")
    for i in range(runs):
        with tracker.execution("Trainer", params={"i": i, **params}) as run:
            run.log_metrics({"accuracy": 0.5})
    return tracker


def made(db: Path, runs: int) -> None:
    """A closed store of `runs` runs, nothing left in its write-ahead log."""
    record(db, runs).store.close()
    with contextlib.closing(sqlite3.connect(db)) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for extra in ("-wal", "-shm"):
        Path(f"{db}{extra}").unlink(missing_ok=True)


def states(db: Path, cwd: Path) -> subprocess.CompletedProcess:
    return run_module(["states", "--db", db], cwd)


def fill(folder: Path) -> Path:
    """Fills the file system of `folder` to the last byte; returns the filler to delete."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"x" * 4096)
    except OSError:
        pass
    try:
        while True:
            os.write(fd, b"x")
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


# -- read-only media ------------------------------------------------------------------------


def test_a_store_on_a_read_only_mount_is_read_and_nothing_is_made_beside_it(backend, tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    made(source / "metadata.db", 3)
    before = sorted(p.name for p in source.iterdir())
    with mounted(tmp_path / "ro", ["--bind", str(source)], ["-o", "remount,bind,ro"]) as ro:
        for args in (["states"], ["check"], ["ls", "executions"], ["show", "execution", "1"]):
            proc = run_module([*args, "--db", ro / "metadata.db"], tmp_path)
            assert proc.returncode == 0, (args, proc.stderr)
            assert "read as it is on disk" in proc.stderr  # said, once, as a warning
        assert states(ro / "metadata.db", tmp_path).stdout.split() == ["COMPLETE", "3"]
        written = run_module(["import", _lines(tmp_path), "--db", ro / "metadata.db"], tmp_path)
        assert written.returncode == 2 and "read-only" in written.stderr, written.stderr
    assert sorted(p.name for p in source.iterdir()) == before


def test_pending_writes_in_the_log_on_a_read_only_mount_are_refused_not_missed(backend, tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    db = source / "metadata.db"
    made(db, 1)
    keep = record(db, 2)  # commits in the write-ahead log, not yet in the file
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(db, copy / "metadata.db")
    shutil.copy(f"{db}-wal", copy / "metadata.db-wal")  # the store and its log, without the -shm
    keep.store.close()
    assert (copy / "metadata.db-wal").stat().st_size > 0
    with mounted(tmp_path / "ro", ["--bind", str(copy)], ["-o", "remount,bind,ro"]) as ro:
        proc = states(ro / "metadata.db", tmp_path)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert "latest writes are still in 'metadata.db-wal'" in proc.stderr and "copy the folder" in proc.stderr
    # Copied somewhere writable, as the message says, the store holds all three runs.
    shutil.copytree(copy, tmp_path / "writable")
    assert states(tmp_path / "writable" / "metadata.db", tmp_path).stdout.split() == ["COMPLETE", "3"]


def _lines(folder: Path) -> Path:
    lines = folder / "runs.jsonl"
    lines.write_text(json.dumps({"name": "imported"}) + "\n")
    return lines


# -- an empty file --------------------------------------------------------------------------


@pytest.mark.parametrize("args", [["run", "--dataset", "iris"], ["import", "LINES"],
                                  ["prune", "--older-than", "1d", "--yes"], ["abandon"]])
def test_an_empty_file_is_not_made_a_store(backend, tmp_path, args):
    db = tmp_path / "metadata.db"
    db.touch()
    args = [str(_lines(tmp_path)) if a == "LINES" else a for a in args]
    proc = run_module([*args, "--db", db], tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"store '{db}' is an empty file (0 bytes)" in proc.stderr and "nothing was written" in proc.stderr
    assert db.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("metadata")) == ["metadata.db"]


# -- a full disk ----------------------------------------------------------------------------


def test_a_full_disk_rolls_the_write_back_and_says_so_and_the_store_records_again_once_there_is_room(
        backend, tmp_path):
    with mounted(tmp_path / "small", ["-t", "tmpfs", "-o", "size=8m", "tmpfs"]) as small:
        db = small / "metadata.db"
        tracker = record(db, 2)
        filler = fill(small)
        for _ in range(2):  # the second write too: no "Transaction already open" after the first
            with pytest.raises(mx.StoreError) as refused:
                with tracker.execution("Trainer", params={"big": "y" * 200_000}):
                    pass
            assert str(refused.value) == (f"the disk holding store '{db}' is full: the write was rolled back, "
                                          "nothing of it is recorded; free some space and run it again")
        filler.unlink()
        with tracker.execution("Trainer", params={"after": 1}):
            pass
        tracker.store.close()
        assert states(db, tmp_path).stdout.split() == ["COMPLETE", "3"]
        check = run_module(["check", "--db", db], tmp_path)
        assert check.returncode == 0 and check.stdout.strip() == "store is consistent", check.stdout


def test_a_store_ml_metadata_cannot_open_again_while_the_disk_is_full_refuses_as_the_full_disk(
        tmp_path, monkeypatch):
    """After a write the disk broke off, ml-metadata's connection is opened again; under load a
    PostgreSQL server has refused that opening with nothing but "PostgreSQL metadata source
    error: " while the disk was still full. That refusal is made here, in that opening: once (the
    next try opens it, and a read goes on while the disk is still full), then every time (the
    call is refused as the full disk, after every try)."""
    if not NATIVE_TOO:
        pytest.skip("ml-metadata is not installed here")
    from ml_metadata import errors

    from mlmd_exercise.store.mlmd import backend as mlmd_backend

    monkeypatch.setattr(mlmd_backend, "REOPEN_WAITS", (0.0, 0.01, 0.01))
    with backend_of("sqlite-mlmd"), mounted(tmp_path / "small", ["-t", "tmpfs", "-o", "size=8m", "tmpfs"]) as small:
        db = small / "metadata.db"
        tracker = record(db, 2)
        filler = fill(small)
        full = (f"the disk holding store '{db}' is full: the write was rolled back, "
                "nothing of it is recorded; free some space and run it again")
        backend, opened, refusing = tracker.store.backend, [], [1]
        reopen = backend._reopen

        def refused():
            opened.append(1)
            if refusing[0]:
                refusing[0] -= 1
                raise errors.InternalError("PostgreSQL metadata source error: ")
            return reopen()

        monkeypatch.setattr(backend, "_reopen", refused)
        with pytest.raises(mx.StoreError, match="is full"):
            with tracker.execution("Trainer", params={"big": "y" * 200_000}):
                pass
        assert mx.count_by_state(tracker.store) == {"COMPLETE": 2} and len(opened) == 2  # refused, then opened
        with pytest.raises(mx.StoreError, match="is full"):
            with tracker.execution("Trainer", params={"big": "y" * 200_000}):
                pass
        refusing[0], opened[:] = 10, []
        with pytest.raises(mx.StoreError) as refused_call:
            mx.count_by_state(tracker.store)
        assert str(refused_call.value) == full and len(opened) == len(mlmd_backend.REOPEN_WAITS)
        filler.unlink()
        refusing[0] = 0
        with tracker.execution("Trainer", params={"after": 1}):
            pass
        tracker.store.close()
        assert states(db, tmp_path).stdout.split() == ["COMPLETE", "3"]


@pytest.mark.parametrize("store", POSTGRES)
def test_a_full_disk_under_postgresql_rolls_the_write_back_and_says_so(store):
    """The store's database in a tablespace on a small tmpfs (the server's own files and its
    write-ahead log stay where they are, so the server itself never runs out of room)."""
    base = server_base("postgresql")
    name = f"t_full_{os.getpid()}_{store.replace('-', '_')}"
    # Outside pytest's folders, which the server's user may not enter.
    where = Path(tempfile.mkdtemp(prefix="mlmd-full-"))
    where.chmod(0o755)
    try:
        with backend_of(store), mounted(where, ["-t", "tmpfs", "-o", "size=16m", "tmpfs"]) as small:
            space = small / "space"
            space.mkdir()
            if os.getuid() == 0:  # the throwaway server runs as the postgres user (scripts/with-postgres)
                shutil.chown(space, "postgres", "postgres")
            admin = server_admin(base + "postgres")
            filler, tracker = small / "filler", None
            try:
                admin.run(f"CREATE TABLESPACE {name} LOCATION '{space}'")
                admin.run(f"CREATE DATABASE {name} TABLESPACE {name}")
                tracker = record(base + name, 2)
                fill(small)
                for _ in range(2):
                    with pytest.raises(mx.StoreError) as refused:
                        for i in range(50):  # until the table's file cannot grow
                            with tracker.execution("Trainer", params={"big": os.urandom(50_000).hex(), "i": i}):
                                pass
                    assert str(refused.value).endswith("is full: the write was rolled back, nothing of it is recorded; "
                                                       "free some space and run it again")
                recorded = mx.count_by_state(tracker.store)
                filler.unlink()
                with tracker.execution("Trainer", params={"after": 1}):
                    pass
                assert mx.count_by_state(tracker.store) == {"COMPLETE": recorded["COMPLETE"] + 1}
                assert mx.check_store(tracker.store) == []
            finally:
                # Room first: dropping the database checkpoints, and the server must never be left
                # with pages it cannot write (every later checkpoint of the server would fail).
                filler.unlink(missing_ok=True)
                if tracker is not None:
                    tracker.store.close()
                admin.run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                admin.run(f"DROP TABLESPACE IF EXISTS {name}")
                admin.close()
    finally:
        where.rmdir()


def test_a_closed_store_on_a_full_disk_is_still_read(backend, tmp_path):
    with mounted(tmp_path / "small", ["-t", "tmpfs", "-o", "size=8m", "tmpfs"]) as small:
        db = small / "metadata.db"
        made(db, 2)
        fill(small)
        for args in (["states"], ["check"]):
            proc = run_module([*args, "--db", db], tmp_path)
            assert proc.returncode == 0, (args, proc.stderr)
        assert states(db, tmp_path).stdout.split() == ["COMPLETE", "2"]


# -- damage ---------------------------------------------------------------------------------


def damaged_copy(db: Path, to: Path, where: str = "middle") -> Path:
    """A copy of `db` with pages overwritten by other bytes: one in the middle of the file, or its
    last eight (the tables' last pages, which the next rows appended to them read: which table's
    is last depends on how long the runs' recorded environment is, so one page was not enough)."""
    shutil.copy(db, to)
    pages = to.stat().st_size // 4096
    first, count = (pages // 2, 1) if where == "middle" else (pages - 8, 8)
    with to.open("r+b") as f:
        f.seek(first * 4096)
        f.write(bytes(range(256)) * 16 * count)
    return to


@pytest.fixture(scope="module")
def sound(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("sound") / "metadata.db"
    made(db, 300)
    return db


def test_check_finds_damage_mid_file_and_exits_2(backend, sound, tmp_path):
    db = damaged_copy(sound, tmp_path / "metadata.db")
    before = digest(db)
    proc = run_module(["check", "--db", db], tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"store '{db}' is damaged: SQLite's check of the file found '" in proc.stderr
    assert digest(db) == before
    assert run_module(["check", "--db", sound], tmp_path).returncode == 0


def test_an_old_copy_put_back_beside_a_newer_log_is_found_damaged(backend, tmp_path):
    """What a plain copy of the file leads to: the copy restored while the store's -wal of later
    runs is still beside it. `states` may answer; `check` finds the damage."""
    db = tmp_path / "metadata.db"
    made(db, 20)
    shutil.copy(db, tmp_path / "old.db")
    writer = ("import os, sys, shutil, mlmd_exercise as mx\n"
              "t = mx.Tracker(sys.argv[1])\n"
              "for i in range(400):  # past SQLite's checkpoint at 1,000 pages: the log starts over\n"
              "    with t.execution('Trainer', params={'i': i, 'pad': 'p' * 300}): pass\n"
              "os._exit(0)  # killed: the log is never folded into the file\n")
    proc = subprocess.run([sys.executable, "-c", writer, str(db)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert Path(f"{db}-wal").stat().st_size > 0
    Path(f"{db}-shm").unlink()
    shutil.copy(tmp_path / "old.db", db)  # the old copy back, the newer -wal beside it
    proc = run_module(["check", "--db", db], tmp_path)
    assert proc.returncode == 2 and f"store '{db}' is damaged: SQLite's check of the file found" in proc.stderr


def test_a_write_into_damage_is_rolled_back_and_says_the_store_is_damaged(backend, sound, tmp_path):
    db = damaged_copy(sound, tmp_path / "metadata.db", "last")
    with pytest.raises(mx.StoreError, match=r"is damaged \(database disk image is malformed\): the write was "
                                            r"rolled back, nothing of it is recorded; 'mlmd-exercise check'"):
        record(db, 50)


# -- the file deleted or replaced under a writer ---------------------------------------------


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_store_deleted_or_replaced_under_a_writer_is_noticed_before_a_write_is_reported(
        backend, tmp_path, how):
    folder = tmp_path / "store"
    folder.mkdir()
    db = folder / "metadata.db"
    tracker = record(db, 1)
    if how == "deleted":
        shutil.rmtree(folder)
    else:  # an older copy put back while the writer goes on
        shutil.copy(db, tmp_path / "older.db")
        os.replace(tmp_path / "older.db", db)
    for i in range(2):
        with pytest.raises(mx.StoreError) as refused:
            with tracker.execution("Trainer", params={"i": i}):
                pass
        assert str(refused.value) == (f"store '{db}' was {how if how == 'deleted' else 'replaced by another file'}"
                                      " while this process recorded into it: this write was not recorded; "
                                      "open the store again")
    tracker.store.close()
    if how == "replaced":
        assert states(db, tmp_path).stdout.split() == ["COMPLETE", "1"]


# -- backup ---------------------------------------------------------------------------------


def test_backup_copies_what_is_still_in_the_log_while_a_writer_holds_the_store(backend, tmp_path):
    db = tmp_path / "metadata.db"
    tracker = record(db, 5)
    assert Path(f"{db}-wal").stat().st_size > 0  # the runs are in the log, not yet in the file
    shutil.copy(db, tmp_path / "plain.db")  # what a plain copy gets
    proc = run_module(["backup", tmp_path / "copy.db", "--db", db], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"backed up {db} to {tmp_path / 'copy.db'} (") and "bytes, checked, " in proc.stdout
    with tracker.execution("Trainer", params={"after": 1}):  # the writer goes on
        pass
    tracker.store.close()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("copy")) == ["copy.db"]
    assert states(tmp_path / "copy.db", tmp_path).stdout.split() == ["COMPLETE", "5"]
    assert states(db, tmp_path).stdout.split() == ["COMPLETE", "6"]
    plain = states(tmp_path / "plain.db", tmp_path)
    assert plain.stdout.split() != ["COMPLETE", "5"]  # why a plain copy is not a backup


def test_backup_never_replaces_a_file_and_a_failed_one_leaves_nothing(run_cli, tmp_path):
    db = tmp_path / "metadata.db"
    made(db, 1)
    existing = tmp_path / "existing.db"
    existing.write_text("keep me")
    result = run_cli("backup", existing, "--db", db)
    assert result.code == 2 and f"'{existing}' exists already" in result.err
    assert existing.read_text() == "keep me"
    (tmp_path / "cut.db.partial").write_text("a backup cut short")
    result = run_cli("backup", tmp_path / "cut.db", "--db", db)
    assert result.code == 2 and "'cut.db.partial' exists" in result.err.replace(str(tmp_path) + "/", "")
    (tmp_path / "cut.db.partial").unlink()
    result = run_cli("backup", tmp_path / "no" / "such" / "x.db", "--db", db)
    assert result.code == 2 and "directory" in result.err and "does not exist" in result.err
    for server in ("postgresql://u@127.0.0.1:1/db", "mysql://u@127.0.0.1:1/db"):
        result = run_cli("backup", tmp_path / "x.db", "--db", server)
        assert result.code == 2 and result.err.count("\n") == 1 and "cannot reach" in result.err, result.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.db", "metadata.db", "metadata.db.lock"]


def test_backup_of_a_damaged_store_is_refused_and_leaves_nothing(run_cli, sound, tmp_path):
    db = damaged_copy(sound, tmp_path / "metadata.db")
    result = run_cli("backup", tmp_path / "copy.db", "--db", db)
    assert result.code == 2 and "is damaged: no backup was made" in result.err, result.err
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("copy")]
