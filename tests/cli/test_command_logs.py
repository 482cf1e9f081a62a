"""The commands run in a terminal (store, sim, import, torture) log as the
services do (``--log-format``, ``--log-level``; default ``error``) and print
a failure in claimant's words: never a driver's text, never a line through
Python's unformatted last-resort handler. Each runs as its own process, as an
operator runs it: pytest's own log capture would hide that handler."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from claimant.store import open_store
from tests.conftest import sqlite_url

CLI = [sys.executable, "-c", "from claimant.cli.main import main; main()"]
# Nothing listens there (tests/addresses.py gives it to no one): a refused connection.
UNREACHABLE = "cassandra://127.0.0.250/nowhere?timeout=2"
NOT_A_DATABASE = "Error: store_unavailable: the store's file is not a usable SQLite database"
LOG_HINT = "  fix: the store's own words are in the log: run again with --log-level warning"
# What the drivers say, which only the log may hold.
DRIVER_TEXT = (
    "file is not a database",
    "DatabaseError",
    "NoHostAvailable",
    "Connection refused",
    "Traceback",
)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    # The defaults under test, whatever the environment running the tests says.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMANT_LOG_")}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120, env=env)


@pytest.fixture
def corrupted(tmp_path: Path) -> str:
    """A migrated SQLite store whose file was then overwritten."""
    path = tmp_path / "broken.db"
    store = open_store(sqlite_url(path))
    store.migrate()
    store.close()
    path.write_bytes(b"this is not an SQLite file" * 200)
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return sqlite_url(path)


def _no_driver_text(text: str) -> None:
    for leak in DRIVER_TEXT:
        assert leak not in text, text


def test_store_migrate_on_a_corrupted_file(corrupted: str) -> None:
    # Before: "SQLite error (DatabaseError): file is not a database" first,
    # through the last-resort handler.
    r = _run("store", "migrate", "--store", corrupted)
    assert r.returncode == 1, r.stderr
    assert r.stderr.splitlines() == [NOT_A_DATABASE, LOG_HINT]
    assert r.stdout == ""


def test_store_on_an_unreachable_cassandra() -> None:
    # Before: the store's warning quoting NoHostAvailable(...) came first.
    r = _run("store", "drop", "--yes", "--store", UNREACHABLE)
    assert r.returncode == 1, r.stderr
    assert r.stderr.splitlines() == [
        "Error: store_unavailable: cannot reach Cassandra at 127.0.0.250:9042",
        LOG_HINT,
    ]


@pytest.mark.parametrize(
    ("fmt", "line"),
    [
        pytest.param(
            "text",
            r"\d{4}-\d\d-\d\dT[\d:.]+Z WARNING claimant\.store\.sqlite \[-\] "
            r"SQLite error \(DatabaseError\): file is not a database",
            id="text",
        ),
        pytest.param("json", None, id="json"),
    ],
)
def test_log_options_show_the_driver_in_the_log_format(
    corrupted: str, fmt: str, line: str | None
) -> None:
    # Before: no such options (exit 2).
    r = _run(
        "store", "migrate", "--store", corrupted, "--log-level", "warning", "--log-format", fmt
    )
    assert r.returncode == 1, r.stderr
    log, error = r.stderr.splitlines()
    if line is not None:
        assert re.fullmatch(line, log), log
    else:
        record = json.loads(log)
        assert record["level"] == "WARNING" and record["logger"] == "claimant.store.sqlite"
        assert "file is not a database" in record["message"]
    # The log shows warnings: no hint to ask for them.
    assert error == NOT_A_DATABASE


def test_the_environment_sets_the_level(corrupted: str) -> None:
    env = {**os.environ, "CLAIMANT_LOG_LEVEL": "warning", "CLAIMANT_LOG_FORMAT": "text"}
    r = subprocess.run(
        [*CLI, "store", "migrate", "--store", corrupted],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert r.returncode == 1, r.stderr
    assert "WARNING claimant.store.sqlite" in r.stderr, r.stderr


def test_sim_json_prints_its_error_as_json(corrupted: str) -> None:
    # Before: the driver's line, then "Error: store_unavailable: the store is
    # unavailable; retry later" as text, though --json was asked for.
    r = _run("sim", "--store", corrupted, "--requests", "2", "--json")
    assert r.returncode == 1, r.stderr
    assert r.stdout == ""
    (line,) = r.stderr.splitlines()
    assert json.loads(line) == {
        "error": {
            "code": "store_unavailable",
            "message": "the store's file is not a usable SQLite database",
            "fix": LOG_HINT.removeprefix("  fix: "),
        }
    }


def test_sim_keeps_the_failures_it_counts_out_of_stderr() -> None:
    # Before: two warnings per injected build failure (the agent's and the
    # conductor's), unformatted, around the table.
    r = _run("sim", "--hosts", "2", "--requests", "10", "--failure-rate", "0.5", "--json")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert json.loads(r.stdout)["driver_failures"] > 0
    shown = _run(
        "sim", "--hosts", "2", "--requests", "10", "--failure-rate", "0.5", "--log-level", "warning"
    )
    assert "WARNING claimant.agent" in shown.stderr, shown.stderr


def test_serve_logs_the_store_warning_it_fails_on(corrupted: str) -> None:
    # A service logs at info: the store's warning is a formatted log line.
    # Before: unformatted, through the last resort (uvicorn configures the
    # logging only once it starts).
    r = _run("serve", "--store", corrupted, "--port", "0")
    assert r.returncode == 1, r.stderr
    log, error = r.stderr.splitlines()
    assert re.fullmatch(r"\S+Z WARNING claimant\.store\.sqlite \[-\] SQLite error .*", log), log
    assert error == NOT_A_DATABASE


def test_a_store_path_that_cannot_be_made(tmp_path: Path) -> None:
    # Before: a traceback (FileExistsError from os.makedirs, outside the
    # store's translation). A regular file stands where a directory must be.
    (tmp_path / "file").write_text("")
    r = _run("store", "migrate", "--store", sqlite_url(tmp_path / "file" / "s.db"))
    assert r.returncode == 1, r.stderr
    first = r.stderr.splitlines()[0]
    assert first.startswith("Error: store_unavailable: cannot create "), r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.cassandra
def test_sim_on_a_cassandra_table_gone(cassandra_url: str, cassandra_hosts: str) -> None:
    # The node's answer ('Error from server: code=2200 [Invalid query]
    # message="table providers does not exist"') is for the log only. Before:
    # it came first, through the last resort.
    from cassandra.cluster import Cluster

    store = open_store(cassandra_url)
    try:
        store.migrate()
        keyspace = store.keyspace  # type: ignore[attr-defined]
    finally:
        store.close()
    cluster = Cluster(cassandra_hosts.split(","))
    try:
        cluster.connect().execute(f"DROP TABLE {keyspace}.providers")
    finally:
        cluster.shutdown()
    r = _run("sim", "--store", cassandra_url, "--wipe", "--requests", "2")
    assert r.returncode == 1, r.stderr
    error, hint = r.stderr.splitlines()
    assert error.startswith("Error: store_unavailable: Cassandra refused a query"), error
    assert hint == LOG_HINT
    for leak in ("Error from server", "does not exist", "code=2200"):
        assert leak not in r.stderr
