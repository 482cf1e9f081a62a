"""``claimant top``: the cloud's capacity at a glance, per resource class and
per aggregate, with provider health (``GET /v1/capacity``); per cell too when
the store has several (docs/cells.md), or one cell with ``--cell``."""

from __future__ import annotations

from typing import Any

import click

from claimant.cli.catalog import render_aggregates
from claimant.cli.client import Api, with_api
from claimant.cli.output import Out
from claimant.cli.providers import class_order


def _usage_row(s: dict[str, Any]) -> list[Any]:
    return [s["capacity"], s["used"], s["free"], f"{s['used_percent']:.0f}%", s["schedulable_free"]]


def render_cells(out: Out, cells: dict[str, Any]) -> None:
    """Health and use of each cell: two tables, within 80 columns."""
    out.heading("per cell (providers by health)")
    cols = ["CELL", "PROVIDERS", "ENABLED", "UP", "STALE", "DOWN", "NO AGENT"]
    rows = []
    for name, c in cells.items():
        p = c["providers"]
        h = p["health"]
        rows.append([name, p["total"], p["enabled"], h["up"], h["stale"], h["down"], h["no_agent"]])
    out.table(cols, rows, right=cols[1:])
    out.heading("per cell and resource class")
    # No FREE column (CAPACITY - USED): CELL takes its room within 80 columns.
    cols = ["CELL", "CLASS", "CAPACITY", "USED", "USE%", "SCHEDULABLE"]
    rows = []
    for name, c in cells.items():
        for rc in class_order(list(c["resource_classes"])):
            s = c["resource_classes"][rc]
            rows.append([name, rc, *(_usage_row(s)[i] for i in (0, 1, 3, 4))])
    if rows:
        out.table(cols, rows, right=cols[2:])
    else:
        out.line("no inventory")


def render_top(out: Out, cap: dict[str, Any]) -> None:
    p = cap["providers"]
    h = p["health"]
    if cap.get("cell"):
        out.line(f"cell:      {cap['cell']}")
    out.line(f"providers: {p['total']} ({p['enabled']} enabled, {p['disabled']} disabled)")
    out.line(
        f"health:    {h['up']} up, {h['stale']} stale, {h['down']} down, "
        f"{h['no_agent']} no agent (heartbeat timeout {cap['heartbeat_timeout']}s)"
    )
    rows = []
    for rc in class_order(list(cap["resource_classes"])):
        s = cap["resource_classes"][rc]
        rows.append([rc, *_usage_row(s), s["providers"]])
    cols = ["CLASS", "CAPACITY", "USED", "FREE", "USE%", "SCHEDULABLE", "PROVIDERS"]
    out.heading("per resource class (SCHEDULABLE: free on enabled, healthy providers)")
    if rows:
        out.table(cols, rows, right=cols[1:])
    else:
        out.line("no inventory")
    cells = cap.get("cells") or {}
    if len(cells) > 1:
        render_cells(out, cells)
    if cap["aggregates"]:
        out.heading("per aggregate")
        render_aggregates(out, cap["aggregates"])


@click.command()
@click.option(
    "--cell",
    default=None,
    metavar="CELL",
    help="Only the providers of this cell (data centre, e.g. dc1).",
)
@with_api
def top(api: Api, cell: str | None) -> None:
    """Capacity, use and free per resource class and per aggregate; per cell
    too when the store has several."""
    cap = api.call("GET", "/capacity", params={"cell": cell} if cell else None)
    api.out.emit(cap, lambda d: render_top(api.out, d))
