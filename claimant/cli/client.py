"""Client commands: ``claimant provider|inventory|request|claim ...`` over HTTP.

Readable tables by default, ``--json`` for machine output. An HTTP error
prints its code and message and exits 1, never a traceback."""

from __future__ import annotations

import json
import sys
import uuid as uuidlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
import httpx

DEFAULT_URL = "http://127.0.0.1:8778"


class Api:
    def __init__(self, url: str, token: str, as_json: bool) -> None:
        self.url = url.rstrip("/")
        self.as_json = as_json
        self.http = httpx.Client(base_url=self.url, headers={"x-auth-token": token}, timeout=60)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            r = self.http.request(method, "/v1" + path, **kwargs)
        except httpx.TransportError as exc:
            raise click.ClickException(f"cannot reach {self.url}: {exc}") from None
        if r.status_code >= 400:
            try:
                err = r.json()["error"]
                text = f"{err['code']}: {err['message']}"
                for f in (err.get("details") or {}).get("fields", [])[:10]:
                    text += f"\n  {f['field']}: {f['message']}"
            except (ValueError, KeyError, TypeError):
                text = f"HTTP {r.status_code}: {r.text[:500]}"
            raise click.ClickException(text)
        return r.json() if r.content else None

    def provider_uuid(self, ref: str) -> str:
        """A provider named by uuid or by name."""
        try:
            return str(uuidlib.UUID(ref))
        except ValueError:
            pass
        found = self.call("GET", "/providers", params={"name": ref})["providers"]
        if not found:
            raise click.ClickException(f"not_found: no provider named {ref!r}")
        return str(found[0]["uuid"])


