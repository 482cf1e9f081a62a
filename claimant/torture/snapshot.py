"""What the checker reads: the store's state at one moment, as plain data.

``read_snapshot`` opens the store with claimant's own store classes (the
same URL the services use) and only reads. The dataclasses are plain so the
checker can be tested on hand-made snapshots.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from claimant.model import ClaimStatus


@dataclass(frozen=True)
class Entry:
    """A live ledger entry: a claim, or (confirmed) an allocation."""

    uuid: str
    provider_uuid: str
    consumer_uuid: str
    amounts: dict[str, int]
    confirmed: bool
    request_uuid: str | None = None
    expires_at: float | None = None


@dataclass(frozen=True)
class ProviderState:
    uuid: str
    name: str
    capacity: dict[str, int]
    used: dict[str, int]


@dataclass(frozen=True)
class RequestState:
    uuid: str
    status: str
    claims: tuple[str, ...] = ()


@dataclass(frozen=True)
class Instance:
    """What an agent says it runs (``GET /v1/instances``)."""

    agent: str
    provider_uuid: str
    consumer_uuid: str
    resources: dict[str, int]
    request_uuid: str | None = None
    confirmed: bool = True


@dataclass
class Snapshot:
    at: float  # wall-clock time of the read
    providers: dict[str, ProviderState]
    entries: list[Entry]
    requests: dict[str, RequestState] = field(default_factory=dict)
    # None: the agents could not tell (see ``instances_note``).
    instances: list[Instance] | None = None
    instances_note: str = ""


def read_snapshot(store: Any, provider_uuids: Iterable[str] | None = None) -> Snapshot:
    """Read providers, their usage and live ledger entries, and the requests.

    Each provider's usage and its entries are two reads; while writers run
    they may disagree by one write, so during the run only the capacity
    checks are applied to a snapshot (see ``checker.check_sample``)."""
    at = time.time()
    if provider_uuids is None:
        provider_uuids = [p.uuid for p in store.list_providers()]
    providers: dict[str, ProviderState] = {}
    entries: list[Entry] = []
    for puuid in provider_uuids:
        usage = store.get_usage(puuid)
        providers[puuid] = ProviderState(
            uuid=puuid,
            name=usage.provider.name,
            capacity={rc: u.capacity for rc, u in usage.usages.items()},
            used={rc: u.used for rc, u in usage.usages.items()},
        )
        for c in store.list_claims(provider_uuid=puuid):
            entries.append(
                Entry(
                    uuid=c.uuid,
                    provider_uuid=c.provider_uuid,
                    consumer_uuid=c.consumer_uuid,
                    amounts=dict(c.amounts),
                    confirmed=c.status == ClaimStatus.CONFIRMED,
                    request_uuid=c.request_uuid,
                    expires_at=c.expires_at,
                )
            )
    return Snapshot(at=at, providers=providers, entries=entries)


def read_requests(store: Any, uuids: Iterable[str]) -> dict[str, RequestState]:
    """The persisted records of the requests the workload made."""
    from claimant.model import NotFound

    out: dict[str, RequestState] = {}
    for uuid in uuids:
        try:
            r = store.get_request(uuid)
        except NotFound:
            continue
        out[uuid] = RequestState(uuid=r.uuid, status=str(r.status), claims=tuple(r.claims))
    return out


def parse_instances(agent: str, body: Any) -> list[Instance]:
    """An agent's ``GET /v1/instances`` answer as ``Instance`` records."""
    out = []
    for i in body.get("instances", []):
        out.append(
            Instance(
                agent=agent,
                provider_uuid=str(i["provider_uuid"]),
                consumer_uuid=str(i["consumer_uuid"]),
                resources={str(k): int(v) for k, v in (i.get("resources") or {}).items()},
                request_uuid=i.get("request_uuid"),
                confirmed=bool(i.get("confirmed", True)),
            )
        )
    return out
