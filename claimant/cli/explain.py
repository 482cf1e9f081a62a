"""``claimant request explain``, ``claimant request events`` and ``claimant
provider events``: why a request would land where it would, and what
happened to a request or a provider. Commands only; the groups that hold
them (``request``, ``provider``) add them by name. They share the client and
the output of every other command (claimant/cli/client.py, output.py)."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from claimant.cli import parse
from claimant.cli.client import Api, with_api
from claimant.cli.output import Out, ago

# How many events ``provider show`` prints (the newest).
RECENT_EVENTS = 10


def _event_rows(
    out: Out, events: list[dict[str, Any]], names: dict[str, str], now: float | None = None
) -> list[list[str]]:
    """AGE, EVENT, MESSAGE rows: the message, then the other fields as
    ``key=value`` with short uuids (``-o wide``: whole), provider names, and
    the amounts as ``CLASS=N``."""
    now = time.time() if now is None else now
    rows = []
    for e in events:
        rest = {k: v for k, v in e.items() if k not in ("at", "event", "details", "message")}
        parts = [str(e["message"])] if e.get("message") else []
        for key, value in sorted(rest.items()):
            if value is None or value == "" or value == {}:
                continue
            label = key.removesuffix("_uuid").removesuffix("_id")
            if key == "provider_uuid" and value in names:
                parts.append(f"provider={names[value]}")
            elif key.endswith("_uuid") and isinstance(value, str):
                parts.append(f"{label}={out.uuid(value)}")
            elif key == "amounts" and isinstance(value, dict):
                parts.append(",".join(f"{k}={v}" for k, v in value.items()))
            elif isinstance(value, dict):
                parts.append(f"{key}=" + ",".join(f"{k}={v}" for k, v in value.items()))
            else:
                parts.append(f"{label}={value if isinstance(value, str) else json.dumps(value)}")
        rows.append([ago(e.get("at"), now), str(e.get("event", "")), " ".join(parts)])
    return rows


def render_events(out: Out, events: list[dict[str, Any]], names: dict[str, str]) -> None:
    if not events:
        out.line("no events")
        return
    out.table(["AGE", "EVENT", "MESSAGE"], _event_rows(out, events, names))


def render_explain(out: Out, data: dict[str, Any]) -> None:
    out.line(
        f"dry run: {'fits' if data['fits'] else 'NO VALID HOST'}"
        f" (instance 1 of {data['count']}, {data['strategy']};"
        f" picks at random among the best {data['host_subset_size']})"
    )
    for g in data["groups"]:
        want = ",".join(f"{k}={v}" for k, v in sorted(g["resources"].items()))
        out.heading(f"group {g['group'] or '(default)'}: {want}")
        out.line(f"the store returned {len(g['candidates'])} candidate(s)")
        ranked = sorted(g["candidates"], key=lambda c: (not c["passed"], c.get("rank", 0)))
        rows = []
        for c in ranked:
            if c["passed"]:
                free = ",".join(f"{k}={v}" for k, v in c["free"].items())
                parts = " ".join(f"{k}={v:+.3f}" for k, v in sorted(c["weights"].items()) if v)
                mark = "*" if c["uuid"] == g["would_choose"] else ""
                rows.append(
                    [mark, f"#{c['rank']}", c["name"], f"{c['total']:+.3f}",
                     f"free {free}" + (f"; {parts}" if parts else "")]
                )  # fmt: skip
            else:
                rows.append(
                    ["", "--", c["name"], "", f"rejected by {c['rejected_by']}: {c['reason']}"]
                )
        for u in g["not_eligible"]:
            rows.append(["", "--", u["name"], "", f"not eligible: {u['why']}"])
        if rows:
            out.table(["", "RANK", "NAME", "WEIGHT", "MESSAGE"], rows, right=["WEIGHT"])
        if g["would_choose"]:
            names = {c["uuid"]: c["name"] for c in g["candidates"]}
            among = ", ".join(names[u] for u in g["would_pick_among"])
            out.line(f"would choose among: {among}")
        else:
            out.line("no candidate passed: no valid host for this group")


@click.command("explain")
@with_api
@click.option("--resources", multiple=True, help="VCPU=2,MEMORY_MB=2048 (CLASS:N too).")
@click.option("--required", multiple=True, help="Required traits (comma-separated).")
@click.option("--forbidden", multiple=True, help="Forbidden traits.")
@click.option("--member-of", multiple=True, help="Aggregate uuids, any of (repeatable: all).")
@click.option("--count", type=click.IntRange(1, 1000), default=1, show_default=True)
@click.option("--strategy", type=click.Choice(["spread", "pack"]), default="spread")
@click.option("--same-host", multiple=True, help="Consumer uuids (hint).")
@click.option("--different-host", multiple=True, help="Consumer uuids (hint).")
@click.option("--body", "body_file", type=click.File(), help="A whole JSON request body.")
def request_explain(
    api: Api,
    resources: tuple[str, ...],
    required: tuple[str, ...],
    forbidden: tuple[str, ...],
    member_of: tuple[str, ...],
    count: int,
    strategy: str,
    same_host: tuple[str, ...],
    different_host: tuple[str, ...],
    body_file: Any,
) -> None:
    """Where a request would go and why, without claiming anything. Exit 5
    when nothing fits (as `request create`)."""
    if body_file is not None:
        try:
            body = json.load(body_file)
        except ValueError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--body") from None
    else:
        if not resources:
            raise click.UsageError("give --resources (or --body)")
        group: dict[str, Any] = {"resources": parse.resources(resources)}
        if required:
            group["required_traits"] = parse.names(required)
        if forbidden:
            group["forbidden_traits"] = parse.names(forbidden)
        if member_of:
            group["member_of"] = [parse.names((m,)) for m in member_of]
        body = {
            "groups": [group],
            "count": count,
            "hints": {
                "strategy": strategy,
                "same_host": parse.names(same_host),
                "different_host": parse.names(different_host),
            },
        }
    data = api.call("POST", "/requests", params={"dry_run": "true"}, json=body)
    api.out.emit(data, lambda d: render_explain(api.out, d))
    if not data["fits"]:
        # The explanation is the answer (stdout); the error says so for scripts.
        api.fail(
            "no_valid_host",
            "nothing fits: no valid host (the explanation above says why)",
            fix="`claimant top` shows what is free; `claimant provider list` shows health",
        )


@click.command("events")
@with_api
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.argument("uuid")
def request_events(api: Api, limit: int, uuid: str) -> None:
    """What happened to a request, oldest first."""
    data = api.call("GET", f"/requests/{uuid}/events", params={"limit": limit})
    names = api.provider_names() if any("provider_uuid" in e for e in data["events"]) else {}
    api.out.emit(data, lambda d: render_events(api.out, d["events"], names))


@click.command("events")
@with_api
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.argument("ref")
def provider_events(api: Api, limit: int, ref: str) -> None:
    """What happened on a provider (name or uuid), oldest first."""
    p = api.provider(ref)
    data = api.call("GET", f"/providers/{p['uuid']}/events", params={"limit": limit})
    api.out.emit(data, lambda d: render_events(api.out, d["events"], {p["uuid"]: p["name"]}))
