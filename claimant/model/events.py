"""Events: what happened to a request or a provider, and when.

A store keeps a bounded history per subject (docs/store-contract.md, "Events");
the request's own record keeps its lifecycle steps (``Request.history``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from claimant.model.claim import Claim


class Subject(StrEnum):
    PROVIDER = "provider"
    REQUEST = "request"


# Event names written by claimant (a store accepts any name).
CLAIMED = "claimed"
CONFIRMED = "confirmed"
RELEASED = "released"
EXPIRED = "expired"
ENABLED = "enabled"
DISABLED = "disabled"
BUILD_FAILED = "build_failed"
RESCHEDULED = "rescheduled"
AGENT_STALE = "agent_stale"

#: The newest events kept per subject by a backend that caps (SQLite).
EVENTS_PER_SUBJECT = 200
#: How long a backend that expires events (Cassandra) keeps one, in seconds.
EVENT_TTL = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Event:
    subject: Subject
    subject_id: str
    at: float
    event: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "event": self.event, **self.details}


def claim_events(claim: Claim, event: str, at: float) -> list[Event]:
    """The events one claim's step leaves: on its provider, and on its
    request when it has one."""
    details: dict[str, Any] = {
        "claim_uuid": claim.uuid,
        "consumer_uuid": claim.consumer_uuid,
        "amounts": dict(claim.amounts),
        "project_id": claim.project_id,
    }
    out = [
        Event(
            Subject.PROVIDER,
            claim.provider_uuid,
            at,
            event,
            {**details, "request_uuid": claim.request_uuid},
        )
    ]
    if claim.request_uuid:
        out.append(
            Event(
                Subject.REQUEST,
                claim.request_uuid,
                at,
                event,
                {**details, "provider_uuid": claim.provider_uuid},
            )
        )
    return out
