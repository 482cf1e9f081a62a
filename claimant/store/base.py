"""The store contract. Every backend implements ``Store``; one conformance
suite (tests/store/) proves each of them.

Rules every backend keeps:
- Nothing is ever over capacity: a claim or allocation write checks the
  amounts against capacity minus what live claims and allocations hold, and
  is conditioned on the provider generation it was decided against.
- Every change to a provider (inventories, traits, aggregates, attributes,
  claims, allocations) bumps its generation by one; a heartbeat does not.
- A write either happens whole or not at all, and a failed write raises one of
  claimant's errors (``claimant.model.errors``), never a driver error.
- Claims past their ``expires_at`` count for nothing, whether or not a sweep
  has removed them yet; no read ever shows an expired claim as held.
"""

from __future__ import annotations

import abc
import contextlib
import time
import uuid as uuid_mod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from claimant.model import (
    DEFAULT_CLAIM_TTL,
    LOCAL_CELL,
    Claim,
    ClaimantError,
    ClaimStatus,
    Consumer,
    ConsumerAllocations,
    InvalidInput,
    Inventory,
    NotFound,
    Provider,
    ProviderUsage,
    Request,
    RequestGroup,
    ResourceClass,
    ResourceType,
    Strategy,
    deadline,
)
from claimant.model.errors import UNKNOWN_CELL
from claimant.model.events import Event, Subject


@dataclass(frozen=True, slots=True)
class AggregateName:
    """A name for an aggregate uuid (``create_aggregate``). Membership stays
    keyed by uuid: a name is only a label, and an aggregate need not have one."""

    name: str
    uuid: str
    created_at: float


def check_aggregate_name(name: str) -> None:
    """A name is 1-200 printable characters and not uuid-shaped, so that a
    reference that parses as a uuid is always a uuid."""
    if not name or len(name) > 200 or not name.isprintable() or name != name.strip():
        raise InvalidInput(
            f"aggregate name {name!r}: 1-200 printable characters, no surrounding spaces",
            field="name",
        )
    if "," in name or "/" in name or name.startswith("!") or name.startswith("in:"):
        # member_of's own syntax ("in:A,B", "!A"), and "/" that a URL path splits on.
        raise InvalidInput(
            f"aggregate name {name!r}: no ',' or '/', no leading '!' or 'in:'", field="name"
        )
    try:
        uuid_mod.UUID(name)
    except ValueError:
        return
    raise InvalidInput(f"aggregate name {name!r} looks like a uuid", field="name")


def aggregate_key(ref: str) -> tuple[str, str]:
    """("uuid", normalised uuid) when ``ref`` parses as a uuid, else ("name", ref)."""
    try:
        return "uuid", str(uuid_mod.UUID(ref))
    except ValueError:
        return "name", ref


def aggregate_not_found(ref: str) -> NotFound:
    return NotFound(f"no aggregate named {ref!r}", kind="aggregate", name=ref)


