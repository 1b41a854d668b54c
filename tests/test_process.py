"""process.py: who is recording a run, and whether that process is gone."""

from __future__ import annotations

import os
import subprocess
import sys

from mlmd_exercise import process


def test_this_process_is_not_gone():
    me = process.identity()
    assert me[process.PID] == os.getpid() and isinstance(me[process.PID_START], int)
    assert not process.is_gone(me)


def test_an_exited_process_is_gone():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    gone = {**process.identity(), process.PID: child.pid}
    assert process.is_gone(gone)


def test_a_reused_pid_is_told_apart_by_its_start_time():
    me = process.identity()
    assert process.is_gone({**me, process.PID_START: me[process.PID_START] - 1})


def test_other_hosts_and_unknown_processes_are_not_judged():
    me = process.identity()
    assert not process.is_gone({**me, process.HOST: "elsewhere", process.PID: 999999})
    assert not process.is_gone({})


def test_a_start_time_stored_as_a_double_still_tells_a_reused_pid():
    me = process.identity()
    assert not process.is_gone({**me, process.PID_START: float(me[process.PID_START])})
    assert process.is_gone({**me, process.PID_START: float(me[process.PID_START] + 1)})
