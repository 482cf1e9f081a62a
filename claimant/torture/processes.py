"""The real processes of a run: service, conductor and agents, each a child
process in its own session so a nemesis can SIGKILL or SIGSTOP exactly it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


class ProcessError(Exception):
    """A process would not start or answer."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class Proc:
    """One child process: started, killed and restarted with the same argv,
    so it comes back on the same port with the same identity."""

    def __init__(self, name: str, argv: list[str], log: Path, ready_url: str) -> None:
        self.name = name
        self.argv = argv
        self.log = log
        self.ready_url = ready_url
        self.popen: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self) -> None:
        if self.alive():
            return
        self.starts += 1
        with open(self.log, "ab") as out:
            out.write(f"--- start {self.starts}: {' '.join(self.argv)}\n".encode())
            out.flush()
            self.popen = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise ProcessError(f"{self.name} exited during start; see {self.log}")
            try:
                r = httpx.get(self.ready_url, timeout=2.0)
                if r.status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise ProcessError(f"{self.name} did not answer {self.ready_url} in {timeout:.0f}s")

    def signal(self, sig: int) -> None:
        if self.popen is not None and self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, sig)

    def kill(self) -> None:
        """SIGKILL, and reap it so the port is free for the restart."""
        self.signal(signal.SIGKILL)
        if self.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.signal(signal.SIGCONT)  # a paused process cannot handle SIGTERM
        self.signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()


# The package has no __main__; this is what the installed script runs.
_RUN_CLAIMANT = "from claimant.cli.main import main; main(prog_name='claimant')"


def claimant_argv(*args: str) -> list[str]:
    """The ``claimant`` command of this interpreter."""
    return [sys.executable, "-c", _RUN_CLAIMANT, *args]
