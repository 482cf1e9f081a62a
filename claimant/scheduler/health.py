"""Which providers could take a group but are not eligible (disabled, or
their agent's heartbeat is past the timeout), so "no valid host" and
``explain`` can name them."""

from __future__ import annotations

from typing import Any

from claimant.model import Provider, ProviderUsage
from claimant.store.base import CandidateQuery, Store

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


def describe(found: list[dict[str, Any]]) -> str:
    """One clause for a "no valid host" message ("" when nothing was found)."""
    if not found:
        return ""
    return "; would fit but not eligible: " + ", ".join(f"{u['name']} ({u['why']})" for u in found)


def free_of(c: ProviderUsage) -> dict[str, int]:
    return {rc: u.free for rc, u in sorted(c.usages.items())}
