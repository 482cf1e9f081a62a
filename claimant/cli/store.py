"""``claimant store``: create, upgrade or remove a store's schema."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

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
        raise click.ClickException(f"{exc.code}: {exc.message}") from exc


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
