"""Start a real ``claimant serve`` process on a free loopback port."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests import children

CLI = [sys.executable, "-c", "from claimant.cli.main import main; main()"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Served:
    url: str
    port: int
    pid: int
    store_url: str
    log: Path

    def status(self, field: str) -> int:
        """A ``/proc/<pid>/status`` size field (VmRSS, VmHWM), in bytes."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(field)

    def reset_peak(self) -> None:
        """Reset VmHWM to the current RSS (Linux: "5" in clear_refs)."""
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")


@contextmanager
def serve(tmp_path: Path, *args: str, store_url: str | None = None) -> Iterator[Served]:
    """Serve ``store_url``, by default a new SQLite file under ``tmp_path``."""
    port = free_port()
    if store_url is None:
        store_url = "sqlite:///" + str(tmp_path / f"served-{port}.db").lstrip("/")
    log_path = tmp_path / f"serve-{port}.log"
    log = log_path.open("w")
    proc = children.popen(
        [*CLI, "serve", "--store", store_url, "--port", str(port), "--no-access-log", *args],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        # A hang guard, not a timing check (a dead server fails at once,
        # above): on Cassandra serve migrates a new keyspace first, schema
        # change after schema change, and took over 60 s on a loaded node.
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                raise RuntimeError("claimant serve exited: " + log_path.read_text())
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("claimant serve did not start: " + log_path.read_text())
            time.sleep(0.2)
        yield Served(url, port, proc.pid, store_url, log_path)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
