"""Stores: the contract (``base``) and its backends, chosen by URL.

- ``sqlite:///absolute/path.db`` or ``sqlite:relative/path.db``: embedded, one file
  shared by any number of threads and processes on one machine.
- ``cassandra://h1,h2,h3/keyspace?rf=dc1:3,dc2:3&dc=dc1``: Apache Cassandra;
  ``&user=NAME&password_file=PATH`` (or ``password_env=VAR``) to log in,
  ``&ca_file=PATH`` for TLS (docs/cassandra.md). Never a password in the URL.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qs, urlsplit

from claimant.model.errors import InvalidInput
from claimant.store.base import (
    UNSET,
    CandidateQuery,
    ClaimSpec,
    CloudSummary,
    ImportedConsumer,
    ProviderFilter,
    ReshapeSpec,
    Store,
    TreePage,
    TreeQuery,
    Unset,
    check_cell,
)

__all__ = [
    "UNSET",
    "CandidateQuery",
    "ClaimSpec",
    "CloudSummary",
    "ImportedConsumer",
    "ProviderFilter",
    "ReshapeSpec",
    "Store",
    "TreePage",
    "TreeQuery",
    "Unset",
    "check_cell",
    "default_store_url",
    "open_store",
]


def default_store_url() -> str:
    from platformdirs import user_data_dir

    return "sqlite:///" + os.path.join(user_data_dir("claimant"), "claimant.db").lstrip("/")


def open_store(url: str) -> Store:
    """Open (not migrate) the store a URL names."""
    parts = urlsplit(url)
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if parts.scheme == "sqlite":
        # sqlite:///abs/path -> /abs/path ; sqlite:rel/path -> rel/path
        path = parts.path if parts.netloc == "" else parts.netloc + parts.path
        if url.startswith("sqlite:///"):
            path = "/" + url[len("sqlite:///") :].split("?")[0]
        if not path:
            raise InvalidInput(f"store URL {url!r} names no file: use sqlite:///path/to/file.db")
        from claimant.store.sqlite import SQLiteStore

        return SQLiteStore(path, url=url, **options)
    if parts.scheme == "cassandra":
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
        refuse_inline_password(set(options), parts.netloc)
        return CassandraStore(hosts, keyspace, url=url, **options)
    raise InvalidInput(f"unknown store URL scheme in {url!r}: use sqlite:/// or cassandra://")
