"""Resource types: the kind of a provider and the typed attributes it declares.

Built-in types are Python classes that enumerate their attributes; operators
add types through the API, described by the same ``AttributeSpec`` records.
A request compares attributes with ``==, !=, <, <=, >, >=, in``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from claimant.model.errors import InvalidInput

KINDS = ("string", "integer", "number", "boolean")
OPS = ("==", "!=", "<", "<=", ">", ">=", "in")
_ORDERED_KINDS = ("string", "integer", "number")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

AttributeValue = str | int | float | bool


@dataclass(frozen=True, slots=True)
class AttributeSpec:
    name: str
    kind: str
    required: bool = False
    description: str = ""

    def validate_spec(self) -> AttributeSpec:
        if not _NAME_RE.match(self.name):
            raise InvalidInput(
                f"attribute name {self.name!r} must match [a-z][a-z0-9_]{{0,62}}", field="name"
            )
        if self.kind not in KINDS:
            raise InvalidInput(
                f"attribute {self.name}: kind must be one of {', '.join(KINDS)}", field="kind"
            )
        return self

    def coerce(self, value: Any) -> AttributeValue:
        """Check one value against the declared kind; ints are accepted as numbers."""
        ok = {
            "string": isinstance(value, str),
            "integer": isinstance(value, int) and not isinstance(value, bool),
            "number": isinstance(value, int | float) and not isinstance(value, bool),
            "boolean": isinstance(value, bool),
        }[self.kind]
        if not ok:
            raise InvalidInput(
                f"attribute {self.name} is {self.kind}, got {value!r}", field=self.name
            )
        return float(value) if self.kind == "number" else value


@dataclass(frozen=True, slots=True)
class AttributeConstraint:
    """``name op value``: e.g. ``ram_gb >= 256`` or ``cpu_arch in [x86_64, aarch64]``."""

    name: str
    op: str
    value: Any

    def matches(self, actual: AttributeValue | None) -> bool:
        if actual is None:
            return self.op == "!="
        v = self.value
        match self.op:
            case "==":
                return bool(actual == v)
            case "!=":
                return bool(actual != v)
            case "<":
                return bool(actual < v)
            case "<=":
                return bool(actual <= v)
            case ">":
                return bool(actual > v)
            case ">=":
                return bool(actual >= v)
            case "in":
                return actual in v
        raise InvalidInput(f"unknown operator {self.op!r}")

    def __str__(self) -> str:
        return f"{self.name} {self.op} {self.value!r}"


class ResourceType:
    """A kind of provider. Subclasses enumerate their attributes in ``ATTRIBUTES``."""

    NAME: ClassVar[str] = ""
    ATTRIBUTES: ClassVar[tuple[AttributeSpec, ...]] = ()
    DESCRIPTION: ClassVar[str] = ""

    def __init__(
        self,
        name: str | None = None,
        attributes: tuple[AttributeSpec, ...] | None = None,
        description: str | None = None,
        builtin: bool | None = None,
    ) -> None:
        self.name = name or self.NAME
        self.attributes: dict[str, AttributeSpec] = {
            a.name: a for a in (attributes if attributes is not None else self.ATTRIBUTES)
        }
        self.description = description if description is not None else self.DESCRIPTION
        self.builtin = type(self) is not ResourceType if builtin is None else builtin

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ResourceType)
            and self.name == other.name
            and self.attributes == other.attributes
        )

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"ResourceType({self.name!r}, {sorted(self.attributes)})"

    def validate_type(self) -> ResourceType:
        if not _NAME_RE.match(self.name):
            raise InvalidInput(
                f"resource type name {self.name!r} must match [a-z][a-z0-9_]{{0,62}}",
                field="name",
            )
        for spec in self.attributes.values():
            spec.validate_spec()
        return self

    def validate_attributes(self, values: Mapping[str, Any]) -> dict[str, AttributeValue]:
        """A provider's attribute values, checked against this type."""
        out: dict[str, AttributeValue] = {}
        for key, value in values.items():
            spec = self.attributes.get(key)
            if spec is None:
                raise InvalidInput(
                    f"resource type {self.name} has no attribute {key!r} "
                    f"(it has: {', '.join(sorted(self.attributes)) or 'none'})",
                    field=key,
                )
            out[key] = spec.coerce(value)
        missing = [s.name for s in self.attributes.values() if s.required and s.name not in out]
        if missing:
            raise InvalidInput(
                f"resource type {self.name} requires attributes: {', '.join(missing)}",
                field=missing[0],
            )
        return out

    def validate_constraint(self, c: AttributeConstraint) -> AttributeConstraint:
        spec = self.attributes.get(c.name)
        if spec is None:
            raise InvalidInput(f"resource type {self.name} has no attribute {c.name!r}")
        return check_constraint(spec, c)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "builtin": self.builtin,
            "attributes": [
                {
                    "name": a.name,
                    "kind": a.kind,
                    "required": a.required,
                    "description": a.description,
                }
                for a in self.attributes.values()
            ],
        }


