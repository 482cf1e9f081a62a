"""``claimant sim`` prints a store's error by its code and in claimant's words,
never the driver's text (issue 13). The Cassandra store's ``StoreUnavailable``
for a failed query once quoted its driver, and the sim printed it; now no
store's message does (docs/store-contract.md), so the sim prints the store's
message, which says what to do, through the CLI's one ``error_text``
(claimant/cli/errors.py); the driver's text is in the log only
(tests/cli/test_command_logs.py). Here a real SQLite store fails the way a
Cassandra store with no node answering does."""

from __future__ import annotations

import secrets
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from claimant.cli.errors import error_text
from claimant.cli.main import main
from claimant.cli.sim import _run_cells
from claimant.model import LOCAL_CELL, CellUnavailable, ClaimantError, InvalidInput
from claimant.model.errors import StoreUnavailable
from claimant.sim import SimConfig
from claimant.store import Store, open_store
from claimant.store.sqlite import SQLiteStore
from tests.conftest import cassandra_hosts_or_skip

UNAVAILABLE = "Cassandra is unavailable (NoHostAvailable); retry later"


class _DriverFails(SQLiteStore):
    """Its wipe fails as a Cassandra store's query does when no node answers
    (claimant/store/cassandra/errors.py)."""

    def reset(self) -> None:
        raise StoreUnavailable(UNAVAILABLE, driver="NoHostAvailable")


def _faulty(path: Path) -> Store:
    store = _DriverFails(str(path))
    store.migrate()
    return store


def test_cli_prints_the_store_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("claimant.store.open_store", lambda url: _faulty(tmp_path / "sim.db"))
    result = CliRunner().invoke(
        main, ["sim", "--store", f"sqlite:///{tmp_path}/sim.db", "--requests", "2"]
    )
    assert result.exit_code == 1, result.output
    assert f"Error: store_unavailable: {UNAVAILABLE}" in result.output


@pytest.mark.cassandra
def test_cli_on_cassandra_prints_no_driver_text() -> None:
    # The real thing: a table gone under the store, so the store's query
    # error quotes the driver ('Error from server: code=2200 ... "table
    # providers does not exist"'); migrate sees the schema version and keeps
    # out of it.
    from cassandra.cluster import Cluster

    hosts = cassandra_hosts_or_skip()
    url = f"cassandra://{hosts}/sim_errors_{secrets.token_hex(4)}?rf=1"
    store = open_store(url)
    try:
        store.migrate()
        keyspace = url.split("/")[3].split("?")[0]
        cluster = Cluster(hosts.split(","))
        try:
            cluster.connect().execute(f"DROP TABLE {keyspace}.providers")
        finally:
            cluster.shutdown()
        result = CliRunner().invoke(main, ["sim", "--store", url, "--wipe", "--requests", "2"])
    finally:
        store.drop()
        store.close()
    assert result.exit_code == 1, result.output
    assert "store_unavailable: Cassandra refused a query (is the schema migrated?" in result.output
    for leak in ("Error from server", "does not exist", "code=2200"):
        assert leak not in result.output


def test_cells_run_prints_no_driver_text(tmp_path: Path) -> None:
    # The run across cells (`sim --cells`, here one SQLite cell) says the same.
    store = _faulty(tmp_path / "cells.db")
    try:
        with pytest.raises(click.ClickException) as caught:
            _run_cells({LOCAL_CELL: store}, SimConfig(hosts=2, requests=2), None)
    finally:
        store.close()
    assert caught.value.format_message().splitlines()[0] == f"store_unavailable: {UNAVAILABLE}"


@pytest.mark.parametrize(
    ("error", "printed"),
    [
        pytest.param(
            StoreUnavailable("cannot reach Cassandra at 127.0.0.9:9042", reason="unreachable"),
            "store_unavailable: cannot reach Cassandra at 127.0.0.9:9042",
            id="store-message-as-is",
        ),
        pytest.param(
            CellUnavailable("cell dc2 is unavailable: no coordinator answers", cell="dc2"),
            "cell_unavailable: cell dc2 is unavailable: no coordinator answers",
            id="cell-unavailable-is-claimants-text",
        ),
        pytest.param(
            InvalidInput("hosts must be an integer >= 1", field="hosts"),
            "invalid_input: hosts must be an integer >= 1",
            id="domain-error-as-is",
        ),
    ],
)
def test_error_text(error: ClaimantError, printed: str) -> None:
    assert error_text(error) == printed
