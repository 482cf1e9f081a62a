"""The built-in stores' openers: entry points in the ``claimant.stores`` group,
named for their URL scheme (``open_store`` picks one by the URL's scheme).

A store's options are its URL's query string; the store class checks them
(unknown or malformed ones are ``InvalidInput``)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from claimant.model.errors import InvalidInput
from claimant.store.base import Store


def _options(query: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(query).items()}


def open_sqlite(url: str) -> Store:
    """``sqlite:///absolute/path.db`` or ``sqlite:relative/path.db``."""
    parts = urlsplit(url)
    # sqlite:///abs/path -> /abs/path ; sqlite:rel/path -> rel/path
    path = parts.path if parts.netloc == "" else parts.netloc + parts.path
    if url.startswith("sqlite:///"):
        path = "/" + url[len("sqlite:///") :].split("?")[0]
    if not path:
        raise InvalidInput(f"store URL {url!r} names no file: use sqlite:///path/to/file.db")
    from claimant.store.sqlite import SQLiteStore

    return SQLiteStore(path, url=url, **_options(parts.query))


def open_cassandra(url: str) -> Store:
    """``cassandra://h1,h2,h3/keyspace?rf=...`` (docs/cassandra.md)."""
    parts = urlsplit(url)
    hosts = [h for h in (parts.netloc or "").split(",") if h]
    keyspace = parts.path.strip("/")
    if not hosts or not keyspace:
        raise InvalidInput(
            f"store URL {url!r} needs hosts and a keyspace: cassandra://h1,h2/keyspace?rf=3"
        )
    try:
        from claimant.store.cassandra import CassandraStore
        from claimant.store.cassandra.connect import refuse_inline_password
    except ModuleNotFoundError as exc:
        raise InvalidInput("the Cassandra backend is not installed") from exc
    options = _options(parts.query)
    refuse_inline_password(set(options), parts.netloc)
    return CassandraStore(hosts, keyspace, url=url, **options)
