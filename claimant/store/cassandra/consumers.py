"""Consumers and their allocations: reads, writes (through ``transact``),
and usages by project."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from claimant.model import ClaimStatus, Consumer, ConsumerAllocations
from claimant.store.base import ReshapeSpec
from claimant.store.cassandra import queries as q
from claimant.store.cassandra.errors import _uncut
from claimant.store.cassandra.state import _entry_from_row
from claimant.store.cassandra.transact import Transact


class Consumers(Transact):
    def providers_of_consumers(self, consumer_uuids: Iterable[str]) -> set[str]:
        uuids = sorted(set(consumer_uuids))
        if not uuids:
            return set()
        self._settle_consumers(uuids)
        now = self.clock()
        out: set[str] = set()
        for rows in self._run_many(q.ENTRIES_BY["consumer_uuid"], [[u] for u in uuids]):
            for e in map(_entry_from_row, rows):
                if e is not None and e.live(now):
                    out.add(e.provider_uuid)
        return out

    def providers_of_group(self, group: str) -> dict[str, int]:
        now = self.clock()
        entries = self._entries_by("grp", group)
        if self._settle_consumers(e.consumer_uuid for e in entries):
            entries = self._entries_by("grp", group)
        consumers: dict[str, set[str]] = {}
        for e in entries:
            if e.live(now):
                consumers.setdefault(e.provider_uuid, set()).add(e.consumer_uuid)
        return {p: len(c) for p, c in consumers.items()}

    # -- consumers and multi-provider transactions --------------------------------------
    # docs/cassandra.md ("Multi-provider writes") gives the protocol and the
    # argument why every interleaving is safe.
    def get_consumer(self, uuid: str) -> Consumer | None:
        return self._read_consumer(uuid)[0]

    @_uncut
    def write_allocations(self, writes: list[ConsumerAllocations]) -> None:
        self._transact(writes, {}, bump=True)

    @_uncut
    def reshape(self, spec: ReshapeSpec) -> None:
        writes = [replace(w, provider_generations={}) for w in spec.allocations]
        self._transact(writes, spec.inventories, bump=True)

    @_uncut
    def remove_consumer_allocations(self, consumer_uuid: str) -> bool:
        home = self._consumer_home(consumer_uuid)
        current, _ = self._read_consumer(consumer_uuid, home=home)
        held = [
            e
            for e in self._entries_by(
                "consumer_uuid", consumer_uuid, cell=self._consumer_cell(home)
            )
            if e.status == ClaimStatus.CONFIRMED
        ]
        if not held:
            return False
        # No generation bump on the providers (as Placement), the same
        # transaction otherwise: it waits for a write in flight on the consumer.
        self._transact(
            [
                ConsumerAllocations(
                    consumer_uuid,
                    current.project_id if current else held[0].project_id,
                    current.user_id if current else held[0].user_id,
                )
            ],
            {},
            bump=False,
        )
        return True

    def usages_by_project(
        self, project_id: str, user_id: str | None = None, consumer_type: str | None = None
    ) -> dict[str, dict[str, int]]:
        # Any consumer may be joining the project by a transaction still
        # locking it: every decided one is finished first (the locks index
        # holds only writes in flight or left behind, so this stays small).
        for r in self._run(q.ALL_LOCKS):
            if r.txn is not None:
                self._finish(r.txn, consumer=r.uuid)
        now = self.clock()
        entries = [
            e
            for e in self._entries_by("project_id", project_id)
            if e.live(now) and (user_id is None or e.user_id == user_id)
        ]
        types: dict[str, str] = {}
        uuids = sorted({e.consumer_uuid for e in entries})
        for uuid, rows in zip(
            uuids, self._run_many(q.GET_CONSUMER, [[u] for u in uuids]), strict=True
        ):
            types[uuid] = (rows[0].consumer_type if rows else None) or "unknown"
        out: dict[str, dict[str, int]] = {}
        counted: dict[str, set[str]] = {}
        for e in entries:
            ctype = "all" if consumer_type == "all" else types[e.consumer_uuid]
            if consumer_type is not None and ctype != consumer_type:
                continue
            bucket = out.setdefault(ctype, {})
            counted.setdefault(ctype, set()).add(e.consumer_uuid)
            for rc, n in e.amounts.items():
                bucket[rc] = bucket.get(rc, 0) + n
        for ctype, bucket in out.items():
            bucket["consumer_count"] = len(counted[ctype])
        return out
