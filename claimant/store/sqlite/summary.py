"""``Store.summary`` on SQLite: three aggregate statements, no row per
provider leaves SQLite."""

from __future__ import annotations

from typing import TYPE_CHECKING

from claimant.store.base import CloudSummary

if TYPE_CHECKING:
    from claimant.store.sqlite import SQLiteStore


def summary(store: SQLiteStore, heartbeat_after: float | None) -> CloudSummary:
    now = store.clock()
    # ``used`` must not count a claim that expired and was not swept yet.
    store._sweep_if_due(now)
    with store._read() as conn:
        capacity: dict[str, int] = {}
        used: dict[str, int] = {}
        for rc, cap, u in conn.execute(
            "SELECT rc, SUM(capacity), SUM(used) FROM inventories GROUP BY rc"
        ):
            capacity[rc], used[rc] = int(cap), int(u)
        providers = {
            (health, bool(enabled)): n
            for health, enabled, n in conn.execute(
                "SELECT CASE WHEN heartbeat_at IS NULL THEN 'no_agent'"
                " WHEN ?1 IS NULL OR heartbeat_at > ?1 THEN 'up' ELSE 'stale' END,"
                " enabled, COUNT(*) FROM providers GROUP BY 1, 2",
                (heartbeat_after,),
            )
        }
        (live,) = conn.execute(
            "SELECT COUNT(*) FROM ledger WHERE status = 'claimed' AND expires_at > ?", (now,)
        ).fetchone()
    return CloudSummary(capacity, used, providers, int(live))


def heartbeats_between(store: SQLiteStore, after: float, until: float) -> list[str]:
    rows = store._select(
        "SELECT uuid FROM providers WHERE heartbeat_at > ? AND heartbeat_at <= ? ORDER BY id",
        (after, until),
    )
    return [r[0] for r in rows]
