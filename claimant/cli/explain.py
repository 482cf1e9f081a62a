"""``claimant request explain``, ``claimant request events`` and ``claimant
provider events``: why a request would land where it would, and what
happened to a request or a provider. Commands only; the groups that hold
them (``request``, ``provider``) add them by name."""

from __future__ import annotations

import datetime
import json
import time
import uuid as uuidlib
from typing import Any

import click
import httpx

DEFAULT_URL = "http://127.0.0.1:8778"

_url = click.option(
    "--url", envvar="CLAIMANT_URL", default=DEFAULT_URL, show_default=True, help="claimant server."
)
_token = click.option(
    "--token", envvar="CLAIMANT_TOKEN", default="admin", show_default=True, help="x-auth-token."
)
_json = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _call(url: str, token: str, method: str, path: str, **kw: Any) -> Any:
    try:
        r = httpx.request(
            method,
            url.rstrip("/") + "/v1" + path,
            headers={"x-auth-token": token},
            timeout=60,
            **kw,
        )
    except httpx.TransportError as exc:
        raise click.ClickException(f"cannot reach {url}: {exc}") from None
    if r.status_code >= 400:
        try:
            err = r.json()["error"]
            text = f"{err['code']}: {err['message']}"
        except (ValueError, KeyError, TypeError):
            text = f"HTTP {r.status_code}: {r.text[:500]}"
        raise click.ClickException(text)
    return r.json()


def _provider_uuid(url: str, token: str, ref: str) -> str:
    try:
        return str(uuidlib.UUID(ref))
    except ValueError:
        pass
    found = _call(url, token, "GET", "/providers", params={"name": ref})["providers"]
    if not found:
        raise click.ClickException(f"not_found: no provider named {ref!r}")
    return str(found[0]["uuid"])


def when(at: float, now: float | None = None) -> str:
    """``2026-12-01 15:41:24Z (3m ago)``: a human time, UTC."""
    now = time.time() if now is None else now
    stamp = datetime.datetime.fromtimestamp(at, datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    ago = max(0.0, now - at)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if ago >= size:
            return f"{stamp} ({int(ago // size)}{unit} ago)"
    return f"{stamp} ({int(ago)}s ago)"


def _amounts(values: tuple[str, ...]) -> dict[str, int]:
    """``VCPU=2,MEMORY_MB=512`` (``CLASS:N`` accepted too)."""
    out: dict[str, int] = {}
    for chunk in (c for v in values for c in v.split(",") if c.strip()):
        sep = "=" if "=" in chunk else ":"
        name, _, amount = chunk.partition(sep)
        if not amount.strip().isdigit():
            raise click.BadParameter(f"{chunk!r}: use CLASS=N", param_hint="--resources")
        out[name.strip().upper()] = int(amount)
    return out


def _names(values: tuple[str, ...]) -> list[str]:
    return [n.strip() for v in values for n in v.split(",") if n.strip()]


def render_events(events: list[dict[str, Any]], now: float | None = None) -> list[str]:
    lines = []
    for e in events:
        rest = {k: v for k, v in e.items() if k not in ("at", "event", "details")}
        message = rest.pop("message", None)
        extra = " ".join(f"{k}={json.dumps(v, sort_keys=True)}" for k, v in sorted(rest.items()))
        line = f"{when(e.get('at', 0.0), now)}  {e['event']:<14} {extra}".rstrip()
        if message:
            line += f"\n    {message}"
        lines.append(line)
    return lines


def render_explain(out: dict[str, Any]) -> list[str]:
    lines = [
        f"dry run: {'fits' if out['fits'] else 'NO VALID HOST'}"
        f" (instance 1 of {out['count']}, strategy {out['strategy']},"
        f" picks at random among the best {out['host_subset_size']})",
    ]
    for g in out["groups"]:
        want = ",".join(f"{k}={v}" for k, v in sorted(g["resources"].items()))
        lines.append(f"group {g['group'] or '(default)'}: {want}")
        lines.append(f"  the store returned {len(g['candidates'])} candidate(s)")
        ranked = sorted(g["candidates"], key=lambda c: (not c["passed"], c.get("rank", 0)))
        for c in ranked:
            free = ",".join(f"{k}={v}" for k, v in c["free"].items())
            if c["passed"]:
                parts = " ".join(f"{k}={v:+.3f}" for k, v in sorted(c["weights"].items()) if v)
                mark = "*" if c["uuid"] == g["would_choose"] else " "
                lines.append(
                    f"  {mark}#{c['rank']:<3} {c['name']:<20} weight {c['total']:+.3f}  free {free}"
                )
                if parts:
                    lines.append(f"         {parts}")
            else:
                lines.append(
                    f"   --   {c['name']:<20} rejected by {c['rejected_by']}: {c['reason']}"
                )
        for u in g["not_eligible"]:
            lines.append(f"   --   {u['name']:<20} not eligible: {u['why']}")
        if g["would_choose"]:
            names = {c["uuid"]: c["name"] for c in g["candidates"]}
            among = ", ".join(names[u] for u in g["would_pick_among"])
            lines.append(f"  would choose among: {among}")
        else:
            lines.append("  no candidate passed: no valid host for this group")
    return lines


@click.command("explain")
@_url
@_token
@_json
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
    url: str,
    token: str,
    as_json: bool,
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
    """Where a request would go and why, without claiming anything."""
    if body_file is not None:
        try:
            body = json.load(body_file)
        except ValueError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--body") from None
    else:
        if not resources:
            raise click.UsageError("give --resources (or --body)")
        group: dict[str, Any] = {"resources": _amounts(resources)}
        if required:
            group["required_traits"] = _names(required)
        if forbidden:
            group["forbidden_traits"] = _names(forbidden)
        if member_of:
            group["member_of"] = [_names((m,)) for m in member_of]
        body = {
            "groups": [group],
            "count": count,
            "hints": {
                "strategy": strategy,
                "same_host": _names(same_host),
                "different_host": _names(different_host),
            },
        }
    out = _call(url, token, "POST", "/requests", params={"dry_run": "true"}, json=body)
    if as_json:
        click.echo(json.dumps(out, indent=2, sort_keys=True))
        return
    click.echo("\n".join(render_explain(out)))
    if not out["fits"]:
        raise SystemExit(2)


@click.command("events")
@_url
@_token
@_json
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.argument("uuid")
def request_events(url: str, token: str, as_json: bool, limit: int, uuid: str) -> None:
    """What happened to a request, oldest first."""
    out = _call(url, token, "GET", f"/requests/{uuid}/events", params={"limit": limit})
    _print_events(out, as_json)


@click.command("events")
@_url
@_token
@_json
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.argument("ref")
def provider_events(url: str, token: str, as_json: bool, limit: int, ref: str) -> None:
    """What happened on a provider (uuid or name), oldest first."""
    uuid = _provider_uuid(url, token, ref)
    out = _call(url, token, "GET", f"/providers/{uuid}/events", params={"limit": limit})
    _print_events(out, as_json)


def _print_events(out: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(out, indent=2, sort_keys=True))
        return
    lines = render_events(out["events"])
    click.echo("\n".join(lines) if lines else "no events")
