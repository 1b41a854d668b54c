"""locking.py: the lock file is re-entrant here and exclusive across processes."""

from __future__ import annotations

import subprocess
import sys
import threading

from mlmd_exercise.store.locking import FileLock, advisory_key

TRY_LOCK = ("import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR)\n"
            "try:\n    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB); print('free')\n"
            "except BlockingIOError:\n    print('held')")


def _seen_from_another_process(path) -> str:
    return subprocess.run([sys.executable, "-c", TRY_LOCK, str(path)], capture_output=True,
                          text=True, check=True).stdout.strip()


def test_a_file_lock_is_reentrant_and_excludes_other_processes(tmp_path):
    lock = FileLock(tmp_path / "m.db.lock")
    assert _seen_from_another_process(lock.path) == "free"
    with lock:
        with lock:  # a write inside a write, as log_artifact inside a run
            assert _seen_from_another_process(lock.path) == "held"
        assert _seen_from_another_process(lock.path) == "held"
    assert _seen_from_another_process(lock.path) == "free"
    lock.close()


def test_a_file_lock_excludes_other_threads(tmp_path):
    lock = FileLock(tmp_path / "m.db.lock")
    order = []

    def other():
        with lock:
            order.append("other")

    with lock:
        thread = threading.Thread(target=other)
        thread.start()
        thread.join(0.2)
        order.append("first")
        assert thread.is_alive()  # waiting for us
    thread.join(5)
    assert order == ["first", "other"]


def test_advisory_keys_are_stable_and_distinct():
    assert advisory_key("store") == advisory_key("store")
    assert advisory_key("store") != advisory_key("create-database", "store")
    assert -2**63 <= advisory_key("x") < 2**63
