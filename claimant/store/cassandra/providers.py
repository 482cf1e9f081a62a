"""Providers: create, read, list, update (inventories, traits, aggregates,
parents), delete, heartbeat."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from cassandra import ConsistencyLevel
from cassandra.cluster import EXEC_PROFILE_DEFAULT
from cassandra.query import BatchStatement, BatchType

from claimant.model import (
    LOCAL_CELL,
    GenerationConflict,
    InUse,
    InvalidInput,
    Inventory,
    NotFound,
    Provider,
    ProviderUsage,
    new_uuid,
)
from claimant.model.errors import CROSS_CELL
from claimant.model.events import DISABLED, ENABLED, Event, Subject
from claimant.store._common import generation_conflict, provider_taken
from claimant.store.base import UNSET, ProviderFilter, Unset
from claimant.store.cassandra import events as _events
from claimant.store.cassandra import queries as q
from claimant.store.cassandra.candidates import Candidates
from claimant.store.cassandra.errors import _DRIVER_ERRORS, _backoff, _translate, _uncut
from claimant.store.cassandra.state import (
    CAS_ATTEMPTS,
    SHARING_TRAIT,
    _Change,
    _fits,
    _Partition,
    _State,
)
from claimant.store.cassandra.statements import _applied


class Providers(Candidates):
    # -- providers ---------------------------------------------------------------------
    def _validate_inventories(self, inventories: dict[str, Inventory]) -> dict[str, Inventory]:
        kinds = self._class_kinds(inventories)
        for rc, inv in inventories.items():
            if rc != inv.resource_class:
                raise InvalidInput(f"inventory keyed {rc} is for {inv.resource_class}")
            if rc not in kinds:
                raise NotFound(f"no resource class {rc!r}", kind="resource_class", name=rc)
            inv.validate(discrete=kinds[rc])
        return dict(inventories)

    @staticmethod
    def _validate_aggregates(aggregates: Iterable[str]) -> frozenset[str]:
        wanted = frozenset(aggregates)
        for agg in wanted:
            if not isinstance(agg, str) or not agg or len(agg) > 255:
                raise InvalidInput(f"aggregate {agg!r} must be a non-empty string")
        return wanted

    @_uncut
    def create_provider(self, provider: Provider) -> Provider:
        now = self.clock()
        rtype = self.get_resource_type(provider.type)
        attributes = rtype.validate_attributes(provider.attributes)
        inventories = self._validate_inventories(provider.inventories)
        traits = self._check_traits(provider.traits)
        aggregates = self._validate_aggregates(provider.aggregates)
        root = provider.uuid
        if provider.parent_uuid:
            try:
                root = self._read_state(provider.parent_uuid).root_uuid
            except NotFound:
                raise NotFound(
                    f"parent provider {provider.parent_uuid} not found",
                    kind="provider",
                    uuid=provider.parent_uuid,
                ) from None
        cell = self.home_of(provider.cell)
        existing = self._run(q.READ_CELL, [provider.uuid])
        if existing and existing[0].version:
            raise provider_taken("uuid", provider.uuid)
        if existing and existing[0].cell and existing[0].cell != cell:
            # Its partition keeps the Paxos group it had (DELETE_STATICS).
            if provider.cell not in (None, LOCAL_CELL):
                raise InvalidInput(
                    f"provider uuid {provider.uuid} was homed in cell {existing[0].cell}"
                    " before; made again, it keeps that home",
                    code=CROSS_CELL,
                    field="cell",
                )
            cell = existing[0].cell
        applied, row = self._lwt(q.RESERVE_NAME, [provider.name, provider.uuid])
        if not applied and row.provider_uuid != provider.uuid:
            raise provider_taken("name", provider.name)
        state = _State(
            uuid=provider.uuid,
            generation=0,
            version=new_uuid(),
            prev_version=None,
            name=provider.name,
            type=provider.type,
            parent_uuid=provider.parent_uuid,
            root_uuid=root,
            attributes=attributes,
            traits=traits,
            aggregates=aggregates,
            enabled=provider.enabled,
            heartbeat_at=None,
            created_at=now,
            updated_at=now,
            inventories=inventories,
            alloc_used={},
            holds=(),
            seq=time.time(),
            cell=cell,
        )
        if not self._cas(None, state, now):
            self._lwt(q.FREE_NAME, [provider.name, provider.uuid])
            raise provider_taken("uuid", provider.uuid)
        if provider.parent_uuid:
            self._run(q.ADD_CHILD, [provider.parent_uuid, provider.uuid])
        if provider.heartbeat_at is not None:
            self.heartbeat(provider.uuid, provider.heartbeat_at)
            state = replace(state, heartbeat_at=provider.heartbeat_at)
        return state.provider()

    @_uncut
    def load_providers_unchecked(self, providers: list[Provider], *, window: int = 128) -> None:
        """Bulk-load brand-new root providers with plain writes: no Paxos, no
        uniqueness or parent checks. Only for benchmarks and simulators
        filling an empty store; everything after goes through transactions."""
        session = self._use_keyspace()
        write = self._prep(q.WRITE_STATE_UNCONDITIONAL)
        name = self._prep(q.WRITE_NAME)
        index = self._prep(q.WRITE_INDEX_ROW)
        pending: list[Any] = []
        now = self.clock()
        for p in providers:
            cell = self.home_of(p.cell)
            state = _State(
                uuid=p.uuid,
                generation=0,
                version=new_uuid(),
                prev_version=None,
                name=p.name,
                type=p.type,
                parent_uuid=None,
                root_uuid=p.uuid,
                attributes=dict(p.attributes),
                traits=frozenset(p.traits),
                aggregates=frozenset(p.aggregates),
                enabled=p.enabled,
                heartbeat_at=None,
                created_at=now,
                updated_at=now,
                inventories=dict(p.inventories),
                alloc_used={},
                holds=(),
                seq=time.time(),
                cell=cell,
            )
            pending.append(session.execute_async(write.bind(self._state_params(state)[:-1])))
            pending.append(session.execute_async(name.bind([p.name, p.uuid])))
            for _, params in self._index_rows(state, now):
                pending.append(session.execute_async(index.bind(params)))
            if SHARING_TRAIT in state.traits:
                pending.append(session.execute_async(self._prep(q.ADD_SHARING).bind([p.uuid])))
            if len(pending) >= window:
                for f in pending:
                    try:
                        f.result()
                    except _DRIVER_ERRORS as exc:
                        raise _translate(exc) from exc
                pending = []
        for f in pending:
            try:
                f.result()
            except _DRIVER_ERRORS as exc:
                raise _translate(exc) from exc

    def get_provider(self, uuid: str) -> Provider:
        return self._settled_state(uuid).provider()

    def list_providers(self, flt: ProviderFilter | None = None) -> list[Provider]:
        return [s.provider() for s in self._list_states(flt)]

    def list_usages(self, flt: ProviderFilter | None = None) -> list[ProviderUsage]:
        now = self.clock()
        out = []
        for state in self._list_states(flt):
            # As get_usage: a transaction met here that is decided is finished
            # first, so a committed allocation is counted (rare: only writes
            # in flight or left behind by a crash are pending).
            if state.pending and self._settle_met(state):
                try:
                    state = self._read_state(state.uuid)
                except NotFound:
                    continue
            out.append(state.usage(now))
        return out

    def _list_states(self, flt: ProviderFilter | None) -> list[_State]:
        flt = flt or ProviderFilter()
        now = self.clock()
        if flt.uuid:
            try:
                states = [self._read_state(flt.uuid)]
            except NotFound:
                return []
        elif flt.name:
            owner = self._run(q.NAME_OWNER, [flt.name])
            try:
                states = [self._read_state(owner[0].provider_uuid)] if owner else []
            except NotFound:
                states = []
        else:
            states = self._all_states()
        if flt.name:
            states = [s for s in states if s.name == flt.name]
        if flt.in_tree:
            try:
                root = self._read_state(flt.in_tree).root_uuid
            except NotFound:
                return []
            states = [s for s in states if s.root_uuid == root]
        if flt.group is not None:
            match = self._group_matcher(flt.group, check_types=False)
            states = [s for s in states if match(s) and _fits(s, flt.group, s.used(now))]
        states.sort(key=lambda s: (s.created_at, s.seq, s.uuid))
        return states

    @_uncut
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
        return self._update_provider(
            uuid, expected_generation, True, name, parent_uuid, attributes, enabled
        )

    @_uncut
    def update_provider_quietly(
        self,
        uuid: str,
        *,
        name: str | Unset = UNSET,
        parent_uuid: str | Unset | None = UNSET,
    ) -> Provider:
        return self._update_provider(uuid, None, False, name, parent_uuid, UNSET, UNSET)

    def _update_provider(
        self,
        uuid: str,
        expected_generation: int | None,
        bump: bool,
        name: str | Unset,
        parent_uuid: str | Unset | None,
        attributes: dict[str, Any] | Unset,
        enabled: bool | Unset,
    ) -> Provider:
        current = self._read_state(uuid, serial=True)
        if expected_generation is not None and current.generation != expected_generation:
            raise generation_conflict(uuid, current.generation, expected_generation)
        changes: dict[str, Any] = {}
        if not isinstance(attributes, Unset):
            changes["attributes"] = self.get_resource_type(current.type).validate_attributes(
                attributes
            )
        if not isinstance(enabled, Unset):
            changes["enabled"] = bool(enabled)
        new_name = None
        if not isinstance(name, Unset) and name != current.name:
            applied, row = self._lwt(q.RESERVE_NAME, [name, uuid])
            if not applied and row.provider_uuid != uuid:
                raise provider_taken("name", name)
            new_name = name
            changes["name"] = name
        reparent = not isinstance(parent_uuid, Unset) and parent_uuid != current.parent_uuid
        if reparent:
            new_root = uuid
            if parent_uuid is not None:
                if not isinstance(parent_uuid, str):
                    raise InvalidInput("parent must be a provider uuid", field="parent_uuid")
                try:
                    parent = self._read_state(parent_uuid)
                except NotFound:
                    raise NotFound(
                        f"parent provider {parent_uuid} not found", kind="provider"
                    ) from None
                cursor: _State | None = parent
                while cursor is not None:
                    if cursor.uuid == uuid:
                        raise InvalidInput("a provider cannot be its own ancestor", field="parent")
                    cursor = self._read_state(cursor.parent_uuid) if cursor.parent_uuid else None
                new_root = parent.root_uuid
            changes["parent_uuid"] = parent_uuid
            changes["root_uuid"] = new_root
        try:
            new = self._update(
                uuid,
                expected_generation,
                lambda part, now: (replace(part.state, **changes), []),
                bump=bump,
            )
        except BaseException:
            if new_name is not None:
                self._lwt(q.FREE_NAME, [new_name, uuid])
            raise
        if new_name is not None:
            self._lwt(q.FREE_NAME, [current.name, uuid])
        if reparent:
            if current.parent_uuid:
                self._run(q.DROP_CHILD, [current.parent_uuid, uuid])
            if parent_uuid:
                self._run(q.ADD_CHILD, [parent_uuid, uuid])
            self._move_subtree(uuid, new.root_uuid)
        if not isinstance(enabled, Unset) and bool(enabled) != current.enabled:
            flip = ENABLED if enabled else DISABLED
            _events.add_events(self, [Event(Subject.PROVIDER, uuid, self.clock(), flip)])
        return new.provider()

    def _move_subtree(self, uuid: str, root: str) -> None:
        """Descendants follow a moved provider to its new root. One LWT per
        descendant, without a generation bump (as the SQLite store)."""
        todo = [r.child_uuid for r in self._run(q.CHILDREN, [uuid])]
        while todo:
            child = todo.pop()
            self._update(
                child, None, lambda part, now: (replace(part.state, root_uuid=root), []), bump=False
            )
            todo += [r.child_uuid for r in self._run(q.CHILDREN, [child])]

    @_uncut
    def delete_provider(self, uuid: str) -> None:
        with self._lock(uuid):
            for attempt in range(CAS_ATTEMPTS):
                _backoff(attempt)
                now = self.clock()
                part = self._read_partition(uuid)
                if self._run(q.CHILDREN, [uuid]):
                    raise InUse(f"provider {uuid} has children", uuid=uuid)
                if any(e.live(now) for e in part.entries.values()) or part.state.pending:
                    raise InUse(f"provider {uuid} has claims or allocations", uuid=uuid)
                route = self._route(part.state.cell)
                batch = BatchStatement(
                    batch_type=BatchType.LOGGED,
                    consistency_level=ConsistencyLevel.LOCAL_QUORUM if route else self.consistency,
                    serial_consistency_level=(
                        ConsistencyLevel.LOCAL_SERIAL if route else self.serial
                    ),
                )
                batch.add(self._prep(q.DELETE_STATICS), [uuid, part.state.version])
                keys = ["i:" + rc for rc in part.state.inventories]
                keys += ["l:" + e for e in part.entries]
                for key in keys:
                    batch.add(self._prep(q.DELETE_ROW), [uuid, key])
                try:
                    applied = _applied(
                        self._use_keyspace()
                        .execute(batch, execution_profile=route or EXEC_PROFILE_DEFAULT)
                        .one()
                    )
                except _DRIVER_ERRORS as exc:
                    raise self._fail(exc, route) from exc
                if applied:
                    break
            else:
                raise GenerationConflict(f"provider {uuid} kept changing: retry", uuid=uuid)
        self._states.pop(uuid, None)
        if SHARING_TRAIT in part.state.traits:
            self._run(q.DROP_SHARING, [uuid])
        self._lwt(q.FREE_NAME, [part.state.name, uuid])
        if part.state.parent_uuid:
            self._run(q.DROP_CHILD, [part.state.parent_uuid, uuid])

    @_uncut
    def set_inventories(
        self,
        uuid: str,
        expected_generation: int | None,
        inventories: dict[str, Inventory],
        *,
        allow_overcapacity: bool = False,
    ) -> Provider:
        invs = self._validate_inventories(inventories)

        def change(part: _Partition, now: float) -> _Change:
            if any(p.inventories is not None for p in part.state.pending):
                # Its commit replaces the inventories: this change would be lost.
                raise GenerationConflict(
                    f"provider {uuid} is being reshaped: re-read and retry", uuid=uuid
                )
            for rc, amount in part.state.used(now).items():
                if amount <= 0:
                    continue
                if rc not in invs:
                    raise InUse(f"cannot remove {rc} inventory: {amount} in use", resource_class=rc)
                if not allow_overcapacity and invs[rc].capacity < amount:
                    raise InUse(
                        f"{rc}: new capacity {invs[rc].capacity} is below the {amount} in use",
                        resource_class=rc,
                    )
            return replace(part.state, inventories=invs), []

        return self._update(uuid, expected_generation, change).provider()

    @_uncut
    def set_traits(
        self, uuid: str, expected_generation: int | None, traits: Iterable[str]
    ) -> Provider:
        wanted = self._check_traits(traits)
        return self._update(
            uuid, expected_generation, lambda part, now: (replace(part.state, traits=wanted), [])
        ).provider()

    @_uncut
    def set_aggregates(
        self, uuid: str, expected_generation: int | None, aggregates: Iterable[str]
    ) -> Provider:
        wanted = self._validate_aggregates(aggregates)
        return self._update(
            uuid,
            expected_generation,
            lambda part, now: (replace(part.state, aggregates=wanted), []),
        ).provider()

    def heartbeat(self, uuid: str, at: float | None = None) -> None:
        # A plain write of a cell no transaction writes: no generation bump,
        # no Paxos round. Checked first so a heartbeat never creates a provider.
        self._read_state(uuid)
        # In the provider's home cell: an agent beats on while another DC is down.
        self._run(
            q.WRITE_HEARTBEAT, [self.clock() if at is None else at, uuid], cell=self._home(uuid)
        )