def check_constraint(spec: AttributeSpec, c: AttributeConstraint) -> AttributeConstraint:
    """Validate a constraint's operator and value against an attribute's kind."""
    if c.op not in OPS:
        raise InvalidInput(f"{c.name}: operator must be one of {' '.join(OPS)}, got {c.op!r}")
    if c.op == "in":
        if not isinstance(c.value, list | tuple) or not c.value:
            raise InvalidInput(f"{c.name}: 'in' takes a non-empty list")
        return AttributeConstraint(c.name, c.op, tuple(spec.coerce(v) for v in c.value))
    if c.op in ("<", "<=", ">", ">=") and spec.kind not in _ORDERED_KINDS:
        raise InvalidInput(f"{c.name} is {spec.kind}: {c.op} needs an ordered kind")
    return AttributeConstraint(c.name, c.op, spec.coerce(c.value))


def infer_spec(name: str, value: Any) -> AttributeSpec:
    """The spec a constraint implies when a request does not name a type."""
    if isinstance(value, list | tuple) and value:
        value = value[0]
    kind = (
        "boolean"
        if isinstance(value, bool)
        else "integer"
        if isinstance(value, int)
        else "number"
        if isinstance(value, float)
        else "string"
    )
    return AttributeSpec(name, kind)


class Compute(ResourceType):
    NAME = "compute"
    DESCRIPTION = "A hypervisor host whose VCPU, MEMORY_MB and DISK_GB are divisible pools."
    ATTRIBUTES = (
        AttributeSpec("cpu_arch", "string", description="e.g. x86_64, aarch64"),
        AttributeSpec("cpu_model", "string"),
        AttributeSpec("hypervisor", "string", description="e.g. kvm, qemu"),
        AttributeSpec("numa_nodes", "integer"),
        AttributeSpec("cell", "string"),
        AttributeSpec("availability_zone", "string"),
    )


class Baremetal(ResourceType):
    NAME = "baremetal"
    DESCRIPTION = "A whole machine: one unit of a discrete class (e.g. CUSTOM_BAREMETAL_GOLD)."
    ATTRIBUTES = (
        AttributeSpec("cpu_arch", "string"),
        AttributeSpec("cpus", "integer"),
        AttributeSpec("ram_gb", "integer"),
        AttributeSpec("disk_gb", "integer"),
        AttributeSpec("nic_gbps", "integer"),
        AttributeSpec("availability_zone", "string"),
    )


class BlockStorage(ResourceType):
    NAME = "block_storage"
    DESCRIPTION = "A storage pool, often shared by the compute hosts of an aggregate."
    ATTRIBUTES = (
        AttributeSpec("backend", "string", description="e.g. ceph, lvm"),
        AttributeSpec("media", "string", description="ssd, hdd, nvme"),
        AttributeSpec("iops", "integer"),
        AttributeSpec("availability_zone", "string"),
    )


class Network(ResourceType):
    NAME = "network"
    DESCRIPTION = "A network segment or physical NIC: addresses, bandwidth, VFs."
    ATTRIBUTES = (
        AttributeSpec("physnet", "string"),
        AttributeSpec("segment", "string"),
        AttributeSpec("nic_gbps", "integer"),
        AttributeSpec("availability_zone", "string"),
    )


BUILTIN_TYPES: dict[str, ResourceType] = {
    t.NAME: t() for t in (Compute, Baremetal, BlockStorage, Network)
}
