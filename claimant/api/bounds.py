"""Caps on what one request may ask, shared by both APIs. They keep one
request from holding a scheduler or building a query the store refuses
(SQLite joins at most 64 tables and nests expressions 1000 deep)."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from claimant.model.errors import InvalidInput

#: request groups in one native request
MAX_GROUPS = 16
#: request groups in one GET /allocation_candidates: Placement's own wide-tree
#: requests ask for 64 (one device per group); the candidate engine searches
#: them in memory with pruning, not with a SQL join per group (issue 10)
MAX_PLACEMENT_GROUPS = 128
#: resource classes in one group
MAX_CLASSES_PER_GROUP = 32
#: member_of sets (any-of aggregate lists) in one group
MAX_MEMBER_OF = 64
#: items in any other list: traits, aggregates in a set, hosts, consumers
MAX_LIST = 1000
#: groups x count of one native request: the placements one request may make
MAX_PLACEMENTS = 1000
#: amounts, limits and capacities: what a 64-bit signed integer column holds
MAX_INT64 = 2**63 - 1


def check_count(what: str, items: Collection[object], cap: int) -> None:
    if len(items) > cap:
        raise InvalidInput(f"too many {what}: {len(items)}, at most {cap}", field=what, max=cap)


def check_lists(what: str, lists: Iterable[Collection[object]], cap: int = MAX_LIST) -> None:
    for items in lists:
        check_count(what, items, cap)


def check_int64(what: str, value: int) -> None:
    if value > MAX_INT64:
        raise InvalidInput(f"{what} is larger than {MAX_INT64}", field=what)
