"""Writes of several providers and consumers (allocations, reshapes): the
transaction record, consumer locks, pending parts and the decision
(txn.py has the record's format; docs/cassandra.md the protocol)."""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import replace

from claimant.model import (
    CellUnavailable,
    ClaimantError,
    ClaimStatus,
    Consumer,
    ConsumerAllocations,
    ConsumerGenerationConflict,
    GenerationConflict,
    InUse,
    InvalidInput,
    Inventory,
    StoreUnavailable,
)
from claimant.store._common import (
    check_amounts,
    check_consumer_generation,
    does_not_fit,
    generation_conflict,
)
from claimant.store.cassandra import fast
from claimant.store.cassandra import queries as q
from claimant.store.cassandra.claims import Claims
from claimant.store.cassandra.errors import _backoff
from claimant.store.cassandra.state import (
    LOCK_WAIT,
    _Busy,
    _Change,
    _ConsumerHome,
    _cross_cell,
    _Partition,
    _Plan,
)
from claimant.store.cassandra.txn import (
    COMMITTED,
    PENDING,
    TXN_DEADLINE,
    TXN_RECORD_TTL,
    ConsumerPlan,
    Pending,
    Plan,
    home_param,
    new_txn_id,
    txn_cell,
)

log = logging.getLogger(__name__)


