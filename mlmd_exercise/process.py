"""Which process is recording a run, and whether that process is still alive.

A run records the host, pid and pid start time of the process that started it,
so that a RUNNING execution whose process is gone (killed, crashed, powered
off) can be told apart from one still at work. The start time guards against a
pid that the system has since given to another process.
"""

from __future__ import annotations

import os
import socket
from typing import Dict, Mapping, MutableMapping, Optional

from mlmd_exercise.records import PropertyValue

__all__ = ["HOST", "PID", "PID_START", "identity", "is_gone"]

HOST, PID, PID_START = "host", "pid", "pid_start"  # custom properties of an execution


def _start_time(pid: int) -> Optional[int]:
    """The live process's start time in clock ticks since boot (Linux); None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode(errors="replace")
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after it.
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):  # a zombie has exited; only its parent has not reaped it
        return None
    return int(fields[19])  # field 22 of the whole line


def identity() -> Dict[str, PropertyValue]:
    """This process: {"host", "pid", "pid_start"}."""
    ident: Dict[str, PropertyValue] = {HOST: socket.gethostname(), PID: os.getpid()}
    start = _start_time(os.getpid())
    if start is not None:
        ident[PID_START] = start
    return ident


def is_gone(properties: Mapping[str, object],
            start_times: Optional[MutableMapping[int, Optional[int]]] = None) -> bool:
    """True if the recorded process ran on this host and is no longer running.

    A process on another host, or one that recorded no identity, is not known
    to be gone: only its age can tell.

    Args:
        properties: an execution's properties, with `host`, `pid` and `pid_start`.
        start_times: pid -> start time, filled as pids are looked up, so that many
            runs of one process read /proc once.
    """
    if properties.get(HOST) != socket.gethostname() or not isinstance(properties.get(PID), int):
        return False
    pid = properties[PID]
    assert isinstance(pid, int)
    if start_times is None:
        start = _start_time(pid)
    elif pid in start_times:
        start = start_times[pid]
    else:
        start = start_times[pid] = _start_time(pid)
    if start is None:
        return True
    recorded = properties.get(PID_START)
    # A double where the start time did not fit 32 bits (see schema.set_value).
    return isinstance(recorded, (int, float)) and int(recorded) != start
