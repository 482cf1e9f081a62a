"""Resource classes, traits and resource types."""

from __future__ import annotations

from collections.abc import Iterable

from claimant.model import (
    BUILTIN_TYPES,
    AlreadyExists,
    InUse,
    InvalidInput,
    NotFound,
    ResourceClass,
    ResourceType,
)
from claimant.model.names import (
    STANDARD_RESOURCE_CLASSES,
    STANDARD_TRAITS,
    default_discrete,
    validate_custom_name,
)
from claimant.store._common import (
    check_type_deletable,
    custom_type,
    type_from_json,
    type_taken,
    type_to_json,
)
from claimant.store.cassandra import queries as q
from claimant.store.cassandra.errors import _uncut
from claimant.store.cassandra.partitions import Partitions


class Catalog(Partitions):
    # -- resource classes -------------------------------------------------------------
    def _custom_classes(self) -> dict[str, bool]:
        return {r.name: bool(r.discrete) for r in self._run(q.LIST_CLASSES)}

    def list_resource_classes(self) -> list[ResourceClass]:
        out = [ResourceClass.standard_class(n) for n in STANDARD_RESOURCE_CLASSES]
        out += [ResourceClass(n, d, False) for n, d in self._custom_classes().items()]
        return sorted(out, key=lambda rc: rc.name)

    def get_resource_class(self, name: str) -> ResourceClass:
        if name in STANDARD_RESOURCE_CLASSES:
            return ResourceClass.standard_class(name)
        rows = self._run(q.GET_CLASS, [name])
        if not rows:
            raise NotFound(f"no resource class {name!r}", kind="resource_class", name=name)
        return ResourceClass(name, bool(rows[0].discrete), False)

    @_uncut
    def create_resource_class(self, rc: ResourceClass) -> ResourceClass:
        validate_custom_name(rc.name)
        applied, _ = self._lwt(q.CREATE_CLASS, [rc.name, rc.discrete, self.clock()])
        if not applied:
            raise AlreadyExists(f"resource class {rc.name} already exists", name=rc.name)
        return ResourceClass(rc.name, rc.discrete, False)

    @_uncut
    def delete_resource_class(self, name: str) -> None:
        rc = self.get_resource_class(name)
        if rc.standard:
            raise InvalidInput(f"{name} is a standard resource class and cannot be deleted")
        if self._run(q.CLASS_IN_USE, ["i:" + name]):
            raise InUse(f"resource class {name} is in use by inventories", name=name)
        self._run(q.DELETE_CLASS, [name])

    def _class_kinds(self, names: Iterable[str]) -> dict[str, bool]:
        """name -> discrete, for every known class among ``names``."""
        out = {n: default_discrete(n) for n in names if n in STANDARD_RESOURCE_CLASSES}
        custom = [n for n in names if n not in out]
        if custom:
            known = self._custom_classes()
            out.update({n: known[n] for n in custom if n in known})
        return out

    # -- traits -----------------------------------------------------------------------
    def list_traits(self) -> list[str]:
        return sorted(STANDARD_TRAITS | {r.name for r in self._run(q.LIST_TRAITS)})

    @_uncut
    def create_trait(self, name: str) -> bool:
        validate_custom_name(name, "trait")
        applied, _ = self._lwt(q.CREATE_TRAIT, [name, self.clock()])
        return applied

    @_uncut
    def delete_trait(self, name: str) -> None:
        if name in STANDARD_TRAITS:
            raise InvalidInput(f"{name} is a standard trait and cannot be deleted")
        if not self._run(q.GET_TRAIT, [name]):
            raise NotFound(f"no trait {name!r}", kind="trait", name=name)
        if name in self.traits_in_use():
            raise InUse(f"trait {name} is in use by providers", name=name)
        self._run(q.DELETE_TRAIT, [name])

    def traits_in_use(self) -> set[str]:
        # A full scan of provider statics: an operator's call, not a hot path.
        return {t for s in self._all_states() for t in s.traits}

    def _check_traits(self, traits: Iterable[str]) -> frozenset[str]:
        wanted = frozenset(traits)
        custom = wanted - STANDARD_TRAITS
        if custom:
            known = {r.name for r in self._run(q.LIST_TRAITS)}
            missing = sorted(custom - known)
            if missing:
                raise NotFound(f"no such traits: {', '.join(missing)}", kind="trait", names=missing)
        return wanted

    # -- resource types ---------------------------------------------------------------
    def list_resource_types(self) -> list[ResourceType]:
        custom = sorted(
            (type_from_json(r.body) for r in self._run(q.LIST_TYPES)), key=lambda t: t.name
        )
        return list(BUILTIN_TYPES.values()) + custom

    def get_resource_type(self, name: str) -> ResourceType:
        if name in BUILTIN_TYPES:
            return BUILTIN_TYPES[name]
        rows = self._run(q.GET_TYPE, [name])
        if not rows:
            raise NotFound(f"no resource type {name!r}", kind="resource_type", name=name)
        return type_from_json(rows[0].body)

    @_uncut
    def create_resource_type(self, rtype: ResourceType) -> ResourceType:
        custom = custom_type(rtype)
        applied, _ = self._lwt(q.CREATE_TYPE, [custom.name, type_to_json(custom)])
        if not applied:
            raise type_taken(rtype.name)
        return custom

    @_uncut
    def delete_resource_type(self, name: str) -> None:
        check_type_deletable(name)
        self.get_resource_type(name)
        if any(s.type == name for s in self._all_states()):
            raise InUse(f"resource type {name} is in use by providers", name=name)
        self._run(q.DELETE_TYPE, [name])
