"""The pure parts of a multi-provider transaction: what a pending part on one
provider holds, what it reserves, and the plan a transaction record carries.
docs/cassandra.md ("Multi-provider writes") gives the protocol and why each
interleaving is safe; the store runs it."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Final

from cassandra.query import UNSET_VALUE

from claimant.model import Inventory

# How long a writer has between its record and its commit (store clock). Past
# it, anyone who meets the transaction may abort it.
TXN_DEADLINE: Final = 30.0
# Records outlive every marker that names them by far; a marker whose record is
# gone anyway is resolved as aborted (queries.ABORT_LOST_TXN).
TXN_RECORD_TTL: Final = 7 * 86400
PENDING, COMMITTED, ABORTED = "pending", "committed", "aborted"
# A transaction homed in a cell (docs/cells.md) carries it in its id,
# ``<uuid>@<cell>``: whoever meets the id knows where its record and its
# consumers' locks are decided before any read. Ids without one are global.
# ``@`` is never in a cell's name (the store checks ``dc`` against _DC).
_CELL_MARK: Final = "@"
_ENTRY_NS: Final = uuid.UUID("6f1d7b1e-35a4-4b8e-9a51-2b8f0e3c7d10")


def new_txn_id(cell: str | None, *, fast: bool = False) -> str:
    """A fresh transaction id, homed in ``cell`` (None: global)."""
    txn = (FAST_PREFIX if fast else "") + str(uuid.uuid4())
    return txn if cell is None else txn + _CELL_MARK + cell


def txn_cell(txn: str) -> str | None:
    """The cell a transaction id is homed in; None: global (ids made before
    consumers had homes, or on a keyspace of one cell)."""
    _, mark, cell = txn.rpartition(_CELL_MARK)
    return cell if mark else None


def home_param(cell: str | None) -> Any:
    """The value bound to ``consumers.cell``: a global write leaves the
    column alone (unset) rather than writing a null (a tombstone) each time."""
    return UNSET_VALUE if cell is None else cell


def entry_uuid(txn: str, provider_uuid: str, consumer_uuid: str) -> str:
    """The ledger entry a transaction writes for one consumer on one provider.
    Derived, not random: whoever rolls the transaction forward writes the same
    entry (and its locator) again."""
    return str(uuid.uuid5(_ENTRY_NS, f"{txn}/{provider_uuid}/{consumer_uuid}"))


@dataclass(frozen=True, slots=True)
class Pending:
    """One transaction's uncommitted part on one provider (in its statics).

    ``add``: consumer -> (project, user, amounts) to allocate on commit;
    ``old``: entry uuid -> (consumer, amounts), the confirmed entries the
    commit replaces (they stay counted until then); ``inventories``: the
    reshaper's new inventories, applied on commit; ``consumers``: every
    consumer the transaction writes (no claim of theirs is confirmed on this
    provider while the part is pending)."""

    txn: str
    deadline: float
    bump: bool
    add: dict[str, tuple[str, str, dict[str, int]]] = field(default_factory=dict)
    old: dict[str, tuple[str, dict[str, int]]] = field(default_factory=dict)
    inventories: dict[str, Inventory] | None = None
    consumers: tuple[str, ...] = ()

    def reserve(self) -> dict[str, int]:
        """What this part holds on top of the provider's allocations while it
        is pending: per consumer and class, the larger of old and new, and the
        old is already counted."""
        olds: dict[str, dict[str, int]] = {}
        for consumer, amounts in self.old.values():
            mine = olds.setdefault(consumer, {})
            for rc, n in amounts.items():
                mine[rc] = mine.get(rc, 0) + n
        out: dict[str, int] = {}
        for consumer, (_, _, amounts) in self.add.items():
            before = olds.get(consumer, {})
            for rc, n in amounts.items():
                extra = n - before.get(rc, 0)
                if extra > 0:
                    out[rc] = out.get(rc, 0) + extra
        return out

    def to_json(self) -> list[Any]:
        return [
            self.txn,
            self.deadline,
            self.bump,
            {c: [p, u, a] for c, (p, u, a) in self.add.items()},
            {e: [c, a] for e, (c, a) in self.old.items()},
            None if self.inventories is None else inventories_to_json(self.inventories),
            list(self.consumers),
        ]

    @classmethod
    def from_json(cls, v: list[Any]) -> Pending:
        return cls(
            txn=v[0],
            deadline=float(v[1]),
            bump=bool(v[2]),
            add={c: (p, u, dict(a)) for c, (p, u, a) in v[3].items()},
            old={e: (c, dict(a)) for e, (c, a) in v[4].items()},
            inventories=None if v[5] is None else inventories_from_json(v[5]),
            # Parts written before ``consumers`` existed name none.
            consumers=tuple(v[6]) if len(v) > 6 else (),
        )


def inventories_to_json(invs: dict[str, Inventory]) -> dict[str, list[Any]]:
    return {
        rc: [i.total, i.reserved, i.min_unit, i.max_unit, i.step_size, i.allocation_ratio]
        for rc, i in sorted(invs.items())
    }


def inventories_from_json(d: dict[str, list[Any]]) -> dict[str, Inventory]:
    return {rc: Inventory(rc, *v) for rc, v in d.items()}


def pending_to_text(items: tuple[Pending, ...]) -> str | None:
    return json.dumps([p.to_json() for p in items]) if items else None


def pending_from_text(text: str | None) -> tuple[Pending, ...]:
    return tuple(Pending.from_json(v) for v in json.loads(text)) if text else ()


@dataclass(frozen=True, slots=True)
class ConsumerPlan:
    """What committing does to one consumer: ``generation`` is the one it was
    locked at (None: it did not exist); ``keep`` False deletes it."""

    project_id: str
    user_id: str
    consumer_type: str | None
    generation: int | None
    keep: bool


@dataclass(frozen=True, slots=True)
class Plan:
    """Every partition a transaction touches: what a record carries so that
    anyone can finish the transaction (roll it forward or back)."""

    providers: tuple[str, ...]
    consumers: dict[str, ConsumerPlan]

    def to_text(self) -> str:
        return json.dumps(
            {
                "providers": list(self.providers),
                "consumers": {
                    c: [p.project_id, p.user_id, p.consumer_type, p.generation, p.keep]
                    for c, p in self.consumers.items()
                },
            }
        )

    @classmethod
    def from_text(cls, text: str | None) -> Plan | None:
        if not text:
            return None
        d = json.loads(text)
        return cls(
            providers=tuple(d["providers"]),
            consumers={c: ConsumerPlan(*v) for c, v in d["consumers"].items()},
        )


# -- the one-provider fast path (docs/cassandra.md, "One consumer on one provider")
#: Ids of fast-path writes start with this: their lock has no record in
#: ``txns``; the provider's own LWT is their commit point.
FAST_PREFIX: Final = "fast-"


def is_fast(txn: str) -> bool:
    return txn.startswith(FAST_PREFIX)


@dataclass(frozen=True, slots=True)
class FastPlan:
    """What a fast-path lock carries (``consumers.txn_plan``), so that whoever
    meets the lock can finish the write: the one provider written, and what
    committing does to the consumer (``consumer_type`` None keeps its type;
    ``generation`` None: the consumer did not exist)."""

    provider: str
    project_id: str
    user_id: str
    consumer_type: str | None
    generation: int | None

    def to_text(self) -> str:
        return json.dumps(
            [self.provider, self.project_id, self.user_id, self.consumer_type, self.generation]
        )

    @classmethod
    def from_text(cls, text: str | None) -> FastPlan | None:
        return cls(*json.loads(text)) if text else None
