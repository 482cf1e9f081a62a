"""``claimant request ...`` and ``claimant claim ...``: create (and schedule),
show with the failure reason and what was placed, list; claims by provider."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from claimant.cli import explain as _explain
from claimant.cli import parse
from claimant.cli.client import Api, with_api
from claimant.cli.output import Out, ago, amounts
from claimant.cli.providers import render_claims

# History events that say why a request is not (fully) placed.
_FAILURES = ("failed", "partial", "expired", "build_failed")


def _group_text(out: Out, g: dict[str, Any]) -> str:
    text = amounts(g["resources"])
    for key, label in (("required_traits", "required"), ("forbidden_traits", "forbidden")):
        if g.get(key):
            text += f" {label}=" + ",".join(g[key])
    for any_of in g.get("member_of", []):
        text += " member_of=" + ",".join(out.uuid(u) for u in any_of)
    for c in g.get("attributes", []):
        value = c["value"]
        shown = "[" + ", ".join(map(str, value)) + "]" if isinstance(value, list) else value
        text += f" {c['name']}{' in ' if c['op'] == 'in' else c['op']}{shown}"
    if g.get("in_tree"):
        text += f" in_tree={out.uuid(g['in_tree'])}"
    if g.get("provider_type"):
        text += f" type={g['provider_type']}"
    if g.get("span", "provider") != "provider":
        text += f" span={g['span']}"
    return text


def outcome(r: dict[str, Any]) -> tuple[str, str | None]:
    """The status to show (a partial placement says so) and why it failed."""
    placed = len(r.get("placements", [])) if "placements" in r else None
    # The server stores the reason since requests follow reality; older ones
    # only have it in their history.
    reason = r.get("reason") or None
    for h in reversed(r.get("history", [])):
        if reason:
            break
        if h.get("event") in _FAILURES and h.get("message"):
            reason = str(h["message"])
    status = r["status"]
    if placed is not None and status in ("scheduled", "partial") and placed < r["count"]:
        status = f"{placed} of {r['count']}: partial"
    return status, reason


def render_request(out: Out, r: dict[str, Any], names: dict[str, str]) -> None:
    now = time.time()
    status, reason = outcome(r)
    hints = r.get("hints", {})
    hint_text = ", ".join(
        f"{k}={','.join(v) if isinstance(v, list) else v}"
        for k, v in hints.items()
        if v and not (k == "strategy" and v == "spread")
    )
    out.fields(
        f"request {r['uuid']}",
        [
            ("status", status),
            ("reason", reason),
            ("count", r["count"]),
            ("all or nothing", "yes" if r.get("all_or_nothing", True) else "no (partial allowed)"),
            ("project", r["project_id"]),
            ("user", r.get("user_id")),
            ("group policy", r["group_policy"] if r["group_policy"] != "none" else None),
            ("hints", hint_text or None),
            ("created", ago(r.get("created_at"), now)),
            ("updated", ago(r.get("updated_at"), now)),
        ],
    )
    out.heading("groups")
    out.table(
        ["GROUP", "ASKS FOR"],
        [[g["name"] or "(default)", _group_text(out, g)] for g in r["groups"]],
    )
    claims = [c for p in r.get("placements", []) for c in p["claims"]]
    out.heading(f"claims ({len(claims)})")
    if claims:
        render_claims(out, claims, names, project=False)
    history = r.get("history", [])
    if history:
        out.heading("history")
        out.table(
            ["AGE", "EVENT", "MESSAGE"],
            [[ago(h.get("at"), now), h.get("event", ""), h.get("message", "")] for h in history],
        )


@click.group()
def request() -> None:
    """Requests: create (and schedule), show, list."""


@request.command("create")
@with_api
@click.option("--resources", multiple=True, help="VCPU=2,MEMORY_MB=2048 (CLASS:N too).")
@click.option("--flavor", help="vcpus=2,memory_mb=2048[,disk_gb=20] - a flavor template.")
@click.option("--required", multiple=True, help="Required traits (repeatable, comma-separated).")
@click.option("--forbidden", multiple=True, help="Forbidden traits.")
@click.option("--member-of", multiple=True, help="Aggregates (name or uuid), any of; repeat: all.")
@click.option("--in-tree", help="Only under this provider's tree (name or uuid).")
@click.option("--provider-type")
@click.option(
    "--attribute",
    "attributes",
    multiple=True,
    help="Constraint: 'cpu_arch==x86_64', 'ram_gb>=256' or 'cpu_arch in [x86_64, aarch64]'.",
)
@click.option(
    "--span",
    type=click.Choice(["provider", "tree"]),
    default="provider",
    show_default=True,
    help="tree: each resource class may come from a different provider of one tree.",
)
@click.option("--group", "groups", multiple=True, metavar="SPEC", help=parse.GROUP_FORM)
@click.option("--count", type=click.IntRange(1, 1000), default=1, show_default=True)
@click.option("--group-policy", type=click.Choice(["none", "isolate"]), default="none")
@click.option("--server-group", help="Server group name (hint).")
@click.option(
    "--policy",
    type=click.Choice(["affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity"]),
)
@click.option("--same-host", multiple=True, help="On the same host as these consumers.")
@click.option("--different-host", multiple=True, help="Not on the host of these consumers.")
@click.option("--strategy", type=click.Choice(["spread", "pack"]), default="spread")
@click.option("--partial", is_flag=True, help="Keep what fits (not all-or-nothing).")
@click.option("--project")
@click.option(
    "--cell",
    help="Only on providers of this cell (data centre, docs/cells.md); default: "
    "the service's own cell first, then any other.",
)
@click.option("--body", "body_file", type=click.File(), help="A whole JSON request body.")
def request_create(
    api: Api,
    resources: tuple[str, ...],
    flavor: str | None,
    required: tuple[str, ...],
    forbidden: tuple[str, ...],
    member_of: tuple[str, ...],
    in_tree: str | None,
    provider_type: str | None,
    attributes: tuple[str, ...],
    span: str,
    groups: tuple[str, ...],
    count: int,
    group_policy: str,
    server_group: str | None,
    policy: str | None,
    same_host: tuple[str, ...],
    different_host: tuple[str, ...],
    strategy: str,
    partial: bool,
    project: str | None,
    cell: str | None,
    body_file: Any,
) -> None:
    """Create a request; the server schedules it and returns its claims.

    \b
    More groups, each met by one provider (or one tree with span=tree):
      --group 'name=gpu; VGPU=1; required=CUSTOM_GPU_A100'"""
    if body_file is not None:
        try:
            body = json.load(body_file)
        except ValueError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--body") from None
    else:
        body = _body(
            resources, flavor, required, forbidden, member_of, in_tree, provider_type,
            attributes, span, groups, count, group_policy, partial, strategy,
        )  # fmt: skip
        if server_group:
            body["hints"]["group"] = server_group
        if policy:
            body["hints"]["group_policy"] = policy
        if same_host:
            body["hints"]["same_host"] = parse.names(same_host)
        if different_host:
            body["hints"]["different_host"] = parse.names(different_host)
        if project:
            body["project_id"] = project
        if cell:
            body["cell"] = cell
        for g in body.get("groups", []):
            if g.get("in_tree"):
                g["in_tree"] = api.provider_uuid(g["in_tree"])
    data = api.call("POST", "/requests", json=body)
    api.out.emit(data, lambda d: render_request(api.out, d, _names_of(api, d)))


def _body(
    resources: tuple[str, ...],
    flavor: str | None,
    required: tuple[str, ...],
    forbidden: tuple[str, ...],
    member_of: tuple[str, ...],
    in_tree: str | None,
    provider_type: str | None,
    attributes: tuple[str, ...],
    span: str,
    groups: tuple[str, ...],
    count: int,
    group_policy: str,
    partial: bool,
    strategy: str,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "count": count,
        "group_policy": group_policy,
        "all_or_nothing": not partial,
        "hints": {"strategy": strategy},
    }
    group: dict[str, Any] = {}
    if resources:
        group["resources"] = parse.resources(resources)
    if required:
        group["required_traits"] = parse.names(required)
    if forbidden:
        group["forbidden_traits"] = parse.names(forbidden)
    if member_of:
        group["member_of"] = [parse.names((m,)) for m in member_of]
    if in_tree:
        group["in_tree"] = in_tree
    if provider_type:
        group["provider_type"] = provider_type
    if attributes:
        group["attributes"] = [parse.constraint(a) for a in attributes]
    if span != "provider":
        if flavor:
            raise click.UsageError("--span applies to --resources, not to --flavor")
        group["span"] = span
    if flavor:
        spec = parse.pairs((flavor,), "--flavor")
        extra = {k: v for k, v in spec.items() if k not in ("vcpus", "memory_mb", "disk_gb")}
        fl = {k: v for k, v in spec.items() if k in ("vcpus", "memory_mb", "disk_gb")}
        body["flavor"] = {**fl, "extra": extra}
        traits = {f"trait:{t}": "required" for t in group.pop("required_traits", [])}
        traits |= {f"trait:{t}": "forbidden" for t in group.pop("forbidden_traits", [])}
        body["flavor"]["extra"].update(traits)
    body_groups = []
    if group:
        if "resources" not in group:
            raise click.UsageError("traits, attributes and aggregates need --resources")
        body_groups.append(group)
    for i, text in enumerate(groups, 1):
        g = parse.group(text)
        g.setdefault("name", f"g{i}")
        body_groups.append(g)
    if body_groups:
        body["groups"] = body_groups
    if not flavor and not body_groups:
        raise click.UsageError("give --resources, --group, --flavor or --body")
    return body


def _names_of(api: Api, r: dict[str, Any]) -> dict[str, str]:
    if not any(p["claims"] for p in r.get("placements", [])):
        return {}
    return api.provider_names()


@request.command("show")
@with_api
@click.argument("uuid")
def request_show(api: Api, uuid: str) -> None:
    """Show a request: status and why it failed, groups, claims, history."""
    data = api.call("GET", f"/requests/{uuid}")
    api.out.emit(data, lambda d: render_request(api.out, d, _names_of(api, d)))


@request.command("list")
@with_api
@click.option("--status")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
def request_list(api: Api, status: str | None, limit: int) -> None:
    """List requests, newest first."""
    params: dict[str, Any] = {"limit": limit}
    if status:
        params["status"] = status

    def render(data: dict[str, Any]) -> None:
        now = time.time()
        rows = [
            [
                api.out.uuid(r["uuid"]),
                r["status"],
                r["count"],
                len(r["claims"]),
                r["project_id"],
                ago(r.get("created_at"), now),
                "; ".join(_group_text(api.out, g) for g in r["groups"]),
            ]
            for r in data["requests"]
        ]
        cols = ["UUID", "STATUS", "COUNT", "CLAIMS", "PROJECT", "AGE", "ASKS FOR"]
        api.out.table(cols, rows, right=["COUNT", "CLAIMS"])

    api.out.emit(api.call("GET", "/requests", params=params), render)


# -- claims ------------------------------------------------------------------
def render_claim(out: Out, c: dict[str, Any], names: dict[str, str]) -> None:
    now = time.time()
    provider = c["provider_uuid"]
    out.fields(
        f"claim {c['uuid']}",
        [
            ("status", c["status"]),
            ("provider", f"{names.get(provider, '?')} ({provider})"),
            ("consumer", c["consumer_uuid"]),
            ("request", c.get("request_uuid")),
            ("project", c.get("project_id")),
            ("amounts", amounts(c["amounts"])),
            ("created", ago(c.get("created_at"), now)),
            ("expires", ago(c["expires_at"], now) if c.get("expires_at") else "never"),
        ],
    )


@click.group()
def claim() -> None:
    """Claims: list by provider, show, confirm (into an allocation), release."""


@claim.command("list")
@with_api
@click.option("--provider", "ref", required=True, help="Provider name or uuid.")
@click.option("--status", type=click.Choice(["claimed", "confirmed"]))
@click.option("--consumer", help="Only this consumer's.")
def claim_list(api: Api, ref: str, status: str | None, consumer: str | None) -> None:
    """List the live claims and allocations on a provider."""
    p = api.provider(ref)
    params = {k: v for k, v in (("status", status), ("consumer_uuid", consumer)) if v}
    data = api.call("GET", f"/providers/{p['uuid']}/claims", params=params)
    api.out.emit(data, lambda d: render_claims(api.out, d["claims"], {p["uuid"]: p["name"]}))


@claim.command("show")
@with_api
@click.argument("uuid")
def claim_show(api: Api, uuid: str) -> None:
    """Show a claim."""
    c = api.call("GET", f"/claims/{uuid}")
    api.out.emit(c, lambda d: render_claim(api.out, d, _provider_name(api, d)))


def _provider_name(api: Api, c: dict[str, Any]) -> dict[str, str]:
    p = api.provider(c["provider_uuid"])
    return {p["uuid"]: p["name"]}


@claim.command("confirm")
@with_api
@click.argument("uuid")
def claim_confirm(api: Api, uuid: str) -> None:
    """Confirm a claim: it becomes an allocation that never expires."""
    c = api.call("POST", f"/claims/{uuid}/confirm")
    api.out.emit(c, lambda d: render_claim(api.out, d, _provider_name(api, d)))


@claim.command("release")
@with_api
@click.argument("uuid")
def claim_release(api: Api, uuid: str) -> None:
    """Release a claim or allocation."""
    api.call("DELETE", f"/claims/{uuid}")
    api.out.emit({"released": uuid}, lambda d: api.out.line(f"released claim {d['released']}"))


# Explain and the event history live in their own module (claimant/cli/explain.py).
request.add_command(_explain.request_explain, "explain")
request.add_command(_explain.request_events, "events")
