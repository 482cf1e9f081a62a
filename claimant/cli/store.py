"""``claimant store``: create, upgrade or remove a store's schema."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from claimant.cli.cluster import dir_option
from claimant.cli.errors import EXIT_ERROR, failure
from claimant.cli.tunables import tool_logging
from claimant.model.errors import ClaimantError

store_option = click.option(
    "--store",
    "store_url",
    envvar="CLAIMANT_STORE",
    default=None,
    help="Store URL; default: the SQLite file in the user's data directory.",
)


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except ClaimantError as exc:
        raise failure(exc, exit_code=EXIT_ERROR) from exc


def _url(store_url: str | None) -> str:
    if store_url:
        return store_url
    from claimant.cli.serve import default_store

    return default_store()


@click.group()
def store() -> None:
    """Manage the store's schema."""


@store.command()
@store_option
@tool_logging
def migrate(store_url: str | None) -> None:
    """Create or upgrade the schema."""
    from claimant.store import open_store

    url = _url(store_url)
    with _errors():
        s = open_store(url)
        try:
            version = s.migrate()
        finally:
            s.close()
    click.echo(f"{url}: schema version {version}")


@store.command()
@store_option
@tool_logging
@click.option("--yes", is_flag=True, help="Really remove everything the store holds.")
def drop(store_url: str | None, yes: bool) -> None:
    """Remove everything the store holds, schema included."""
    if not yes:
        raise click.UsageError("drop removes every provider, claim and request: pass --yes")
    from claimant.store import open_store

    url = _url(store_url)
    with _errors():
        s = open_store(url)
        try:
            s.drop()
        finally:
            s.close()
    click.echo(f"{url}: dropped")


@store.command()
@store_option
@tool_logging
@dir_option
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=3600,
    show_default=True,
    help="Seconds per node.",
)
def repair(store_url: str | None, directory: Path, timeout: float) -> None:
    """Repair a Cassandra store's keyspace on a local cluster (`claimant
    cluster`): `nodetool repair -pr` on every node, so that every DC holds
    what the others wrote (docs/cells.md: a cell back after an outage).
    Exit 0 once every node is repaired, 1 on the first failure."""
    from claimant.cluster import ClusterError
    from claimant.cluster.launcher import Cluster
    from claimant.store import open_store
    from claimant.store.cassandra import CassandraStore

    url = _url(store_url)
    with _errors():
        s = open_store(url)
        s.close()
    if not isinstance(s, CassandraStore):
        raise click.ClickException(
            f"{url}: only a Cassandra store has replicas to repair (SQLite keeps one copy)"
        )
    try:
        Cluster(directory).repair(
            s.keyspace, timeout=timeout, echo=lambda m: click.echo(m, err=True)
        )
    except ClusterError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{url}: keyspace {s.keyspace} repaired on every node of {directory}")
