"""The messages between the conductor and an agent (docs/loop.md).

They are plain dataclasses with a dict form, so the same messages travel as
JSON over HTTP or as objects in one process (the simulator)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from claimant.model.errors import InvalidInput
from claimant.model.provider import normalize_uuid


class Failure(StrEnum):
    """Why a build failed. ``CLAIM`` and ``CAPACITY`` are races: the resources
    the scheduler chose were gone when the host came to use them."""

    CLAIM = "claim"  # a claim was missing, expired or released before the build
    CAPACITY = "capacity"  # the host's own check found too little free (legacy mode)
    DRIVER = "driver"  # the driver failed to build
    UNKNOWN_PROVIDER = "unknown_provider"  # the message names a provider this agent lacks

    @property
    def is_race(self) -> bool:
        return self in (Failure.CLAIM, Failure.CAPACITY)


def _uuids(values: Any, what: str) -> tuple[str, ...]:
    if not isinstance(values, list | tuple):
        raise InvalidInput(f"{what} must be a list of uuids", field=what)
    return tuple(normalize_uuid(v, what) for v in values)


@dataclass(frozen=True, slots=True)
class BuildMessage:
    """Conductor -> agent: build ``consumer_uuid`` with these claims (one per
    request group; the first is on the agent's provider)."""

    consumer_uuid: str
    claims: tuple[str, ...]
    request_uuid: str | None = None
    attempt: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "claims": list(self.claims)}

    @classmethod
    def from_dict(cls, d: Any) -> BuildMessage:
        if not isinstance(d, dict):
            raise InvalidInput("a build message is a JSON object")
        attempt = d.get("attempt", 1)
        if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
            raise InvalidInput("attempt must be a positive integer", field="attempt")
        request = d.get("request_uuid")
        return cls(
            consumer_uuid=normalize_uuid(d.get("consumer_uuid"), "consumer_uuid"),
            claims=_uuids(d.get("claims", []), "claims"),
            request_uuid=normalize_uuid(request, "request_uuid") if request else None,
            attempt=attempt,
        )


@dataclass(frozen=True, slots=True)
class BuildReply:
    """Agent -> conductor. On failure every claim of the message was released."""

    consumer_uuid: str
    ok: bool
    provider_uuid: str
    allocations: tuple[str, ...] = ()
    failure: Failure | None = None
    message: str = ""
    build_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["allocations"] = list(self.allocations)
        out["failure"] = self.failure.value if self.failure else None
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BuildReply:
        failure = d.get("failure")
        return cls(
            consumer_uuid=d["consumer_uuid"],
            ok=bool(d["ok"]),
            provider_uuid=d["provider_uuid"],
            allocations=tuple(d.get("allocations", ())),
            failure=Failure(failure) if failure else None,
            message=d.get("message", ""),
            build_s=float(d.get("build_s", 0.0)),
        )


@dataclass(frozen=True, slots=True)
class DestroyMessage:
    """Conductor -> agent: destroy the consumer and free what it holds."""

    consumer_uuid: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Any) -> DestroyMessage:
        if not isinstance(d, dict):
            raise InvalidInput("a destroy message is a JSON object")
        return cls(consumer_uuid=normalize_uuid(d.get("consumer_uuid"), "consumer_uuid"))


@dataclass(frozen=True, slots=True)
class DestroyReply:
    consumer_uuid: str
    freed: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"consumer_uuid": self.consumer_uuid, "freed": list(self.freed)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DestroyReply:
        return cls(consumer_uuid=d["consumer_uuid"], freed=tuple(d.get("freed", ())))