def _common(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--json", "as_json", is_flag=True, help="Print JSON.")(func)
    func = click.option(
        "--token",
        envvar="CLAIMANT_TOKEN",
        default="admin",
        show_default=True,
        help="x-auth-token to send ($CLAIMANT_TOKEN).",
    )(func)
    func = click.option(
        "--url",
        envvar="CLAIMANT_URL",
        default=DEFAULT_URL,
        show_default=True,
        help="claimant server ($CLAIMANT_URL).",
    )(func)
    return func


@contextmanager
def _api(url: str, token: str, as_json: bool) -> Iterator[Api]:
    api = Api(url, token, as_json)
    try:
        yield api
    finally:
        api.http.close()


def _emit(api: Api, data: Any, render: Callable[[Any], None]) -> None:
    if api.as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        render(data)


def _console() -> Any:
    from rich.console import Console

    return Console(file=sys.stdout, soft_wrap=True)


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for c in columns:
        table.add_column(c, overflow="fold")
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    _console().print(table)


def _pairs(values: tuple[str, ...], what: str, cast: Callable[[str], Any] = int) -> dict[str, Any]:
    """``VCPU=2,MEMORY_MB=2048`` (repeatable) -> {"VCPU": 2, "MEMORY_MB": 2048}."""
    out: dict[str, Any] = {}
    for value in values:
        for part in value.split(","):
            key, sep, raw = part.partition("=")
            if not sep or not key.strip():
                raise click.BadParameter(f"{part!r}: use NAME=VALUE", param_hint=what)
            try:
                out[key.strip()] = cast(raw.strip())
            except ValueError:
                raise click.BadParameter(f"{part!r}: bad value", param_hint=what) from None
    return out


def _names(values: tuple[str, ...]) -> list[str]:
    return [n.strip() for v in values for n in v.split(",") if n.strip()]


def _scalar(raw: str) -> Any:
    """Attribute values from the command line: JSON scalars, else a string."""
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return value if isinstance(value, str | int | float | bool) else raw


# -- providers ---------------------------------------------------------------
def _render_providers(data: dict[str, Any]) -> None:
    rows = []
    for p in data["providers"]:
        inv = ", ".join(f"{rc}={i['capacity']}" for rc, i in p["inventories"].items())
        rows.append([p["uuid"], p["name"], p["type"], p["generation"], inv, " ".join(p["traits"])])
    _table("providers", ["uuid", "name", "type", "gen", "capacity", "traits"], rows)


def _render_provider(p: dict[str, Any]) -> None:
    rows = [
        [k, p[k]]
        for k in ("uuid", "name", "type", "parent_uuid", "root_uuid", "generation", "enabled")
    ]
    rows.append(["attributes", json.dumps(p["attributes"], sort_keys=True)])
    rows.append(["traits", " ".join(p["traits"])])
    rows.append(["aggregates", " ".join(p["aggregates"])])
    _table(f"provider {p['name']}", ["field", "value"], rows)
    _render_inventories(p)


def _render_inventories(data: dict[str, Any]) -> None:
    rows = [
        [
            rc,
            i["total"],
            i["reserved"],
            i["allocation_ratio"],
            i["capacity"],
            i["min_unit"],
            i["max_unit"],
            i["step_size"],
        ]
        for rc, i in data["inventories"].items()
    ]
    _table(
        "inventories",
        ["class", "total", "reserved", "ratio", "capacity", "min", "max", "step"],
        rows,
    )


@click.group()
def provider() -> None:
    """Providers: list, show, create, delete, set inventory / traits / aggregates."""


@provider.command("list")
@_common
@click.option("--name")
@click.option("--in-tree")
@click.option("--resources", help="VCPU:2,MEMORY_MB:512 - has this much free.")
@click.option("--required", multiple=True, help="Traits: A,!B or in:C,D (repeatable).")
@click.option("--member-of", multiple=True, help="Aggregates: U1 or in:U1,U2 (repeatable).")
@click.option("--type", "type_")
def provider_list(
    url: str,
    token: str,
    as_json: bool,
    name: str | None,
    in_tree: str | None,
    resources: str | None,
    required: tuple[str, ...],
    member_of: tuple[str, ...],
    type_: str | None,
) -> None:
    """List providers, optionally filtered."""
    params: dict[str, Any] = {
        "name": name,
        "in_tree": in_tree,
        "resources": resources,
        "type": type_,
        "required": list(required),
        "member_of": list(member_of),
    }
    params = {k: v for k, v in params.items() if v}
    with _api(url, token, as_json) as api:
        _emit(api, api.call("GET", "/providers", params=params), _render_providers)


@provider.command("show")
@_common
@click.argument("ref")
def provider_show(url: str, token: str, as_json: bool, ref: str) -> None:
    """Show a provider (by uuid or name)."""
    with _api(url, token, as_json) as api:
        _emit(api, api.call("GET", f"/providers/{api.provider_uuid(ref)}"), _render_provider)


@provider.command("create")
@_common
@click.argument("name")
@click.option("--uuid", "uuid_")
@click.option("--type", "type_", default="compute", show_default=True)
@click.option("--parent", help="Parent provider uuid or name.")
@click.option("--inventory", multiple=True, help="VCPU=16,MEMORY_MB=65536 (totals).")
@click.option("--trait", multiple=True, help="Trait names (repeatable or comma-separated).")
@click.option("--aggregate", multiple=True, help="Aggregate uuids.")
@click.option("--attribute", multiple=True, help="key=value (JSON scalars or strings).")
def provider_create(
    url: str,
    token: str,
    as_json: bool,
    name: str,
    uuid_: str | None,
    type_: str,
    parent: str | None,
    inventory: tuple[str, ...],
    trait: tuple[str, ...],
    aggregate: tuple[str, ...],
    attribute: tuple[str, ...],
) -> None:
    """Create a provider."""
    with _api(url, token, as_json) as api:
        body: dict[str, Any] = {
            "name": name,
            "type": type_,
            "inventories": {rc: {"total": n} for rc, n in _pairs(inventory, "--inventory").items()},
            "traits": _names(trait),
            "aggregates": _names(aggregate),
            "attributes": _pairs(attribute, "--attribute", _scalar),
        }
        if uuid_:
            body["uuid"] = uuid_
        if parent:
            body["parent_uuid"] = api.provider_uuid(parent)
        _emit(api, api.call("POST", "/providers", json=body), _render_provider)


@provider.command("delete")
@_common
@click.argument("ref")
def provider_delete(url: str, token: str, as_json: bool, ref: str) -> None:
    """Delete a provider (admin)."""
    with _api(url, token, as_json) as api:
        uuid = api.provider_uuid(ref)
        api.call("DELETE", f"/providers/{uuid}")
        _emit(api, {"deleted": uuid}, lambda d: click.echo(f"deleted provider {d['deleted']}"))


def _generation(api: Api, uuid: str, given: int | None) -> int:
    if given is not None:
        return given
    return int(api.call("GET", f"/providers/{uuid}")["generation"])


@provider.command("set-inventory")
@_common
@click.argument("ref")
@click.argument("totals", nargs=-1, required=True)
@click.option("--reserved", multiple=True, help="CLASS=N")
@click.option("--allocation-ratio", multiple=True, help="CLASS=RATIO")
@click.option("--min-unit", multiple=True, help="CLASS=N")
@click.option("--max-unit", multiple=True, help="CLASS=N")
@click.option("--step-size", multiple=True, help="CLASS=N")
@click.option("--generation", type=int, help="Expected generation (default: the current one).")
def provider_set_inventory(
    url: str,
    token: str,
    as_json: bool,
    ref: str,
    totals: tuple[str, ...],
    reserved: tuple[str, ...],
    allocation_ratio: tuple[str, ...],
    min_unit: tuple[str, ...],
    max_unit: tuple[str, ...],
    step_size: tuple[str, ...],
    generation: int | None,
) -> None:
    """Replace a provider's inventories: TOTALS are CLASS=TOTAL ..."""
    inventories: dict[str, dict[str, Any]] = {
        rc: {"total": n} for rc, n in _pairs(totals, "TOTALS").items()
    }
    for field, values, cast in (
        ("reserved", reserved, int),
        ("allocation_ratio", allocation_ratio, float),
        ("min_unit", min_unit, int),
        ("max_unit", max_unit, int),
        ("step_size", step_size, int),
    ):
        for rc, v in _pairs(values, "--" + field.replace("_", "-"), cast).items():
            if rc not in inventories:
                raise click.BadParameter(f"{rc} has no total", param_hint=field)
            inventories[rc][field] = v
    with _api(url, token, as_json) as api:
        uuid = api.provider_uuid(ref)
        body = {"generation": _generation(api, uuid, generation), "inventories": inventories}
        _emit(
            api, api.call("PUT", f"/providers/{uuid}/inventories", json=body), _render_inventories
        )


@provider.command("set-traits")
@_common
@click.argument("ref")
@click.argument("traits", nargs=-1)
@click.option("--generation", type=int)
def provider_set_traits(
    url: str, token: str, as_json: bool, ref: str, traits: tuple[str, ...], generation: int | None
) -> None:
    """Replace a provider's traits (none given: clear them)."""
    with _api(url, token, as_json) as api:
        uuid = api.provider_uuid(ref)
        body = {"generation": _generation(api, uuid, generation), "traits": _names(traits)}
        data = api.call("PUT", f"/providers/{uuid}/traits", json=body)
        _emit(
            api,
            data,
            lambda d: click.echo(f"generation {d['generation']}: " + " ".join(d["traits"])),
        )


@provider.command("set-aggregates")
@_common
@click.argument("ref")
@click.argument("aggregates", nargs=-1)
@click.option("--generation", type=int)
def provider_set_aggregates(
    url: str,
    token: str,
    as_json: bool,
    ref: str,
    aggregates: tuple[str, ...],
    generation: int | None,
) -> None:
    """Replace a provider's aggregates (none given: clear them)."""
    with _api(url, token, as_json) as api:
        uuid = api.provider_uuid(ref)
        body = {"generation": _generation(api, uuid, generation), "aggregates": _names(aggregates)}
        data = api.call("PUT", f"/providers/{uuid}/aggregates", json=body)
        _emit(
            api,
            data,
            lambda d: click.echo(f"generation {d['generation']}: " + " ".join(d["aggregates"])),
        )


@click.group()
def inventory() -> None:
    """Inventories of a provider."""


@inventory.command("list")
@_common
@click.argument("ref")
def inventory_list(url: str, token: str, as_json: bool, ref: str) -> None:
    """List a provider's inventories."""
    with _api(url, token, as_json) as api:
        uuid = api.provider_uuid(ref)
        _emit(api, api.call("GET", f"/providers/{uuid}/inventories"), _render_inventories)


# -- requests ----------------------------------------------------------------
def _render_request(r: dict[str, Any]) -> None:
    rows = [[k, r[k]] for k in ("uuid", "status", "count", "project_id", "group_policy")]
    for g in r["groups"]:
        label = f"group {g['name'] or '(default)'}"
        text = ", ".join(f"{rc}={n}" for rc, n in g["resources"].items())
        if g["required_traits"]:
            text += " required=" + ",".join(g["required_traits"])
        if g["forbidden_traits"]:
            text += " forbidden=" + ",".join(g["forbidden_traits"])
        if g.get("span", "provider") != "provider":
            text += f" span={g['span']}"
        rows.append([label, text])
    _table(f"request {r['uuid']}", ["field", "value"], rows)
    claims = [
        [
            p["consumer_uuid"],
            c["uuid"],
            c["provider_uuid"],
            c["status"],
            ", ".join(f"{rc}={n}" for rc, n in c["amounts"].items()),
        ]
        for p in r.get("placements", [])
        for c in p["claims"]
    ]
    if claims:
        _table("claims", ["consumer", "claim", "provider", "status", "amounts"], claims)


@click.group()
def request() -> None:
    """Requests: create (and schedule), show, list."""


@request.command("create")
@_common
@click.option("--resources", multiple=True, help="VCPU=2,MEMORY_MB=2048")
@click.option("--flavor", help="vcpus=2,memory_mb=2048[,disk_gb=20] - a flavor template.")
@click.option("--required", multiple=True, help="Required traits (repeatable, comma-separated).")
@click.option("--forbidden", multiple=True, help="Forbidden traits.")
@click.option("--member-of", multiple=True, help="Aggregate uuids, any of (repeatable: all).")
@click.option("--provider-type")
@click.option(
    "--attribute",
    "attributes",
    multiple=True,
    help="Constraint NAME OP VALUE, e.g. 'cpu_arch==x86_64' or 'ram_gb>=256'.",
)
@click.option(
    "--span",
    type=click.Choice(["provider", "tree"]),
    default="provider",
    show_default=True,
    help="tree: each resource class may come from a different provider of one tree.",
)
@click.option("--count", type=click.IntRange(1, 1000), default=1, show_default=True)
@click.option("--group-policy", type=click.Choice(["none", "isolate"]), default="none")
@click.option("--server-group", help="Server group name (hint).")
@click.option(
    "--policy",
    type=click.Choice(["affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity"]),
)
@click.option("--strategy", type=click.Choice(["spread", "pack"]), default="spread")
@click.option("--partial", is_flag=True, help="Keep what fits (not all-or-nothing).")
@click.option("--project")
@click.option("--body", "body_file", type=click.File(), help="A whole JSON request body.")
def request_create(
    url: str,
    token: str,
    as_json: bool,
    resources: tuple[str, ...],
    flavor: str | None,
    required: tuple[str, ...],
    forbidden: tuple[str, ...],
    member_of: tuple[str, ...],
    provider_type: str | None,
    attributes: tuple[str, ...],
    span: str,
    count: int,
    group_policy: str,
    server_group: str | None,
    policy: str | None,
    strategy: str,
    partial: bool,
    project: str | None,
    body_file: Any,
) -> None:
    """Create a request; the server schedules it and returns its claims."""
    if body_file is not None:
        try:
            body = json.load(body_file)
        except ValueError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--body") from None
    else:
        body = {
            "count": count,
            "group_policy": group_policy,
            "all_or_nothing": not partial,
            "hints": {"strategy": strategy},
        }
        group: dict[str, Any] = {}
        if resources:
            group["resources"] = _pairs(resources, "--resources")
        if required:
            group["required_traits"] = _names(required)
        if forbidden:
            group["forbidden_traits"] = _names(forbidden)
        if member_of:
            group["member_of"] = [_names((m,)) for m in member_of]
        if provider_type:
            group["provider_type"] = provider_type
        if attributes:
            group["attributes"] = [_constraint(a) for a in attributes]
        if span != "provider":
            if flavor:
                raise click.UsageError("--span applies to --resources, not to --flavor")
            group["span"] = span
        if flavor:
            spec = _pairs((flavor,), "--flavor")
            extra = {k: v for k, v in spec.items() if k not in ("vcpus", "memory_mb", "disk_gb")}
            fl = {k: v for k, v in spec.items() if k in ("vcpus", "memory_mb", "disk_gb")}
            body["flavor"] = {**fl, "extra": extra}
            traits = {f"trait:{t}": "required" for t in group.pop("required_traits", [])}
            traits |= {f"trait:{t}": "forbidden" for t in group.pop("forbidden_traits", [])}
            body["flavor"]["extra"].update(traits)
        if group:
            if "resources" not in group:
                raise click.UsageError("traits, attributes and aggregates need --resources")
            body["groups"] = [group]
        if not flavor and not group:
            raise click.UsageError("give --resources, --flavor or --body")
        if server_group:
            body["hints"]["group"] = server_group
        if policy:
            body["hints"]["group_policy"] = policy
        if project:
            body["project_id"] = project
    with _api(url, token, as_json) as api:
        _emit(api, api.call("POST", "/requests", json=body), _render_request)


_OPS = ("==", "!=", "<=", ">=", "<", ">", " in ")


def _constraint(text: str) -> dict[str, Any]:
    for op in _OPS:
        name, sep, raw = text.partition(op)
        if sep and name.strip():
            if op == " in ":
                return {
                    "name": name.strip(),
                    "op": "in",
                    "value": [_scalar(v.strip()) for v in raw.split(",")],
                }
            return {"name": name.strip(), "op": op, "value": _scalar(raw.strip())}
    raise click.BadParameter(
        f"{text!r}: use NAME OP VALUE, e.g. ram_gb>=256", param_hint="--attribute"
    )


@request.command("show")
@_common
@click.argument("uuid")
def request_show(url: str, token: str, as_json: bool, uuid: str) -> None:
    """Show a request with its claims."""
    with _api(url, token, as_json) as api:
        _emit(api, api.call("GET", f"/requests/{uuid}"), _render_request)


@request.command("list")
@_common
@click.option("--status")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
def request_list(url: str, token: str, as_json: bool, status: str | None, limit: int) -> None:
    """List requests."""
    params: dict[str, Any] = {"limit": limit}
    if status:
        params["status"] = status

    def render(data: dict[str, Any]) -> None:
        rows = [
            [r["uuid"], r["status"], r["count"], r["project_id"], len(r["claims"])]
            for r in data["requests"]
        ]
        _table("requests", ["uuid", "status", "count", "project", "claims"], rows)

    with _api(url, token, as_json) as api:
        _emit(api, api.call("GET", "/requests", params=params), render)


# -- claims ------------------------------------------------------------------
def _render_claim(c: dict[str, Any]) -> None:
    rows = [
        [k, c[k]]
        for k in (
            "uuid",
            "status",
            "provider_uuid",
            "consumer_uuid",
            "request_uuid",
            "project_id",
            "expires_at",
        )
    ]
    rows.append(["amounts", ", ".join(f"{rc}={n}" for rc, n in c["amounts"].items())])
    _table(f"claim {c['uuid']}", ["field", "value"], rows)


@click.group()
def claim() -> None:
    """Claims: show, confirm (into an allocation), release."""


@claim.command("show")
@_common
@click.argument("uuid")
def claim_show(url: str, token: str, as_json: bool, uuid: str) -> None:
    """Show a claim."""
    with _api(url, token, as_json) as api:
        _emit(api, api.call("GET", f"/claims/{uuid}"), _render_claim)


@claim.command("confirm")
@_common
@click.argument("uuid")
def claim_confirm(url: str, token: str, as_json: bool, uuid: str) -> None:
    """Confirm a claim: it becomes an allocation that never expires."""
    with _api(url, token, as_json) as api:
        _emit(api, api.call("POST", f"/claims/{uuid}/confirm"), _render_claim)


@claim.command("release")
@_common
@click.argument("uuid")
def claim_release(url: str, token: str, as_json: bool, uuid: str) -> None:
    """Release a claim or allocation."""
    with _api(url, token, as_json) as api:
        api.call("DELETE", f"/claims/{uuid}")
        _emit(api, {"released": uuid}, lambda d: click.echo(f"released claim {d['released']}"))
