"""The store's own errors never quote the driver: its text names tables,
hosts and protocol codes, and every caller (the APIs, the CLI, the sim)
would otherwise have to scrub it. The driver's text goes to the log."""

import logging

import pytest
from cassandra.cluster import Cluster

from claimant.model import StoreUnavailable
from claimant.store import open_store

pytestmark = pytest.mark.cassandra

LEAKS = ("Error from server", "does not exist", "code=2200", "providers")


def test_a_refused_query_names_no_table_and_logs_the_driver_text(
    cassandra_url: str, cassandra_hosts: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(cassandra_url)
    try:
        store.migrate()
        keyspace = cassandra_url.split("/")[3].split("?")[0]
        cluster = Cluster(cassandra_hosts.split(","))
        try:
            cluster.connect().execute(f"DROP TABLE {keyspace}.providers")
        finally:
            cluster.shutdown()
        with caplog.at_level(logging.WARNING), pytest.raises(StoreUnavailable) as caught:
            store.list_providers()
    finally:
        store.close()
    message = str(caught.value)
    for leak in LEAKS:
        assert leak not in message, message
    assert caught.value.details.get("driver") == "InvalidRequest"
    assert "does not exist" in caplog.text  # the operator still sees why
