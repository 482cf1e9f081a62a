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
    STORE = "store"  # the agent could not read its claims from the store; nothing was built
    AGENT = "agent"  # the conductor: no agent took the message (nothing was built)
    UNKNOWN = "unknown"  # the conductor: no answer, and the claims did not tell either

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


class BuildStatus(StrEnum):
    BUILDING = "building"
    BUILT = "built"
    FAILED = "failed"


@dataclass(slots=True)
class BuildRecord:
    """What an agent knows of one consumer's build: the answer to a repeated
    build message and to ``GET /v1/builds/{consumer_uuid}``. A built record
    is one of the instances the agent runs (``GET /v1/instances``)."""

    consumer_uuid: str
    provider_uuid: str
    status: BuildStatus
    claims: tuple[str, ...] = ()
    request_uuid: str | None = None
    resources: dict[str, int] = field(default_factory=dict)  # summed over its claims
    confirmed: bool = False
    built_at: float | None = None
    reply: BuildReply | None = None

    def instance(self) -> dict[str, Any]:
        return {
            "consumer_uuid": self.consumer_uuid,
            "request_uuid": self.request_uuid,
            "provider_uuid": self.provider_uuid,
            "claims": list(self.claims),
            "resources": dict(self.resources),
            "confirmed": self.confirmed,
            "built_at": self.built_at,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.instance(),
            "status": self.status.value,
            "reply": self.reply.to_dict() if self.reply is not None else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BuildRecord:
        reply = d.get("reply")
        return cls(
            consumer_uuid=d["consumer_uuid"],
            provider_uuid=d["provider_uuid"],
            status=BuildStatus(d["status"]),
            claims=tuple(d.get("claims", ())),
            request_uuid=d.get("request_uuid"),
            resources=dict(d.get("resources", {})),
            confirmed=bool(d.get("confirmed", False)),
            built_at=d.get("built_at"),
            reply=BuildReply.from_dict(reply) if reply else None,
        )