class Transact(Claims):
    def _transact(
        self,
        writes: list[ConsumerAllocations],
        inventories: dict[str, tuple[int, dict[str, Inventory]]],
        *,
        bump: bool,
    ) -> None:
        """Allocations (and reshaped inventories) over several providers and
        consumers, as one transaction. A consumer locked by a write still in
        flight is a definite conflict for a caller that named the generation
        it read; a caller that did not ("any") waits for it, boundedly."""
        for w in writes:
            for amounts in w.allocations.values():
                if amounts:
                    check_amounts(amounts, "an allocation")
        if len({w.consumer_uuid for w in writes}) != len(writes):
            raise InvalidInput("a consumer appears twice in one allocation write")
        if (
            self.fast_writes
            and len(writes) == 1
            and not inventories
            and bump
            and fast.write(self, writes[0])
        ):
            return
        give_up = time.monotonic() + LOCK_WAIT
        for attempt in itertools.count():
            try:
                self._transact_once(writes, inventories, bump)
                return
            except _Busy as busy:
                named = any(w.expected_generation != "any" for w in writes)
                if named or time.monotonic() > give_up:
                    raise ConsumerGenerationConflict(
                        f"consumer {busy.consumer} is being written by another request: "
                        "re-read it and retry",
                        uuid=busy.consumer,
                    ) from None
                _backoff(min(attempt + 1, 6))

    def _transact_once(
        self,
        writes: list[ConsumerAllocations],
        inventories: dict[str, tuple[int, dict[str, Inventory]]],
        bump: bool,
    ) -> None:
        now = self.clock()
        homes = {w.consumer_uuid: self._consumer_home(w.consumer_uuid) for w in writes}
        # Every partition of the write in this one cell: its record too.
        cell = self._write_home(writes, inventories, homes)
        txn, deadline = new_txn_id(cell), now + TXN_DEADLINE
        current = self._read_consumers(writes, homes)
        plans = self._provider_plans(writes, inventories, cell, now)
        names = frozenset(current)
        parts = self._check_fits(plans, names, txn, deadline, now, bump)
        plan = Plan(providers=tuple(sorted(plans)), consumers=_consumer_plans(writes, current))
        self._create_txn(txn, deadline, plan)
        self.stats["txns"] += 1
        self._hook("record", txn)
        try:
            self._lock_and_pend(txn, deadline, plan, plans, names, parts, cell, now, bump)
        except BaseException:
            self._abandon(txn, plan)
            raise
        self._commit(txn, plan, parts)

    def _read_consumers(
        self, writes: list[ConsumerAllocations], homes: dict[str, _ConsumerHome]
    ) -> dict[str, Consumer | None]:
        """Each consumer of the write as it is (SERIAL), none locked by a write
        in flight, each at the generation its writer named."""
        current: dict[str, Consumer | None] = {}
        for w in sorted(writes, key=lambda w: w.consumer_uuid):
            consumer, holder = self._read_consumer(
                w.consumer_uuid, serial=True, home=homes[w.consumer_uuid]
            )
            if holder is not None:
                raise _Busy(w.consumer_uuid)
            current[w.consumer_uuid] = consumer
            check_consumer_generation(
                w.consumer_uuid,
                w.expected_generation,
                None if consumer is None else consumer.generation,
            )
        return current

    def _provider_plans(
        self,
        writes: list[ConsumerAllocations],
        inventories: dict[str, tuple[int, dict[str, Inventory]]],
        cell: str | None,
        now: float,
    ) -> dict[str, _Plan]:
        """Each provider's part of the write: new inventories, the generation
        its caller saw, what each consumer gets there."""
        plans: dict[str, _Plan] = {
            puuid: _Plan(inventories=self._validate_inventories(invs), expected_generation=gen)
            for puuid, (gen, invs) in inventories.items()
        }
        for w in writes:
            # Read before the lock, to refuse a write that cannot fit without
            # writing anything; checked again once the lock is held.
            # Providers of its live claims too: the pending part there keeps
            # them from being confirmed until this write is decided.
            for e in self._entries_by("consumer_uuid", w.consumer_uuid, cell=cell):
                if e.live(now):
                    plans.setdefault(e.provider_uuid, _Plan())
            for puuid, gen in w.provider_generations.items():
                plans.setdefault(puuid, _Plan()).expected_generation = gen
            for puuid, amounts in w.allocations.items():
                if amounts:
                    plans.setdefault(puuid, _Plan()).add[w.consumer_uuid] = (
                        w.project_id,
                        w.user_id,
                        dict(amounts),
                    )
        if cell is not None:
            # A live claim of a consumer elsewhere (the native scheduler does
            # not know consumers' homes) is a part the write cannot have.
            elsewhere = {self._home(p, found=True) for p in plans} - {cell}
            if elsewhere:
                raise _cross_cell(
                    "a consumer homed in one cell holds claims in another", {cell, *elsewhere}
                )
        return plans

    def _check_fits(
        self,
        plans: dict[str, _Plan],
        names: frozenset[str],
        txn: str,
        deadline: float,
        now: float,
        bump: bool,
    ) -> dict[str, _Partition | None]:
        # Every provider exists and the write fits now: a write that can never
        # fit is refused before anything is written. A plain read: the pending
        # write checks again against what it conditions on.
        parts: dict[str, _Partition | None] = {}
        for puuid in sorted(plans):
            part = parts[puuid] = self._read_partition(puuid, serial=False)
            expected = plans[puuid].expected_generation
            if expected is not None and part.state.generation != expected:
                raise generation_conflict(puuid, part.state.generation, expected)
            self._pending_change(part, now, plans[puuid], names, txn, deadline, bump)
        return parts

    def _lock_and_pend(
        self,
        txn: str,
        deadline: float,
        plan: Plan,
        plans: dict[str, _Plan],
        names: frozenset[str],
        parts: dict[str, _Partition | None],
        cell: str | None,
        now: float,
        bump: bool,
    ) -> None:
        """Lock the consumers, then write each provider's pending part (into
        ``parts``); the caller abandons the transaction if this raises."""
        for c in sorted(plan.consumers):
            self._lock_consumer(c, txn, deadline, plan.consumers[c].generation)
        # Locked, the consumers' allocations cannot change under us. A
        # consumer deleted and made again since it was read has its
        # generation back but maybe other providers: then it moved. A
        # claim made since the read could be confirmed unseen: retry.
        for c in sorted(plan.consumers):
            for e in self._entries_by("consumer_uuid", c, cell=cell):
                if e.live(now) and e.provider_uuid not in plans:
                    raise _Busy(c)
        self._hook("locked", txn)
        for puuid in plan.providers:
            # Not from the check's read: the record and the locks came
            # since, and a lost LWT costs more than a SERIAL read.
            parts[puuid] = self._write_pending(
                puuid, plans[puuid], names, txn, deadline, bump, None
            )
        self._hook("pending", txn)

    def _commit(self, txn: str, plan: Plan, parts: dict[str, _Partition | None]) -> None:
        # The commit point: one LWT on one partition.
        try:
            status = self._decide(txn, COMMITTED)
        except StoreUnavailable:
            # Deciding again settles it: an abort loses to a commit that
            # applied. Unknown still: the caller is told so (503).
            if self._abandon(txn, plan) != COMMITTED:
                raise
            status = COMMITTED
        if status != COMMITTED:
            self._abandon(txn, plan)
            raise GenerationConflict(
                "the write outlived its deadline and another request abandoned it; "
                "nothing was written: retry"
            )
        self._hook("committed", txn)
        try:
            self._finish_decided(txn, plan, commit=True, known=parts)
        except ClaimantError as exc:
            # Committed is durable: whoever meets what is left rolls it forward.
            log.warning("transaction %s committed, roll-forward left to readers: %s", txn, exc)

    def _pending_change(
        self,
        part: _Partition,
        now: float,
        plan: _Plan,
        names: frozenset[str],
        txn: str,
        deadline: float,
        bump: bool,
    ) -> _Change:
        """The provider with this transaction's part added, if it fits both
        once committed and while pending (the larger of old and new held)."""
        st = part.state
        puuid = st.uuid
        item = Pending(
            txn=txn,
            deadline=deadline,
            bump=bump,
            add=dict(plan.add),
            old={
                e.uuid: (e.consumer_uuid, dict(e.amounts))
                for e in part.entries.values()
                if e.consumer_uuid in names and e.status == ClaimStatus.CONFIRMED
            },
            inventories=plan.inventories,
            consumers=tuple(sorted(names)),
        )
        invs = plan.inventories if plan.inventories is not None else st.inventories
        for _, _, amounts in plan.add.values():
            problems = [
                p for rc, n in amounts.items() if rc in invs for p in invs[rc].amount_problems(n)
            ]
            if problems:
                raise InvalidInput("; ".join(problems), uuid=puuid)
        before = st.used(now)
        after = dict(before)
        for _, amounts in item.old.values():
            for rc, n in amounts.items():
                after[rc] = after.get(rc, 0) - n
        for _, _, amounts in item.add.values():
            for rc, n in amounts.items():
                after[rc] = after.get(rc, 0) + n
        reasons = []
        for rc, n in sorted(after.items()):
            if n <= 0:
                continue
            inv = invs.get(rc)
            if inv is None:
                reasons.append(f"{rc}: provider has no inventory of this class")
            elif n > inv.capacity and (plan.inventories is not None or n > before.get(rc, 0)):
                reasons.append(f"{rc}: used {n} would exceed capacity {inv.capacity}")
        if plan.inventories is None and not reasons:
            fit = st.fit_inventories()
            for rc, extra in sorted(item.reserve().items()):
                n = before.get(rc, 0) + extra
                if rc in fit and n > fit[rc].capacity:
                    reasons.append(f"{rc}: used {n} would exceed capacity {fit[rc].capacity}")
        if reasons:
            if plan.inventories is not None and not plan.add:
                # Only the new inventory is short of what is allocated already.
                raise InUse(
                    f"reshape would leave provider {puuid} with allocations beyond its "
                    "inventory: " + "; ".join(reasons),
                    uuid=puuid,
                )
            raise does_not_fit(puuid, reasons)
        return (
            replace(st, pending=(*st.pending, item)),
            [(q.WRITE_TXN_ROW, [puuid, "t:" + txn, deadline])],
        )

    def _write_pending(
        self,
        puuid: str,
        plan: _Plan,
        names: frozenset[str],
        txn: str,
        deadline: float,
        bump: bool,
        first: _Partition | None,
    ) -> _Partition | None:
        """Write one provider's pending part; returns the partition as written
        (None if that is not known), for the roll-forward to start from."""
        base: list[_Partition] = []

        def change(part: _Partition, now: float) -> _Change | None:
            base[:] = [part]
            if part.state.pending_part(txn) is not None:
                return None
            return self._pending_change(part, now, plan, names, txn, deadline, bump)

        new = self._update(
            puuid,
            plan.expected_generation,
            change,
            bump=bump,
            need_entries=True,
            entry_key="t:" + txn,
            first=first,
        )
        if not base or new.pending_part(txn) is None:
            return None
        return _Partition(new, dict(base[0].entries))

    def _create_txn(self, txn: str, deadline: float, plan: Plan) -> None:
        cell = txn_cell(txn)
        applied, row = self._lwt_sure(
            q.CREATE_TXN,
            [txn, deadline, plan.to_text(), self.clock(), TXN_RECORD_TTL],
            done=lambda: bool(self._run(q.READ_TXN, [txn], serial=True, cell=cell)),
            cell=cell,
        )
        if not applied and (row is None or row.status != PENDING):
            raise StoreUnavailable(f"transaction record {txn} could not be written")

    def _lock_consumer(self, uuid: str, txn: str, deadline: float, generation: int | None) -> None:
        # The consumer's home is the transaction's: a new one is made there.
        cell = txn_cell(txn)
        applied, row = self._lwt_sure(
            q.LOCK_CONSUMER,
            [txn, deadline, home_param(cell), uuid, generation],
            done=lambda: self._consumer_txn(uuid, cell) == txn,
            cell=cell,
        )
        if applied or (row is not None and row.txn == txn):
            return
        # Locked by another write, or moved since it was read: either way the
        # caller's reading is stale.
        raise _Busy(uuid)

    def _write_home(
        self,
        writes: list[ConsumerAllocations],
        inventories: dict[str, tuple[int, dict[str, Inventory]]],
        homes: dict[str, _ConsumerHome],
    ) -> str | None:
        """The one cell every partition of an allocation write is homed in:
        its consumers' homes and its providers'. None: global, as before
        homes (a consumer made before them, providers without a home, one
        cell). A write that would span cells is refused before anything is
        written (docs/cells.md, "A consumer has a home cell")."""
        if len(self.dcs) < 2:
            return None
        for w in writes:
            home = homes[w.consumer_uuid]
            if home.new and home.unreachable and w.expected_generation is not None:
                # It may exist there: made here too, it would be two consumers.
                raise CellUnavailable(
                    f"consumer {w.consumer_uuid} is in no cell that answers, and cell"
                    f" {', '.join(home.unreachable)} is unreachable: it may be homed there",
                    cell=home.unreachable[0],
                    cells=list(home.unreachable),
                )
        if any(not h.new and h.cell is None for h in homes.values()):
            # Made before consumers had homes: global, as it always was.
            if any(h.cell is not None for h in homes.values()):
                raise _cross_cell("consumers homed in a cell and a global one", [])
            return None
        cells = {h.cell for h in homes.values() if not h.new}
        named = {p for w in writes for p, a in w.allocations.items() if a}
        named |= {p for w in writes for p in w.provider_generations}
        cells |= {self._home(p, found=True) for p in sorted(named | set(inventories))}
        if not cells:
            # New consumers and no provider named (a DELETE of what native
            # claims confirmed): the providers of their entries, read here.
            now = self.clock()
            for w in writes:
                for e in self._entries_by("consumer_uuid", w.consumer_uuid, cell=self.dc):
                    if e.live(now):
                        cells.add(self._home(e.provider_uuid))
        if len(cells) > 1:
            raise _cross_cell("providers or consumers homed in different cells", cells)
        return cells.pop() if cells else self.local_cell()


def _consumer_plans(
    writes: list[ConsumerAllocations], current: dict[str, Consumer | None]
) -> dict[str, ConsumerPlan]:
    """What the record says of each consumer: its owner, type and the
    generation it was read at; ``keep``: it still holds something after."""
    plans: dict[str, ConsumerPlan] = {}
    for w in writes:
        consumer = current[w.consumer_uuid]
        plans[w.consumer_uuid] = ConsumerPlan(
            project_id=w.project_id,
            user_id=w.user_id,
            consumer_type=w.consumer_type or (consumer.consumer_type if consumer else None) or None,
            generation=consumer.generation if consumer else None,
            keep=any(a for a in w.allocations.values()),
        )
    return plans
