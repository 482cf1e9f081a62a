"""Issue 13: servers the tests start never outlive a killed run.

Test runs killed part-way (a helper's timeout, SIGKILL of pytest) left the
Keystone fixture's gunicorn running (5 pairs in one session), and a
``claimant serve`` outlived a SIGKILL of its pytest.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import children
from tests.keystone import server as ks

# Only a bound on a wait that ends as soon as the processes are gone.
GONE_WITHIN = 60.0

INNER = """
import json, os, time
from pathlib import Path

from tests.api.serve_support import serve
from tests.keystone import server as ks


def test_hold(tmp_path):
    with serve(tmp_path) as served:
        pids = {"serve": served.pid}
        if os.environ.get("HOLD_KEYSTONE"):
            keystone = ks.Keystone(tmp_path)
            keystone.start()
            keystone.pause()  # stopped: it cannot notice anything itself
            pids["keystone"] = keystone.proc.pid
        Path(os.environ["HOLD_PIDS"]).write_text(json.dumps(pids))
        time.sleep(600)
"""


def _wait_for(path: Path, proc: subprocess.Popen[bytes], log: Path) -> dict[str, int]:
    deadline = time.monotonic() + 240
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the inner run did not start its servers: " + log.read_text()[-3000:])
        time.sleep(0.2)
    time.sleep(0.1)  # written in one call; let it land
    return {k: int(v) for k, v in json.loads(path.read_text()).items()}


def test_servers_die_with_a_sigkilled_pytest(tmp_path: Path) -> None:
    """``claimant serve`` and, where its venv is (always in CI, as for
    test_keystone.py), the Keystone fixture's gunicorn, paused."""
    with_keystone = ks.available() or os.environ.get("CI") == "true"
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "test_hold.py").write_text(INNER)
    pids_file = tmp_path / "pids.json"
    env = {
        **os.environ,
        "PYTHONPATH": str(children.ROOT),
        "HOLD_PIDS": str(pids_file),
        "HOLD_KEYSTONE": "1" if with_keystone else "",
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",  # a quicker start
    }
    log = tmp_path / "inner.log"
    with log.open("w") as out:
        run = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(inner)],
            cwd=inner,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    watched: list[tuple[int, int]] = []  # (pid, start time) of every server process
    try:
        pids = _wait_for(pids_file, run, log)
        for pid in [pids["serve"], *children.group(pids.get("keystone", -1))]:
            start = children.start_time(pid)
            assert start is not None
            watched.append((pid, start))
        assert len(watched) == (3 if with_keystone else 1)  # serve; gunicorn and its worker
        run.send_signal(signal.SIGKILL)
        run.wait()
        deadline = time.monotonic() + GONE_WITHIN
        while left := [pid for pid, start in watched if children.alive(pid, start)]:
            assert time.monotonic() < deadline, f"still running after their pytest died: {left}"
            time.sleep(0.2)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        for pid, start in watched:  # what this test made, whatever happened
            if children.alive(pid, start):
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
        children.sweep("keystone")  # the killed run's record


# -- the sweep ---------------------------------------------------------------


@pytest.fixture
def sleeper() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A process in a session of its own with a string only it holds."""
    needle = f"sweep-test-{uuid.uuid4().hex}"
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)", needle],
        start_new_session=True,
    )
    try:
        yield proc, needle
    finally:
        proc.kill()
        proc.wait()


def _record_from_a_dead_owner(kind: str, pgid: int, needle: str) -> Path:
    """The record a pytest killed part-way leaves: its owner is gone."""
    code = f"from tests import children; print(children.record({kind!r}, {pgid}, {needle!r}))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(children.ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip())


@pytest.mark.parametrize(
    ("owner", "needle_matches", "killed"),
    [
        pytest.param("gone", True, True, id="orphan-is-killed"),
        pytest.param("alive", True, False, id="a-live-runs-server-is-left-alone"),
        pytest.param("gone", False, False, id="a-pid-now-someone-elses-is-left-alone"),
    ],
)
def test_sweep(
    sleeper: tuple[subprocess.Popen[bytes], str], owner: str, needle_matches: bool, killed: bool
) -> None:
    proc, needle = sleeper
    kind = f"sweeptest{os.getpid()}"
    wanted = needle if needle_matches else needle + "-not-this-one"
    if owner == "gone":
        path = _record_from_a_dead_owner(kind, proc.pid, wanted)
    else:
        path = children.record(kind, proc.pid, wanted)
    try:
        assert path.is_file()
        assert children.sweep(kind) == ([proc.pid] if killed else [])
        if killed:
            assert proc.wait(timeout=GONE_WITHIN) == -signal.SIGKILL
        else:
            assert proc.poll() is None
        # Its pytest gone, the record goes too; a live run's stays.
        assert path.exists() == (owner == "alive")
    finally:
        children.forget(path)


def test_a_guarded_command_is_the_same_process(tmp_path: Path) -> None:
    out = tmp_path / "pid"
    code = textwrap.dedent(
        f"""
        import os, pathlib
        pathlib.Path({str(out)!r}).write_text(str(os.getpid()))
        """
    )
    proc = children.popen([sys.executable, "-c", code])
    assert proc.wait(timeout=GONE_WITHIN) == 0
    assert int(out.read_text()) == proc.pid