class Unset:
    """The type of ``UNSET``: an argument left out, where None is a value
    (``update_provider(parent_uuid=None)`` makes a root)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset()


@dataclass(frozen=True, slots=True)
class ProviderFilter:
    """What ``list_providers`` selects. ``group`` adds every condition of a
    request group (its resources mean: has capacity free for these amounts)."""

    uuid: str | None = None
    name: str | None = None
    in_tree: str | None = None
    group: RequestGroup | None = None


@dataclass(frozen=True, slots=True)
class CandidateQuery:
    """Providers that fit one request group, answered by the store.

    The store returns at most ``limit`` candidates, ordered by the free amount
    of ``sort_class`` (most free first for spread, least for pack) so the
    scheduler weighs the best slice rather than every provider."""

    group: RequestGroup
    limit: int = 100
    strategy: Strategy = Strategy.SPREAD
    sort_class: str | None = None
    exclude: frozenset[str] = frozenset()
    # Restrict to these trees (root uuids); None means anywhere.
    roots: frozenset[str] | None = None
    # Providers whose agent heartbeat is older than this are skipped; providers
    # with no heartbeat at all (not agent-managed) are always eligible.
    heartbeat_after: float | None = None
    # Disabled providers too (to explain a failure, never to place).
    include_disabled: bool = False

    def order_class(self) -> str:
        if self.sort_class:
            return self.sort_class
        if "MEMORY_MB" in self.group.resources:
            return "MEMORY_MB"
        return sorted(self.group.resources)[0]


@dataclass(frozen=True, slots=True)
class TreeQuery:
    """Provider trees that may host a request spread over a tree and sharing
    providers (the candidate engine's input), a page at a time.

    ``needs``: class -> the least amount any group asks of it. A tree is
    returned when, for every class, one of its providers has that much free,
    or a sharing provider (trait MISC_SHARES_VIA_AGGREGATE) with that much
    free shares an aggregate with one of its providers. A backend may return
    more trees than that, never fewer. Trees come in root-uuid order, at most
    ``max_roots`` per page, starting after the root uuid ``after``."""

    needs: dict[str, int]
    max_roots: int = 100
    after: str | None = None


@dataclass(frozen=True, slots=True)
class TreePage:
    """Every provider of each tree of the page, and every sharing provider
    that shares an aggregate with one of them, with their usages."""

    roots: list[str]
    providers: list[ProviderUsage]
    # The ``after`` of the next page; None when no tree is left.
    after: str | None


@dataclass(frozen=True, slots=True)
class CloudSummary:
    """The whole cloud in a few numbers (what ``/metrics`` shows).

    ``providers``: (health, enabled) -> how many, health ``up`` (heartbeat
    within the timeout), ``stale`` (past it) or ``no_agent`` (never
    heartbeated)."""

    capacity: dict[str, int]
    used: dict[str, int]
    providers: dict[tuple[str, bool], int]
    claims_live: int


@dataclass(frozen=True, slots=True)
class ClaimSpec:
    """One claim to write: amounts on one provider, decided against a generation."""

    provider_uuid: str
    expected_generation: int
    amounts: dict[str, int]
    consumer_uuid: str
    request_uuid: str | None = None
    group: str | None = None
    project_id: str = ""
    user_id: str = ""
    ttl: float = DEFAULT_CLAIM_TTL
    claim_uuid: str | None = None


@dataclass(frozen=True, slots=True)
class ReshapeSpec:
    """Placement's reshaper: new inventories and allocations, in one step."""

    inventories: dict[str, tuple[int, dict[str, Inventory]]] = field(default_factory=dict)
    allocations: list[ConsumerAllocations] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ImportedConsumer:
    """One consumer as a bulk import brings it over: its record (generation and
    type included) and its confirmed allocations, provider uuid -> amounts."""

    consumer: Consumer
    allocations: dict[str, dict[str, int]]
    created_at: float = 0.0


class Store(abc.ABC):
    """One shared store of providers, ledgers and requests."""

    url: str
    #: the clock used for claim expiry; tests swap it instead of sleeping.
    clock: Callable[[], float] = staticmethod(time.time)
    #: How many writers of one process the backend serves at once to any
    #: gain: callers size their pools by it instead of asking which backend
    #: this is. A backend with one write lock (SQLite) says 1: more writers
    #: only queue, and schedulers that queue lose compare-and-sets.
    write_concurrency: int = 64

    # -- cells (docs/cells.md) ---------------------------------------------
    def cells(self) -> list[str]:
        """The cells (data centres) this store has replicas in, sorted. A
        store of one unnamed cell (SQLite) has ``[LOCAL_CELL]``."""
        return [LOCAL_CELL]

    def local_cell(self) -> str | None:
        """This service's own cell: where providers it creates are homed and
        which a request prefers. None on a store of several cells that was
        not told which is its own (``dc=``)."""
        return LOCAL_CELL

    def home_of(self, cell: str | None) -> str | None:
        """The cell a new provider asking for ``cell`` gets (None or
        LOCAL_CELL: this store's own); InvalidInput ``unknown_cell`` if the
        store has no such cell."""
        if cell is None or cell == LOCAL_CELL:
            return self.local_cell()
        check_cell(self, cell)
        return cell

    # -- lifecycle ---------------------------------------------------------
    @abc.abstractmethod
    def migrate(self) -> int:
        """Create or upgrade the schema; returns the schema version."""

    @abc.abstractmethod
    def drop(self) -> None:
        """Remove everything this store holds (schema included)."""

    @abc.abstractmethod
    def close(self) -> None: ...

    @abc.abstractmethod
    def reset(self) -> None:
        """Delete every row, keep the schema (tests and the simulator use it)."""

    # -- resource classes, traits, types -----------------------------------
    @abc.abstractmethod
    def list_resource_classes(self) -> list[ResourceClass]:
        """Standard classes plus custom ones."""

    @abc.abstractmethod
    def get_resource_class(self, name: str) -> ResourceClass: ...

    @abc.abstractmethod
    def create_resource_class(self, rc: ResourceClass) -> ResourceClass:
        """Custom classes only; AlreadyExists if present."""

    @abc.abstractmethod
    def delete_resource_class(self, name: str) -> None:
        """InUse while any inventory has it; InvalidInput for standard classes."""

    @abc.abstractmethod
    def list_traits(self) -> list[str]:
        """Standard traits plus custom ones, sorted."""

    @abc.abstractmethod
    def create_trait(self, name: str) -> bool:
        """Returns True if created, False if it already existed."""

    @abc.abstractmethod
    def delete_trait(self, name: str) -> None:
        """InUse while a provider has it; InvalidInput for standard traits."""

    @abc.abstractmethod
    def traits_in_use(self) -> set[str]: ...

    @abc.abstractmethod
    def list_resource_types(self) -> list[ResourceType]: ...

    @abc.abstractmethod
    def get_resource_type(self, name: str) -> ResourceType: ...

    @abc.abstractmethod
    def create_resource_type(self, rtype: ResourceType) -> ResourceType: ...

    @abc.abstractmethod
    def delete_resource_type(self, name: str) -> None:
        """InUse while a provider has this type; InvalidInput for built-ins."""

    # -- aggregate names ---------------------------------------------------
    @abc.abstractmethod
    def create_aggregate(self, name: str, uuid: str | None = None) -> AggregateName:
        """Name an aggregate: ``uuid`` (normalised by the caller) or a new one.
        AlreadyExists if the name is taken or the uuid already has a name
        (field ``name`` / ``uuid``); InvalidInput for a bad name. Providers
        already in that uuid are members of the named aggregate at once."""

    @abc.abstractmethod
    def get_aggregate(self, ref: str) -> AggregateName:
        """By name, or by uuid when ``ref`` is a uuid. NotFound otherwise."""

    @abc.abstractmethod
    def list_aggregates(self) -> list[AggregateName]:
        """Every named aggregate, by name."""

    @abc.abstractmethod
    def delete_aggregate(self, ref: str) -> None:
        """Forget a name (by name or uuid). Memberships are untouched: the
        providers stay in the uuid, which is then unnamed. NotFound if none."""

    # -- providers ---------------------------------------------------------
    @abc.abstractmethod
    def create_provider(self, provider: Provider) -> Provider:
        """Stores a new provider at generation 0 (inventories, traits,
        aggregates and attributes included). AlreadyExists on a taken uuid or
        name; NotFound if the parent does not exist."""

    @abc.abstractmethod
    def get_provider(self, uuid: str) -> Provider: ...

    @abc.abstractmethod
    def list_providers(self, flt: ProviderFilter | None = None) -> list[Provider]: ...

    def list_usages(self, flt: ProviderFilter | None = None) -> list[ProviderUsage]:
        """``list_providers`` with each provider's capacity and use per class,
        as ``get_usage`` counts them (what an operator's listing shows).
        Backends answer it in one read; this default reads each provider."""
        out = []
        for p in self.list_providers(flt):
            try:
                out.append(self.get_usage(p.uuid))
            except NotFound:
                continue  # deleted since it was listed
        return out

    @abc.abstractmethod
    def update_provider(
        self,
        uuid: str,
        expected_generation: int | None,
        *,
        name: str | Unset = UNSET,
        parent_uuid: str | Unset | None = UNSET,
        attributes: dict[str, Any] | Unset = UNSET,
        enabled: bool | Unset = UNSET,
    ) -> Provider:
        """Compare-and-set; a new parent must not be a descendant (no cycles)."""

    @abc.abstractmethod
    def delete_provider(self, uuid: str) -> None:
        """InUse while it has children or ledger entries."""

    @abc.abstractmethod
    def set_inventories(
        self,
        uuid: str,
        expected_generation: int | None,
        inventories: dict[str, Inventory],
        *,
        allow_overcapacity: bool = False,
    ) -> Provider:
        """Replace all inventories. Removing a class that is in use is InUse;
        shrinking capacity below what is used is InUse unless
        ``allow_overcapacity`` (Placement's behaviour)."""

    @abc.abstractmethod
    def set_traits(
        self, uuid: str, expected_generation: int | None, traits: Iterable[str]
    ) -> Provider:
        """Unknown trait names are NotFound."""

    @abc.abstractmethod
    def set_aggregates(
        self, uuid: str, expected_generation: int | None, aggregates: Iterable[str]
    ) -> Provider: ...

    @abc.abstractmethod
    def heartbeat(self, uuid: str, at: float | None = None) -> None:
        """Record that the provider's agent is alive; does not bump the generation."""

    # -- queries -----------------------------------------------------------
    @abc.abstractmethod
    def find_candidates(self, query: CandidateQuery) -> list[ProviderUsage]:
        """Providers that fit the group now (amounts, units, traits, attributes,
        aggregates, tree, type, enabled, heartbeat), with their usages."""

    @abc.abstractmethod
    def candidate_trees(self, query: TreeQuery) -> TreePage:
        """One page of the trees that may host a multi-provider request
        (``TreeQuery``), whole, with usages: what the candidate engine
        searches. Bounded: it reads the trees of the page, not every provider."""

    @abc.abstractmethod
    def get_usage(self, uuid: str) -> ProviderUsage:
        """One provider with its current usages (a fresh read, for a retry)."""

    # -- claims and allocations --------------------------------------------
    @abc.abstractmethod
    def claim(self, spec: ClaimSpec) -> Claim:
        """Write a claim with compare-and-set on the provider generation.
        GenerationConflict if the generation moved; InsufficientCapacity if
        it does not fit; NotFound if the provider is gone."""

    def claim_and_record(
        self, spec: ClaimSpec, record: Callable[[Claim], Request]
    ) -> tuple[Claim, Request]:
        """``claim(spec)`` and ``create_request(record(claim))``
        (insert-if-absent) as one write where the backend can: a placement's
        last claim and its request's only record. Either both or neither:
        ``AlreadyExists`` (the uuid is taken) leaves no claim, a failed claim
        no record. This default writes the claim, then the record, and gives
        the claim back if the record is refused."""
        claim = self.claim(spec)
        try:
            saved = self.create_request(record(claim))
        except BaseException:
            with contextlib.suppress(ClaimantError), deadline.shielded():
                self.release_claim(claim.uuid)
            raise
        return claim, saved

    @abc.abstractmethod
    def confirm_claim(self, claim_uuid: str) -> Claim:
        """Turn a live claim into an allocation (no expiry). Idempotent on a
        confirmed claim; ClaimNotActive if it expired or was released."""

    @abc.abstractmethod
    def release_claim(self, claim_uuid: str) -> None:
        """Remove a claim or allocation from its provider's ledger. NotFound if
        there is no such live entry."""

    @abc.abstractmethod
    def get_claim(self, claim_uuid: str) -> Claim: ...

    @abc.abstractmethod
    def list_claims(
        self,
        *,
        provider_uuid: str | None = None,
        consumer_uuid: str | None = None,
        request_uuid: str | None = None,
        group: str | None = None,
        status: ClaimStatus | None = None,
    ) -> list[Claim]:
        """Live ledger entries (never expired ones)."""

    @abc.abstractmethod
    def expire_claims(self) -> int:
        """Remove claims past their expiry; returns how many."""

    @abc.abstractmethod
    def providers_of_consumers(self, consumer_uuids: Iterable[str]) -> set[str]:
        """Providers holding live claims or allocations of these consumers."""

    @abc.abstractmethod
    def providers_of_group(self, group: str) -> dict[str, int]:
        """Provider uuid -> number of consumers of server group ``group`` on it."""

    # -- consumers (Placement's allocation model) ---------------------------
    @abc.abstractmethod
    def get_consumer(self, uuid: str) -> Consumer | None: ...

    @abc.abstractmethod
    def write_allocations(self, writes: list[ConsumerAllocations]) -> None:
        """Replace each consumer's confirmed allocations, all or nothing, with
        the capacity check and generation bumps a claim has. Consumer
        generations are checked and bumped; a consumer left with nothing is
        deleted."""

    @abc.abstractmethod
    def reshape(self, spec: ReshapeSpec) -> None:
        """Inventories and allocations changed in one step (Placement 1.30)."""

    @abc.abstractmethod
    def usages_by_project(
        self, project_id: str, user_id: str | None = None, consumer_type: str | None = None
    ) -> dict[str, dict[str, int]]:
        """consumer_type (or "all") -> class -> amount used by the project."""

    # -- Placement compatibility ---------------------------------------------
    # Not abstract: the fallbacks are correct but bump generations where
    # Placement does not; a backend overrides them to match Placement exactly.
    def update_provider_quietly(
        self,
        uuid: str,
        *,
        name: str | Unset = UNSET,
        parent_uuid: str | Unset | None = UNSET,
    ) -> Provider:
        """Placement's PUT /resource_providers/{uuid}: rename or re-parent with
        the checks of ``update_provider`` but without a generation bump
        (Placement does not bump it, and its clients and tests count on that)."""
        return self.update_provider(uuid, None, name=name, parent_uuid=parent_uuid)

    def has_nested_providers(self) -> bool:
        """Whether any provider has a parent. Placement's allocation candidates
        take a one-query shortcut when none has (and no provider shares)."""
        return any(p.parent_uuid for p in self.list_providers())

    def flat_cloud(self) -> bool:
        """No provider has a parent and none may share: Placement's candidates
        then take a one-query shortcut. Asked on every such request."""
        return not (self.has_nested_providers() or self.has_sharing_providers())

    def has_sharing_providers(self) -> bool:
        """Whether any provider may have the trait MISC_SHARES_VIA_AGGREGATE
        (True when unsure: callers take a shortcut only on False). Asked on
        every allocation-candidates request, so a backend answers it from an
        index, not by reading every provider."""
        return bool(
            self.list_providers(
                ProviderFilter(
                    group=RequestGroup(required_traits=frozenset({"MISC_SHARES_VIA_AGGREGATE"}))
                )
            )
        )

    def remove_consumer_allocations(self, consumer_uuid: str) -> bool:
        """Placement's DELETE /allocations/{consumer}: drop the consumer's
        confirmed allocations and the consumer, without bumping provider
        generations (Placement does not; giving capacity back can never
        overcommit anything). False if the consumer held no allocation."""
        held = self.list_claims(consumer_uuid=consumer_uuid, status=ClaimStatus.CONFIRMED)
        if not held:
            return False
        c = held[0]
        self.write_allocations([ConsumerAllocations(c.consumer_uuid, c.project_id, c.user_id)])
        return True

    # -- bulk import (``claimant import placement``) ---------------------------
    # Only for filling a store from another system's data: they write state as
    # given (generations included) instead of deriving it, so nothing else may
    # use them. docs/migrating-from-placement.md.
    @abc.abstractmethod
    def import_providers(self, providers: Sequence[Provider]) -> int:
        """Store providers exactly as given: generation, parent, root and
        timestamps, inventories, traits, aggregates; nothing is bumped. A
        parent comes earlier in the list or is already stored. A provider
        whose uuid is already stored is left alone (a resumed import); a name
        taken by another uuid is AlreadyExists. Returns how many were written."""

    @abc.abstractmethod
    def import_allocations(self, consumers: Sequence[ImportedConsumer]) -> int:
        """Store each consumer with its generation and type, and its confirmed
        allocations, without bumping provider generations and without the
        capacity check: the source may hold a provider above its capacity, as
        Placement allows after an inventory shrinks (``set_inventories(...,
        allow_overcapacity=True)`` leaves the same state). Each provider must
        exist and have inventory of each class (NotFound / InvalidInput). A
        consumer already stored is left alone; returns how many were written."""

    # -- requests ----------------------------------------------------------
    @abc.abstractmethod
    def create_request(self, request: Request) -> Request:
        """Insert a new request record; AlreadyExists if its uuid is taken
        (insert-if-absent: of two creates with one uuid, exactly one wins)."""

    @abc.abstractmethod
    def save_request(self, request: Request) -> Request:
        """Insert or replace a request record."""

    @abc.abstractmethod
    def get_request(self, uuid: str) -> Request: ...

    @abc.abstractmethod
    def list_requests(
        self, *, status: str | None = None, project_id: str | None = None, limit: int = 100
    ) -> list[Request]:
        """The newest ``limit`` requests, of one status and one project when given."""

    # -- operators' view ------------------------------------------------------
    @abc.abstractmethod
    def summary(self, heartbeat_after: float | None) -> CloudSummary:
        """Capacity and use per class summed over providers, providers by
        health and enabled, live (unconfirmed) claims. A heartbeat at or before
        ``heartbeat_after`` is stale (None: never). One aggregate read; on
        Cassandra it reads every provider's static row (callers cache it)."""

    @abc.abstractmethod
    def heartbeats_between(self, after: float, until: float) -> list[Provider]:
        """Providers whose last heartbeat is in (``after``, ``until``]: with
        ``until`` = now - heartbeat timeout, the ones whose agent went stale
        since ``after``. Reads every provider's heartbeat (no index)."""

    #: Claims this process's store object saw expire and swept (a counter for
    #: ``claimant_claims_expired_total``; a racing sweep may count one twice).
    expired_seen: int = 0

    # -- events ------------------------------------------------------------
    # The store records claimed / confirmed / released / expired (provider and
    # request) and enabled / disabled (provider) itself, where they happen;
    # callers add the rest (build_failed, rescheduled, agent_stale). Bounded
    # per subject: a backend keeps at least the newest EVENTS_PER_SUBJECT or
    # every event younger than EVENT_TTL (claimant.model.events).
    @abc.abstractmethod
    def add_events(self, events: Sequence[Event]) -> None:
        """Record events. Never fails a caller's write that already happened:
        a backend may drop an event it cannot write (and log it)."""

    @abc.abstractmethod
    def list_events(self, subject: Subject, subject_id: str, *, limit: int = 100) -> list[Event]:
        """The newest ``limit`` events of one subject, oldest first."""


def check_cell(store: Store, cell: str) -> str:
    """``cell`` if ``store`` has it; else InvalidInput with code unknown_cell."""
    known = store.cells()
    if cell not in known:
        raise InvalidInput(
            f"unknown cell {cell!r}: this store's cells are {', '.join(known)}",
            code=UNKNOWN_CELL,
            field="cell",
            cell=cell,
        )
    return cell
