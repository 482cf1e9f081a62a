"""How the SQLite store reads providers: everything about a provider as one
JSON array built by SQLite, turned into model objects without ``__init__``
checks (candidate reads are the hot path)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import orjson

from claimant.model import LOCAL_CELL, Inventory, NotFound, Provider, ProviderUsage, Usage
from claimant.model.build import maker

# REALs as text that round-trips (see PROVIDER_JSON): a ratio is what a
# claim's capacity check multiplies by.
RATIO = "printf('%!.17g', i.allocation_ratio)"

# Everything loaded about a provider, as one JSON array (see provider_row):
# candidate reads are the hot path, and each extra statement, row or
# JSON parse costs more than SQLite building the JSON. REALs go through
# printf('%!.17g') as strings, which Python parses: SQLite 3.40 writes REALs
# into JSON with 15 digits, which does not round-trip a timestamp, and
# json(printf(...)) costs SQLite a second parse of each number.
PROVIDER_JSON = (
    "json_array(p.id, p.uuid, p.name, p.type, par.uuid, root.uuid, p.enabled, p.generation,"
    " iif(p.heartbeat_at IS NULL, NULL, printf('%!.17g', p.heartbeat_at)),"
    " printf('%!.17g', p.created_at), printf('%!.17g', p.updated_at),"
    " json(p.attributes),"
    " (SELECT json_group_array(json_array(i.rc, i.total, i.reserved, i.min_unit,"
    f"  i.max_unit, i.step_size, {RATIO}, i.capacity, i.used))"
    "  FROM inventories i WHERE i.provider_id = p.id),"
    " (SELECT json_group_array(t.trait) FROM provider_traits t WHERE t.provider_id = p.id),"
    " (SELECT json_group_array(a.aggregate) FROM provider_aggregates a"
    "  WHERE a.provider_id = p.id))"
)
PROVIDER_FROM = (
    " FROM providers p LEFT JOIN providers par ON par.id = p.parent_id"
    " JOIN providers root ON root.id = p.root_id"
)


# Inventories are immutable values and rarely change: one object per distinct
# inventory saves building three per candidate row. Keyed by the row's fields
# (the ratio as its exact text). Bounded; a race between threads only builds
# an equal object twice.
_INVENTORIES: dict[tuple[Any, ...], Inventory] = {}
_INVENTORIES_MAX = 65536

# Rows the store just read are valid by construction: no __init__ checks.
_make_provider = maker(Provider)
_make_usage = maker(Usage)
make_provider_usage = maker(ProviderUsage)


def inventory(key: tuple[Any, ...]) -> Inventory:
    inv = _INVENTORIES.get(key)
    if inv is None:
        if len(_INVENTORIES) >= _INVENTORIES_MAX:
            _INVENTORIES.clear()
        rc, total, reserved, min_unit, max_unit, step, ratio = key
        inv = _INVENTORIES[key] = Inventory(
            rc, total, reserved, min_unit, max_unit, step, float(ratio)
        )
    return inv


def provider_row(row: list[Any]) -> tuple[Provider, dict[str, Usage]]:
    """A provider and its usage from one ``PROVIDER_JSON`` array."""
    inventories: dict[str, Inventory] = {}
    usages: dict[str, Usage] = {}
    for rc, total, reserved, min_unit, max_unit, step, ratio, capacity, used in row[12]:
        inventories[rc] = inventory((rc, total, reserved, min_unit, max_unit, step, ratio))
        usages[rc] = _make_usage(rc, capacity, used)
    heartbeat = row[8]
    # Positional, in field order: the hot path builds thousands of these.
    provider = _make_provider(
        row[1],  # uuid
        row[2],  # name
        row[3],  # type
        row[4],  # parent_uuid
        row[5],  # root_uuid (the JOIN always finds one: a root is its own)
        row[11],  # attributes
        frozenset(row[13]),  # traits
        frozenset(row[14]),  # aggregates
        inventories,
        bool(row[6]),  # enabled
        row[7],  # generation
        None if heartbeat is None else float(heartbeat),
        float(row[9]),  # created_at
        float(row[10]),  # updated_at
        LOCAL_CELL,  # cell: SQLite is one cell
    )
    return provider, usages


def load_provider(conn: sqlite3.Connection, pid: int) -> Provider:
    found = load_rows(conn, [pid])
    if not found:
        raise NotFound(f"provider #{pid} not found", kind="provider")
    return found[0][0]


def load_rows(conn: sqlite3.Connection, ids: list[int]) -> list[tuple[Provider, dict[str, Usage]]]:
    """Providers with inventories, usage, traits and aggregates, in ``ids``
    order (unknown ids are left out)."""
    found: dict[int, tuple[Provider, dict[str, Usage]]] = {}
    for chunk in chunks(ids):
        marks = ",".join("?" * len(chunk))
        (packed,) = conn.execute(
            f"SELECT json_group_array({PROVIDER_JSON}){PROVIDER_FROM} WHERE p.id IN ({marks})",
            chunk,
        ).fetchone()
        for row in orjson.loads(packed):
            found[row[0]] = provider_row(row)
    return [found[pid] for pid in ids if pid in found]


def usages(conn: sqlite3.Connection, ids: list[int]) -> list[ProviderUsage]:
    return [make_provider_usage(p, u) for p, u in load_rows(conn, ids)]


def chunks(items: list[Any], size: int = 500) -> Iterator[list[Any]]:
    # SQLite caps bound parameters per statement; chunk IN lists.
    for i in range(0, len(items), size):
        yield items[i : i + size]
