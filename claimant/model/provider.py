"""Providers: what the scheduler schedules onto."""

from __future__ import annotations

import enum
import uuid as uuidlib
from dataclasses import dataclass, field, replace
from typing import Any

from claimant.model.errors import InvalidInput
from claimant.model.resources import Inventory, Usage
from claimant.model.types import AttributeValue

MAX_NAME = 200
# The name of the one cell of a store that has no data centres (SQLite).
LOCAL_CELL = "local"


def new_uuid() -> str:
    return str(uuidlib.uuid4())


def normalize_uuid(value: Any, what: str = "uuid") -> str:
    try:
        return str(uuidlib.UUID(str(value)))
    except (ValueError, TypeError, AttributeError):
        raise InvalidInput(f"{what} {value!r} is not a UUID", field=what) from None


def validate_name(name: Any, what: str = "name") -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise InvalidInput(f"{what} must be a non-empty string of at most {MAX_NAME} characters")
    return name


@dataclass(frozen=True, slots=True)
class Provider:
    """A provider and everything a query may look at. ``generation`` is bumped by
    every change (inventories, traits, aggregates, attributes, claims) and is
    what compare-and-set writes are conditioned on."""

    uuid: str
    name: str
    type: str = "compute"
    parent_uuid: str | None = None
    root_uuid: str = ""
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    traits: frozenset[str] = frozenset()
    aggregates: frozenset[str] = frozenset()
    inventories: dict[str, Inventory] = field(default_factory=dict)
    enabled: bool = True
    generation: int = 0
    # Seconds since the epoch of the agent's last heartbeat; None for providers
    # no agent manages (created through the API), which are always schedulable.
    heartbeat_at: float | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    # The home cell (docs/cells.md): the data centre whose Paxos group decides
    # every write to this provider. LOCAL_CELL on a store of one unnamed cell
    # (SQLite); None for a provider made before cells on a store of several
    # (its writes are global SERIAL). On create, None or LOCAL_CELL means the
    # creating store's own cell.
    cell: str | None = LOCAL_CELL

    def __post_init__(self) -> None:
        if not self.root_uuid:
            object.__setattr__(self, "root_uuid", self.uuid)

    def evolve(self, **changes: Any) -> Provider:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class ProviderUsage:
    """A provider as a candidate: its identity plus capacity and use per class."""

    provider: Provider
    usages: dict[str, Usage]

    def free(self, rc: str) -> int:
        u = self.usages.get(rc)
        return u.free if u else 0

    def capacity(self, rc: str) -> int:
        u = self.usages.get(rc)
        return u.capacity if u else 0


class Health(enum.StrEnum):
    """What an operator reads of a provider's agent, from its last heartbeat.
    ``stale``: past the scheduler's heartbeat timeout, so it is skipped;
    ``down``: silent for DOWN_AFTER timeouts; ``no_agent``: never heartbeated
    (created through the API, always schedulable)."""

    UP = "up"
    STALE = "stale"
    DOWN = "down"
    NO_AGENT = "no_agent"


# A host silent this many heartbeat timeouts is no longer "late" but gone.
DOWN_AFTER = 5


def provider_health(heartbeat_at: float | None, now: float, timeout: float | None) -> Health:
    """``timeout``: the scheduler's heartbeat timeout (None: it never skips a
    host for silence, so any host that heartbeated once is up)."""
    if heartbeat_at is None:
        return Health.NO_AGENT
    if timeout is None:
        return Health.UP
    age = now - heartbeat_at
    if age <= timeout:
        return Health.UP
    return Health.STALE if age <= DOWN_AFTER * timeout else Health.DOWN
