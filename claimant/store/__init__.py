"""Stores: the contract (``base``) and its backends, chosen by URL: the URL's
scheme names a plugin in the ``claimant.stores`` entry-point group
(``claimant.plugins``; the built-in openers are in ``urls``).

- ``sqlite:///absolute/path.db`` or ``sqlite:relative/path.db``: embedded, one file
  shared by any number of threads and processes on one machine.
- ``cassandra://h1,h2,h3/keyspace?rf=dc1:3,dc2:3&dc=dc1``: Apache Cassandra;
  ``&user=NAME&password_file=PATH`` (or ``password_env=VAR``) to log in,
  ``&ca_file=PATH`` for TLS (docs/cassandra.md). Never a password in the URL.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from urllib.parse import urlsplit

from claimant.plugins import PluginGroup, UnknownPlugin
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
    "STORES",
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


def _opener(obj: object) -> str:
    return "" if callable(obj) else "it is not a function of a URL"


#: Store openers by URL scheme: each is ``(url: str) -> Store``.
STORES: PluginGroup[Callable[[str], Store]] = PluginGroup("claimant.stores", "store", _opener)


def open_store(url: str) -> Store:
    """Open (not migrate) the store a URL names."""
    scheme = urlsplit(url).scheme
    if not scheme or scheme not in STORES:
        schemes = STORES.names()
        raise UnknownPlugin(
            f"unknown store URL scheme in {url!r}: use " + " or ".join(f"{s}://" for s in schemes),
            field="store",
            known=schemes,
        )
    store: Store = STORES.load(scheme)(url)
    return store
