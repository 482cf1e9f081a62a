"""The store URL's options: the names a ``cassandra://`` URL may carry and
how ``rf``, ``dc``, ``serial`` and ``consistency`` are read."""

from __future__ import annotations

import re
from typing import Final

from cassandra import ConsistencyLevel

from claimant.model import InvalidInput
from claimant.store.cassandra import connect

OPTIONS: Final = (
    "rf",
    "dc",
    "serial",
    "consistency",
    "port",
    "timeout",
    "fetch",
    "fast_writes",
    *connect.OPTIONS,
)


_CONSISTENCY = {
    name: getattr(ConsistencyLevel, name)
    for name in ("ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "LOCAL_ONE")
}


_SERIAL = {
    "SERIAL": ConsistencyLevel.SERIAL,
    "LOCAL_SERIAL": ConsistencyLevel.LOCAL_SERIAL,
    # LOCAL_SERIAL even on a keyspace of several DCs, which is unsafe
    # (_settle_dcs): the tests use it to show the hazard.
    "LOCAL_SERIAL_UNSAFE": ConsistencyLevel.LOCAL_SERIAL,
}


# Both end up inside CQL text (a keyspace name; dc as a literal in CREATE
# KEYSPACE's replication map), so they are checked against what Cassandra
# allows and can never carry a quote.
_KEYSPACE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,47}")


_DC = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def _replication_option(value: str, dc: str | None) -> tuple[int, dict[str, int] | None]:
    """``rf=N`` -> (N, None); ``rf=dc1:1,dc2:1`` -> (total, {dc: n}). A local
    ``dc`` must be one of the replicated DCs: a service has no replica of its
    own elsewhere, and DC-aware routing would send it nowhere."""
    if ":" not in value:
        return _int_option("rf", value, 1, 20), None
    replication: dict[str, int] = {}
    for part in value.split(","):
        name, sep, count = part.strip().partition(":")
        if not sep or not _DC.fullmatch(name):
            raise InvalidInput(
                f"store URL option rf {value!r}: give N, or DC:N for each data centre"
                " (rf=dc1:3,dc2:3)"
            )
        if name in replication:
            raise InvalidInput(f"store URL option rf {value!r}: data centre {name} twice")
        replication[name] = _int_option(f"rf ({name})", count, 1, 20)
    if dc is not None and dc not in replication:
        raise InvalidInput(
            f"store URL option dc {dc!r} is not among the data centres of rf"
            f" ({', '.join(replication)})"
        )
    return sum(replication.values()), replication


def _int_option(name: str, value: str, low: int, high: int) -> int:
    try:
        n = int(value)
    except ValueError:
        raise InvalidInput(f"store URL option {name} must be an integer, got {value!r}") from None
    if not low <= n <= high:
        raise InvalidInput(f"store URL option {name} must be between {low} and {high}")
    return n
