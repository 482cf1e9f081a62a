"""The agent's config file (TOML or JSON): the provider it registers, its driver,
and its intervals. See docs/loop.md for an example."""

from __future__ import annotations

import json
import tomllib
import uuid as uuidlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from claimant.model import InvalidInput, Inventory, normalize_uuid
from claimant.model.provider import validate_name

# Agents that name no uuid get a stable one from their name, so a restarted
# agent finds its own provider again instead of registering a new one.
_UUID_NAMESPACE = uuidlib.UUID("6f1c8a52-3f0e-4c55-9d6b-2b8f0c4a7e11")


def provider_uuid_for(name: str) -> str:
    return str(uuidlib.uuid5(_UUID_NAMESPACE, name))


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """What the agent says its provider is; the store is made to match it."""

    name: str
    uuid: str
    type: str = "compute"
    parent_uuid: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    traits: frozenset[str] = frozenset()
    aggregates: frozenset[str] = frozenset()
    inventories: dict[str, Inventory] = field(default_factory=dict)


def parse_inventories(raw: Any) -> dict[str, Inventory]:
    """``{CLASS: total}`` or ``{CLASS: {total, reserved, allocation_ratio, ...}}``."""
    if not isinstance(raw, dict):
        raise InvalidInput("inventories must map resource classes to totals or tables")
    out: dict[str, Inventory] = {}
    for rc, value in raw.items():
        fields = {"total": value} if isinstance(value, int) else value
        if not isinstance(fields, dict):
            raise InvalidInput(f"inventory {rc}: give a total or a table", field=rc)
        unknown = set(fields) - set(Inventory.__dataclass_fields__) - {"resource_class"}
        if unknown:
            raise InvalidInput(
                f"inventory {rc}: unknown field(s) {', '.join(sorted(unknown))}", field=rc
            )
        fields = {k: v for k, v in fields.items() if k != "resource_class"}
        if "total" not in fields:
            raise InvalidInput(f"inventory {rc}: total is required", field=rc)
        out[rc] = Inventory(resource_class=rc, **fields).validate()
    return out


def provider_spec(raw: dict[str, Any], discovered: dict[str, Any] | None = None) -> ProviderSpec:
    """The provider table of a config, with what the driver discovered on top."""
    merged = dict(raw)
    for key, value in (discovered or {}).items():
        if key in ("attributes", "inventories") and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    unknown = set(merged) - {
        "name",
        "uuid",
        "type",
        "parent_uuid",
        "attributes",
        "traits",
        "aggregates",
        "inventories",
    }
    if unknown:
        raise InvalidInput(f"provider: unknown key(s) {', '.join(sorted(unknown))}")
    name = validate_name(merged.get("name"), "provider name")
    uuid = merged.get("uuid")
    for key in ("traits", "aggregates"):
        if not isinstance(merged.get(key, []), list | tuple | set | frozenset):
            raise InvalidInput(f"provider {key} must be a list", field=key)
    if not isinstance(merged.get("attributes", {}), dict):
        raise InvalidInput("provider attributes must be a table", field="attributes")
    parent = merged.get("parent_uuid")
    return ProviderSpec(
        name=name,
        uuid=normalize_uuid(uuid, "uuid") if uuid else provider_uuid_for(name),
        type=str(merged.get("type", "compute")),
        parent_uuid=normalize_uuid(parent, "parent_uuid") if parent else None,
        attributes=dict(merged.get("attributes", {})),
        traits=frozenset(merged.get("traits", ())),
        aggregates=frozenset(normalize_uuid(a, "aggregates") for a in merged.get("aggregates", ())),
        inventories=parse_inventories(merged.get("inventories", {})),
    )


@dataclass(slots=True)
class AgentConfig:
    provider: dict[str, Any]
    driver: str = "fake"
    driver_options: dict[str, Any] = field(default_factory=dict)
    heartbeat_interval: float = 10.0
    resync_interval: float = 60.0
    # Where the agent records the builds it ran, so a restarted agent still
    # answers a repeated build (or GET /v1/builds/{consumer}) the same way.
    state_file: str | None = None

    def __post_init__(self) -> None:
        if self.state_file is not None and (
            not isinstance(self.state_file, str) or not self.state_file
        ):
            raise InvalidInput("agent state_file must be a path", field="state_file")
        for name in ("heartbeat_interval", "resync_interval"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise InvalidInput(f"agent {name} must be a positive number of seconds", field=name)

    @classmethod
    def from_dict(cls, d: Any) -> AgentConfig:
        if not isinstance(d, dict) or not isinstance(d.get("provider"), dict):
            raise InvalidInput("agent config needs a [provider] table")
        driver = dict(d.get("driver", {}))
        agent = dict(d.get("agent", {}))
        unknown = set(d) - {"provider", "driver", "agent"}
        if unknown:
            raise InvalidInput(f"agent config: unknown table(s) {', '.join(sorted(unknown))}")
        return cls(
            provider=dict(d["provider"]),
            driver=str(driver.pop("name", "fake")),
            driver_options=driver,
            heartbeat_interval=agent.get("heartbeat_interval", 10.0),
            resync_interval=agent.get("resync_interval", 60.0),
            state_file=agent.get("state_file"),
        )

    @classmethod
    def load(cls, path: str | Path) -> AgentConfig:
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as exc:
            raise InvalidInput(f"cannot read agent config {p}: {exc.strerror}") from exc
        try:
            data = json.loads(text) if p.suffix == ".json" else tomllib.loads(text)
        except (ValueError, tomllib.TOMLDecodeError) as exc:
            raise InvalidInput(f"agent config {p} is not valid: {exc}") from exc
        return cls.from_dict(data)
