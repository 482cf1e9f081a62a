"""``claimant top``: the cloud's capacity at a glance, per resource class and
per aggregate, with provider health (``GET /v1/capacity``)."""

from __future__ import annotations

from typing import Any

import click

from claimant.cli.catalog import render_aggregates
from claimant.cli.client import Api, with_api
from claimant.cli.output import Out
from claimant.cli.providers import class_order


def render_top(out: Out, cap: dict[str, Any]) -> None:
    p = cap["providers"]
    h = p["health"]
    out.line(f"providers: {p['total']} ({p['enabled']} enabled, {p['disabled']} disabled)")
    out.line(
        f"health:    {h['up']} up, {h['stale']} stale, {h['down']} down, "
        f"{h['no_agent']} no agent (heartbeat timeout {cap['heartbeat_timeout']}s)"
    )
    rows = []
    for rc in class_order(list(cap["resource_classes"])):
        s = cap["resource_classes"][rc]
        rows.append(
            [rc, s["capacity"], s["used"], s["free"], f"{s['used_percent']:.0f}%",
             s["schedulable_free"], s["providers"]]
        )  # fmt: skip
    cols = ["CLASS", "CAPACITY", "USED", "FREE", "USE%", "SCHEDULABLE", "PROVIDERS"]
    out.heading("per resource class (SCHEDULABLE: free on enabled, healthy providers)")
    if rows:
        out.table(cols, rows, right=cols[1:])
    else:
        out.line("no inventory")
    if cap["aggregates"]:
        out.heading("per aggregate")
        render_aggregates(out, cap["aggregates"])


@click.command()
@with_api
def top(api: Api) -> None:
    """Capacity, use and free per resource class and per aggregate."""
    cap = api.call("GET", "/capacity")
    api.out.emit(cap, lambda d: render_top(api.out, d))
