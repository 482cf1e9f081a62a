"""Servers the tests start, kept from outliving a killed run (issue 13).

A run killed part-way (Ctrl-C, a helper's timeout, SIGKILL of pytest) never
reaches its fixtures' teardown: a server in pytest's process group dies
with a group kill but outlives a kill of pytest alone, and Keystone's
gunicorn, in a session of its own, outlived both. Two guards:

- ``guarded(argv)`` starts a server through ``die_with_parent.py``: the
  kernel SIGKILLs it when its pytest dies (even stopped: the Keystone
  fixture pauses its server with SIGSTOP). Linux ties this to the thread
  that started the server: start it from the test's own thread.
- A record per server in a session of its own (``record``/``forget``):
  its process group, a string only its command line holds and the pytest
  that owns it, under a directory of this checkout's own. ``sweep`` kills
  what a record names once the record's pytest is gone, and only processes
  of that group whose command line still holds the string: never another
  checkout's, another live run's (an xdist worker's) or anyone else's.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from platformdirs import user_cache_dir

GUARD = Path(__file__).with_name("die_with_parent.py")
ROOT = Path(__file__).resolve().parents[1]
# One directory per checkout: a sweep never reads another worktree's records.
RECORDS = (
    Path(user_cache_dir("claimant"))
    / "test-servers"
    / hashlib.sha256(str(ROOT).encode()).hexdigest()[:16]
)


def guarded(argv: list[str]) -> list[str]:
    """``argv`` run so that it dies with this process (see the module)."""
    return [sys.executable, "-I", "-S", str(GUARD), str(os.getpid()), *argv]


def popen(argv: Sequence[str | Path], **kw: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(argv, **kw)``, ``guarded``."""
    return subprocess.Popen(guarded([str(a) for a in argv]), **kw)


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields after the command name (which may hold
    spaces and ")"): state, ppid, pgrp, ..."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def start_time(pid: int) -> int | None:
    """The process's start time (clock ticks after boot): with the pid, it
    names one process, never a later one that reuses the pid."""
    fields = _stat(pid)
    return int(fields[19]) if fields else None


def alive(pid: int, start: int) -> bool:
    """That process still runs (a zombie is dead: only its reaper is late)."""
    fields = _stat(pid)
    return fields is not None and int(fields[19]) == start and fields[0] != "Z"


def group(pgid: int) -> list[int]:
    """The processes of a process group."""
    return [pid for pid in _processes() if (f := _stat(pid)) and int(f[2]) == pgid]


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


@dataclass(frozen=True)
class Record:
    kind: str
    group: int  # the server's pid, leader of its own session and group
    needle: str  # in the command line of every process of the server
    owner: int  # the pytest that started it
    owner_start: int


def record(kind: str, pgid: int, needle: str) -> Path:
    owner = os.getpid()
    rec = Record(kind, pgid, needle, owner, start_time(owner) or 0)
    RECORDS.mkdir(parents=True, exist_ok=True)
    path = RECORDS / f"{kind}-{pgid}.json"
    path.write_text(json.dumps(asdict(rec)))
    return path


def forget(path: Path) -> None:
    path.unlink(missing_ok=True)


def sweep(kind: str) -> list[int]:
    """Kill the servers of ``kind`` whose pytest is gone; the pids killed."""
    killed: list[int] = []
    for path in sorted(RECORDS.glob(f"{kind}-*.json")):
        try:
            rec = Record(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue  # being written, or not ours to judge
        if start_time(rec.owner) == rec.owner_start:
            continue  # its pytest still runs
        for pid in group(rec.group):
            if rec.needle in _cmdline(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                except ProcessLookupError:
                    pass
        forget(path)
    return killed


def _processes() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
