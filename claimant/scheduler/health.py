"""Which providers could take a group but are not eligible (disabled, or
their agent's heartbeat is past the timeout), so "no valid host" and
``explain`` can name them."""

from __future__ import annotations

import logging
from typing import Any

from claimant.model import Provider, ProviderUsage
from claimant.model.events import AGENT_STALE, Event, Subject
from claimant.store.base import CandidateQuery, Store

log = logging.getLogger("claimant.scheduler.health")

UP, STALE, NO_AGENT = "up", "stale", "no agent"


def health(provider: Provider, now: float, timeout: float | None) -> str:
    """``up`` (heartbeat within the timeout), ``stale`` (past it) or ``no
    agent`` (never heartbeated: not agent-managed, always eligible)."""
    if provider.heartbeat_at is None:
        return NO_AGENT
    if timeout is not None and provider.heartbeat_at <= now - timeout:
        return STALE
    return UP


def unavailable(store: Store, query: CandidateQuery, timeout: float | None) -> list[dict[str, Any]]:
    """Providers that fit ``query`` apart from being disabled or stale, among
    the best ``query.limit`` (one bounded candidate query)."""
    probe = CandidateQuery(
        group=query.group,
        limit=query.limit,
        strategy=query.strategy,
        sort_class=query.sort_class,
        exclude=query.exclude,
        roots=query.roots,
        heartbeat_after=None,
        include_disabled=True,
    )
    now = store.clock()
    out = []
    for c in store.find_candidates(probe):
        p = c.provider
        state = health(p, now, timeout)
        if p.enabled and state != STALE:
            continue
        why = []
        if not p.enabled:
            why.append("disabled")
        if state == STALE and p.heartbeat_at is not None:
            why.append(
                f"stale: last heartbeat {now - p.heartbeat_at:.0f} s ago (timeout {timeout:g} s)"
            )
        out.append({"uuid": p.uuid, "name": p.name, "why": "; ".join(why)})
    return out


def record_stale(store: Store, after: float, until: float, timeout: float) -> list[Provider]:
    """An ``agent_stale`` event (and a warning) for each provider whose last
    heartbeat is in (``after``, ``until``]: its agent went stale since the
    last look. Several sweepers (workers, services) look at the same window:
    a provider whose newest event already reports this heartbeat is skipped."""
    out = []
    for p in store.heartbeats_between(after, until):
        last = store.list_events(Subject.PROVIDER, p.uuid, limit=1)
        if (
            last
            and last[-1].event == AGENT_STALE
            and last[-1].details.get("heartbeat_at") == p.heartbeat_at
        ):
            continue
        now = store.clock()
        store.add_events(
            [
                Event(
                    Subject.PROVIDER,
                    p.uuid,
                    now,
                    AGENT_STALE,
                    {"heartbeat_at": p.heartbeat_at, "timeout": timeout},
                )
            ]
        )
        log.warning(
            "agent of provider %s (%s) is stale: last heartbeat %.0f s ago (timeout %g s)",
            p.name,
            p.uuid,
            now - (p.heartbeat_at or now),
            timeout,
        )
        out.append(p)
    return out


def describe(found: list[dict[str, Any]]) -> str:
    """One clause for a "no valid host" message ("" when nothing was found)."""
    if not found:
        return ""
    return "; would fit but not eligible: " + ", ".join(f"{u['name']} ({u['why']})" for u in found)


def free_of(c: ProviderUsage) -> dict[str, int]:
    return {rc: u.free for rc, u in sorted(c.usages.items())}
