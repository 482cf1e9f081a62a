"""``claimant sim`` prints a store's error by its code and in claimant's words,
never the driver's text (issue 13). The Cassandra store's ``StoreUnavailable``
for a failed query quotes its driver; the APIs never send that message, and
the sim printed it. Here a real SQLite store fails the way that one does."""

from __future__ import annotations

import secrets
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from claimant.cli.main import main
from claimant.cli.sim import _run_cells, error_text
from claimant.model import LOCAL_CELL, CellUnavailable, ClaimantError, InvalidInput
from claimant.model.errors import StoreUnavailable
from claimant.sim import SimConfig
from claimant.store import Store, open_store
from claimant.store.sqlite import SQLiteStore
from tests.conftest import cassandra_hosts_or_skip

DRIVER_TEXT = (
    "('Unable to complete the operation against any hosts', {<Host: 127.0.0.9:9042 dc2>: "
    "ConnectionRefusedError(111, \"Tried connecting to [('127.0.0.9', 9042)]. Last error: "
    'Connect call failed")})'
)


class _DriverFails(SQLiteStore):
    """Its wipe fails as a Cassandra store's query does when no node answers."""

    def reset(self) -> None:
        raise StoreUnavailable(f"Cassandra unavailable: {DRIVER_TEXT}", driver="NoHostAvailable")


def _faulty(path: Path) -> Store:
    store = _DriverFails(str(path))
    store.migrate()
    return store


def test_cli_prints_no_driver_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Before: "Error: store_unavailable: Cassandra unavailable: ('Unable to ...".
    monkeypatch.setattr("claimant.store.open_store", lambda url: _faulty(tmp_path / "sim.db"))
    result = CliRunner().invoke(
        main, ["sim", "--store", f"sqlite:///{tmp_path}/sim.db", "--requests", "2"]
    )
    assert result.exit_code == 1, result.output
    assert "store_unavailable: the store is unavailable" in result.output
    for leak in ("Unable to complete", "127.0.0.9", "ConnectionRefused", "Cassandra unavailable"):
        assert leak not in result.output


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
    assert "store_unavailable: the store is unavailable" in result.output
    for leak in ("Error from server", "does not exist", "code=2200", "refused a query"):
        assert leak not in result.output


def test_cells_run_prints_no_driver_text(tmp_path: Path) -> None:
    # The run across cells (`sim --cells`, here one SQLite cell) says the same.
    store = _faulty(tmp_path / "cells.db")
    try:
        with pytest.raises(click.ClickException) as caught:
            _run_cells({LOCAL_CELL: store}, SimConfig(hosts=2, requests=2), None)
    finally:
        store.close()
    assert caught.value.message == "store_unavailable: the store is unavailable; retry later"


@pytest.mark.parametrize(
    ("error", "printed"),
    [
        pytest.param(
            StoreUnavailable(f"Cassandra refused a query: {DRIVER_TEXT}", driver="Unavailable"),
            "store_unavailable: the store is unavailable; retry later",
            id="driver-text-replaced",
        ),
        pytest.param(
            StoreUnavailable("cannot reach Cassandra at 127.0.0.9:9042", reason="unreachable"),
            "store_unavailable: the store is unavailable (unreachable); retry later",
            id="reason-kept",
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
