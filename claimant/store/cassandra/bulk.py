"""Bulk import into the Cassandra store (``Store.import_providers`` and
``Store.import_allocations``).

Every write goes through the same lightweight transactions as the rest of the
store (a provider is created ``IF version = null``, its name reserved ``IF NOT
EXISTS``, allocations added with a CAS on the partition's version, a consumer
inserted ``IF NOT EXISTS``): plain writes would be faster, but a plain write
can be shadowed by a later Paxos write's timestamp when clocks disagree, and
the store takes Paxos writes on these rows from the moment it serves.
Providers and partitions are written in parallel by a pool of threads (the
driver's session is thread-safe; one partition's writers queue on the
store's per-provider lock).

Resuming: a provider already stored is skipped; an allocation's ledger entry
has a uuid derived from (provider, consumer), so one already written is not
counted twice; a consumer's row is written last, after all its entries, and a
consumer whose row exists is skipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final, TypeVar

from claimant.model import ClaimStatus, InvalidInput, NotFound, Provider
from claimant.store._common import provider_taken
from claimant.store.base import ImportedConsumer
from claimant.store.cassandra import queries as q
from claimant.store.cassandra.state import _Entry, _Partition, _State
from claimant.store.importing import check_amounts, imported_entry_uuid

if TYPE_CHECKING:
    from claimant.store.cassandra.store import CassandraStore

# Parallel writers: enough to keep a node's Paxos busy without queueing long
# behind each other on a small cluster.
WORKERS: Final = 16
INSERT_CONSUMER: Final = (
    "INSERT INTO consumers (uuid, project_id, user_id, consumer_type, generation)"
    " VALUES (?, ?, ?, ?, ?) IF NOT EXISTS"
)

T = TypeVar("T")


def _parallel(fn: Callable[[T], Any], items: Iterable[T]) -> list[Any]:
    items = list(items)
    if len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(items))) as pool:
        return list(pool.map(fn, items))


def _depth(p: Provider, batch: dict[str, Provider]) -> int:
    depth, parent = 0, p.parent_uuid
    while parent in batch and depth <= len(batch):
        depth += 1
        parent = batch[parent].parent_uuid
    return depth


def import_providers(store: CassandraStore, providers: Sequence[Provider]) -> int:
    batch = {p.uuid: p for p in providers}
    checked: dict[str, tuple[Provider, dict[str, Any]]] = {}
    for p in providers:
        attributes = store.get_resource_type(p.type).validate_attributes(p.attributes)
        store._validate_inventories(p.inventories)
        store._check_traits(p.traits)
        store._validate_aggregates(p.aggregates)
        checked[p.uuid] = (p, attributes)
    roots: dict[str, str] = {}

    def one(p: Provider) -> int:
        now = store.clock()
        existing = store._run(q.READ_VERSION, [p.uuid])
        if existing and existing[0].version:
            return 0
        root = p.uuid
        if p.parent_uuid:
            root = roots.get(p.parent_uuid) or ""
            if not root:
                try:
                    root = store._read_state(p.parent_uuid).root_uuid
                except NotFound:
                    raise NotFound(
                        f"parent provider {p.parent_uuid} of {p.uuid} is not imported yet",
                        kind="provider",
                        uuid=p.parent_uuid,
                    ) from None
        roots[p.uuid] = root
        applied, row = store._lwt(q.RESERVE_NAME, [p.name, p.uuid])
        if not applied and row.provider_uuid != p.uuid:
            raise provider_taken("name", p.name)
        state = _State(
            uuid=p.uuid,
            generation=p.generation,
            version="",
            prev_version=None,
            name=p.name,
            type=p.type,
            parent_uuid=p.parent_uuid,
            root_uuid=root,
            attributes=checked[p.uuid][1],
            traits=frozenset(p.traits),
            aggregates=frozenset(p.aggregates),
            enabled=p.enabled,
            heartbeat_at=None,
            created_at=p.created_at or now,
            updated_at=p.updated_at or p.created_at or now,
            inventories=dict(p.inventories),
            alloc_used={},
            holds=(),
            seq=time.time(),
        )
        state = replace(
            store._next_state(None, state, now, bump=False), updated_at=state.updated_at
        )
        if not store._cas(None, state, now):
            return 0  # another importer of the same data got there first
        if p.parent_uuid:
            store._run(q.ADD_CHILD, [p.parent_uuid, p.uuid])
        if p.heartbeat_at is not None:
            store.heartbeat(p.uuid, p.heartbeat_at)
        return 1

    written = 0
    # Parents before children: one level of the batch's trees at a time.
    levels: dict[int, list[Provider]] = {}
    for p in providers:
        levels.setdefault(_depth(p, batch), []).append(p)
    for depth in sorted(levels):
        written += sum(_parallel(one, levels[depth]))
    return written


def import_allocations(store: CassandraStore, consumers: Sequence[ImportedConsumer]) -> int:
    todo: list[ImportedConsumer] = []
    seen = store._run_many(q.GET_CONSUMER, [[ic.consumer.uuid] for ic in consumers])
    for ic, rows in zip(consumers, seen, strict=True):
        if rows and rows[0].generation is not None:
            continue
        if rows:
            raise InvalidInput(
                f"consumer {ic.consumer.uuid} is being written by a transaction: import into"
                " a store nothing else writes"
            )
        todo.append(ic)
    by_provider: dict[str, list[tuple[ImportedConsumer, dict[str, int]]]] = {}
    for ic in todo:
        for puuid, amounts in ic.allocations.items():
            check_amounts(ic.consumer.uuid, puuid, amounts)
            by_provider.setdefault(puuid, []).append((ic, amounts))

    def provider(puuid: str) -> None:
        held = by_provider[puuid]
        store._run_many(
            q.WRITE_LOCATOR,
            [[imported_entry_uuid(puuid, ic.consumer.uuid), puuid, 0] for ic, _ in held],
        )

        def change(part: _Partition, now: float) -> Any:
            alloc = dict(part.state.alloc_used)
            extra: list[tuple[str, list[Any]]] = []
            for ic, amounts in held:
                c = ic.consumer
                missing = sorted(set(amounts) - set(part.state.inventories))
                if missing:
                    raise InvalidInput(
                        f"consumer {c.uuid} holds {', '.join(missing)} on provider {puuid},"
                        " which has no inventory of it",
                        uuid=puuid,
                    )
                entry_id = imported_entry_uuid(puuid, c.uuid)
                if entry_id in part.entries:
                    continue
                entry = _Entry(
                    uuid=entry_id,
                    provider_uuid=puuid,
                    consumer_uuid=c.uuid,
                    amounts=dict(amounts),
                    status=ClaimStatus.CONFIRMED,
                    request_uuid=None,
                    group=None,
                    project_id=c.project_id,
                    user_id=c.user_id,
                    created_at=ic.created_at,
                    expires_at=None,
                )
                extra.append(store._entry_stmt(entry, now))
                for rc, n in amounts.items():
                    alloc[rc] = alloc.get(rc, 0) + n
            if not extra:
                return None
            return replace(part.state, alloc_used=alloc), extra

        # No bump: the provider came over at its source generation, which
        # already counts these allocations.
        store._update(puuid, None, change, bump=False, need_entries=True)

    _parallel(provider, sorted(by_provider))

    def consumer(ic: ImportedConsumer) -> int:
        c = ic.consumer
        applied, _ = store._lwt(
            INSERT_CONSUMER,
            [c.uuid, c.project_id, c.user_id, c.consumer_type or None, c.generation],
        )
        return int(applied)

    return sum(_parallel(consumer, todo))
