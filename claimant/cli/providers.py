"""``claimant provider ...`` and ``claimant inventory ...``: list with usage
and health, describe, create, change, disable / enable / drain, delete."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from claimant.cli import explain as _explain
from claimant.cli import parse
from claimant.cli.client import Api, with_api
from claimant.cli.errors import CliError
from claimant.cli.output import Out, ago, amounts, number

# Class columns a table shows before the rest go to OTHER (80 columns).
TABLE_CLASSES = 3
_ORDER = {"VCPU": 0, "MEMORY_MB": 1, "DISK_GB": 2}


def class_order(names: set[str] | list[str]) -> list[str]:
    return sorted(names, key=lambda rc: (_ORDER.get(rc, 9), rc))


def used_free(u: dict[str, Any], exact: bool = False) -> str:
    return f"{number(u['used'], exact)}/{number(u['free'], exact)}"


def render_providers(out: Out, providers: list[dict[str, Any]]) -> None:
    """One table per set of resource classes (compute nodes, bare metal,
    shared pools ...), so each has a column of used/free per class and a
    row fits 80 columns; more than TABLE_CLASSES classes go to OTHER."""
    if not providers:
        out.line("no providers")
        return
    sections: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for p in providers:
        key = tuple(class_order(list(p.get("usages", p["inventories"]))))
        sections.setdefault(key, []).append(p)
    out.line("USED/FREE per resource class" + ("" if out.wide else " (-o wide: full uuids)"))
    # A CELL column only when there is more than one (docs/cells.md); it
    # takes a class column's place to keep 80 columns.
    cells = len({p.get("cell") for p in providers}) > 1
    for i, (classes, members) in enumerate(sections.items()):
        if i:
            out.line("")
        limit = len(classes) if out.wide else TABLE_CLASSES - cells
        shown, others = list(classes[:limit]), list(classes[limit:])
        columns = ["NAME", "UUID", *(["CELL"] if cells else []), "HEALTH", "ENABLED", *shown]
        if others:
            columns.append("OTHER")
        rows = []
        for p in members:
            usages = p.get("usages", {})
            row = [p["name"], out.uuid(p["uuid"])]
            row += [p.get("cell") or "-"] if cells else []
            row += [p.get("health", ""), _yes(p["enabled"])]
            row += [used_free(usages[rc], out.wide) if rc in usages else "" for rc in shown]
            if others:
                row.append(
                    " ".join(f"{rc}={used_free(usages[rc])}" for rc in others if rc in usages)
                )
            rows.append(row)
        out.table(columns, rows, right=shown)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


@click.group()
def provider() -> None:
    """Providers: list, show, create, change, disable / enable / drain, delete."""


@provider.command("list")
@with_api
@click.option("--name")
@click.option("--in-tree", help="Providers of the tree of this provider (name or uuid).")
@click.option("--resources", multiple=True, help="VCPU=2,MEMORY_MB=512: has this much free.")
@click.option("--required", multiple=True, help="Traits: A,!B or in:C,D (repeatable).")
@click.option("--member-of", multiple=True, help="Aggregates: U1 or in:U1,U2 (repeatable).")
@click.option("--type", "type_")
def provider_list(
    api: Api,
    name: str | None,
    in_tree: str | None,
    resources: tuple[str, ...],
    required: tuple[str, ...],
    member_of: tuple[str, ...],
    type_: str | None,
) -> None:
    """List providers with health, enabled, and used/free per class."""
    params: dict[str, Any] = {
        "include": "usage",
        "name": name,
        "in_tree": in_tree,
        "resources": ",".join(f"{rc}:{n}" for rc, n in parse.resources(resources).items()),
        "type": type_,
        "required": list(required),
        "member_of": list(member_of),
    }
    params = {k: v for k, v in params.items() if v}
    data = api.call("GET", "/providers", params=params)
    api.out.emit(data, lambda d: render_providers(api.out, d["providers"]))


def render_provider(out: Out, p: dict[str, Any], names: dict[str, str]) -> None:
    """``provider show``: a describe, kubectl style."""
    now = time.time()
    health = p.get("health", "")
    if p.get("heartbeat_at"):
        health += f" (heartbeat {ago(p['heartbeat_at'], now)})"
    parent = p.get("parent_uuid")
    out.fields(
        f"provider {p['name']}",
        [
            ("uuid", p["uuid"]),
            ("type", p["type"]),
            ("cell", p.get("cell") or "- (no home: global SERIAL)"),
            ("health", health),
            ("enabled", _yes(p["enabled"])),
            ("parent", f"{names.get(parent, '?')} ({out.uuid(parent)})" if parent else None),
            (
                "root",
                f"{names.get(p['root_uuid'], '?')} ({out.uuid(p['root_uuid'])})"
                if p["root_uuid"] != p["uuid"]
                else None,
            ),
            ("generation", p["generation"]),
            ("traits", " ".join(p["traits"]) or "-"),
            ("aggregates", " ".join(p["aggregates"]) or "-"),
            ("attributes", amounts(p["attributes"]) or "-"),
            ("created", ago(p.get("created_at"), now)),
            ("updated", ago(p.get("updated_at"), now)),
        ],
    )
    render_usage(out, p)


def render_usage(out: Out, p: dict[str, Any]) -> None:
    usages = p.get("usages", {})
    rows = []
    for rc in class_order(list(p["inventories"])):
        inv = p["inventories"][rc]
        u = usages.get(rc, {"used": 0, "free": inv["capacity"]})
        pct = f"{100 * u['used'] / inv['capacity']:.0f}%" if inv["capacity"] else "-"
        rows.append(
            [rc, inv["capacity"], u["used"], u["free"], pct, inv["total"], inv["reserved"],
             inv["allocation_ratio"]]
        )  # fmt: skip
    cols = ["CLASS", "CAPACITY", "USED", "FREE", "USE%", "TOTAL", "RESERVED", "RATIO"]
    out.heading("usage")
    if rows:
        out.table(cols, rows, right=cols[1:])
    else:
        out.line("  no inventory")


def render_claims(
    out: Out, claims: list[dict[str, Any]], names: dict[str, str], *, project: bool = True
) -> None:
    """Claims with their provider's name; ``project``: a PROJECT column."""
    now = time.time()
    rows = []
    for c in claims:
        row = [
            out.uuid(c["uuid"]),
            out.uuid(c["consumer_uuid"]),
            names.get(c["provider_uuid"], out.uuid(c["provider_uuid"])),
            c["status"],
        ]
        if project:
            row.append(c.get("project_id", ""))
        ordered = {rc: c["amounts"][rc] for rc in class_order(list(c["amounts"]))}
        row += [
            amounts(ordered),
            ago(c["expires_at"], now) if c.get("expires_at") else "never",
        ]
        rows.append(row)
    cols = ["CLAIM", "CONSUMER", "PROVIDER", "STATUS"]
    out.table([*cols, *(["PROJECT"] if project else []), "AMOUNTS", "EXPIRES"], rows)


@provider.command("show")
@with_api
@click.argument("ref")
def provider_show(api: Api, ref: str) -> None:
    """Describe a provider (by name or uuid): health, usage, claims, recent events."""
    p = api.provider(ref, usage=True)
    claims = api.call("GET", f"/providers/{p['uuid']}/claims")["claims"]
    recent = api.call(
        "GET", f"/providers/{p['uuid']}/events", params={"limit": _explain.RECENT_EVENTS}
    )["events"]
    names = {p["uuid"]: p["name"]}
    if p["parent_uuid"]:
        names = api.provider_names()

    def render(_: Any) -> None:
        render_provider(api.out, p, names)
        api.out.heading(f"claims and allocations ({len(claims)})")
        if claims:
            render_claims(api.out, claims, names)
        api.out.heading(f"recent events (newest {_explain.RECENT_EVENTS}; all: provider events)")
        _explain.render_events(api.out, recent, names)

    api.out.emit({**p, "claims": claims, "recent_events": recent}, render)


@provider.command("create")
@with_api
@click.argument("name")
@click.option("--uuid", "uuid_")
@click.option("--type", "type_", default="compute", show_default=True)
@click.option("--parent", help="Parent provider (name or uuid).")
@click.option("--inventory", multiple=True, help="VCPU=16,MEMORY_MB=65536 (totals).")
@click.option("--trait", multiple=True, help="Trait names (repeatable or comma-separated).")
@click.option("--aggregate", multiple=True, help="Aggregate names or uuids.")
@click.option("--attribute", multiple=True, help="key=value (JSON scalars or strings).")
@click.option("--disabled", is_flag=True, help="Create it disabled (not scheduled onto).")
@click.option("--cell", help="Home cell (data centre); default: the service's own.")
def provider_create(
    api: Api,
    name: str,
    uuid_: str | None,
    type_: str,
    parent: str | None,
    inventory: tuple[str, ...],
    trait: tuple[str, ...],
    aggregate: tuple[str, ...],
    attribute: tuple[str, ...],
    disabled: bool,
    cell: str | None,
) -> None:
    """Create a provider."""
    body: dict[str, Any] = {
        "name": name,
        "type": type_,
        "inventories": {
            rc: {"total": n} for rc, n in parse.resources(inventory, "--inventory").items()
        },
        "traits": parse.names(trait),
        "aggregates": parse.names(aggregate),
        "attributes": parse.pairs(attribute, "--attribute", parse.scalar),
        "enabled": not disabled,
    }
    if cell:
        body["cell"] = cell
    if uuid_:
        body["uuid"] = uuid_
    if parent:
        body["parent_uuid"] = api.provider_uuid(parent)
    p = api.call("POST", "/providers", json=body)
    api.out.emit(p, lambda d: api.out.line(f"created provider {d['name']} {d['uuid']}"))


@provider.command("delete")
@with_api
@click.argument("ref")
def provider_delete(api: Api, ref: str) -> None:
    """Delete a provider (admin)."""
    uuid = api.provider_uuid(ref)
    api.call("DELETE", f"/providers/{uuid}")
    api.out.emit({"deleted": uuid}, lambda d: api.out.line(f"deleted provider {ref} {uuid}"))


def _generation(api: Api, uuid: str, given: int | None) -> int:
    if given is not None:
        return given
    return int(api.call("GET", f"/providers/{uuid}")["generation"])


def set_enabled(api: Api, ref: str, enabled: bool) -> dict[str, Any]:
    """Set ``enabled`` at the current generation. A flag is safe to set again
    on a newer generation, so a lost compare-and-set is retried (bounded)."""
    uuid = api.provider_uuid(ref)
    for attempt in range(5):
        generation = _generation(api, uuid, None)
        try:
            p: dict[str, Any] = api.call(
                "PUT", f"/providers/{uuid}", json={"generation": generation, "enabled": enabled}
            )
            return p
        except CliError as exc:
            if exc.code != "generation_conflict" or attempt == 4:
                raise
    raise AssertionError("unreachable")


@provider.command("disable")
@with_api
@click.argument("ref")
def provider_disable(api: Api, ref: str) -> None:
    """Stop scheduling onto a provider (what runs there stays)."""
    p = set_enabled(api, ref, False)
    api.out.emit(p, lambda d: api.out.line(f"provider {d['name']} disabled"))


@provider.command("enable")
@with_api
@click.argument("ref")
def provider_enable(api: Api, ref: str) -> None:
    """Schedule onto a provider again."""
    p = set_enabled(api, ref, True)
    api.out.emit(p, lambda d: api.out.line(f"provider {d['name']} enabled"))


@provider.command("drain")
@with_api
@click.argument("ref")
def provider_drain(api: Api, ref: str) -> None:
    """Disable a provider and show what still runs there (claims and
    allocations to move or release before deleting it)."""
    p = set_enabled(api, ref, False)
    claims = api.call("GET", f"/providers/{p['uuid']}/claims")["claims"]

    def render(_: Any) -> None:
        api.out.line(f"provider {p['name']} disabled: nothing new is scheduled onto it")
        if not claims:
            api.out.line("nothing runs there: it may be deleted")
            return
        api.out.line(f"still there: {len(claims)} claim(s) and allocation(s)")
        render_claims(api.out, claims, {p["uuid"]: p["name"]})

    api.out.emit({"provider": p, "claims": claims}, render)


@provider.command("set-inventory")
@with_api
@click.argument("ref")
@click.argument("totals", nargs=-1, required=True)
@click.option("--reserved", multiple=True, help="CLASS=N")
@click.option("--allocation-ratio", multiple=True, help="CLASS=RATIO")
@click.option("--min-unit", multiple=True, help="CLASS=N")
@click.option("--max-unit", multiple=True, help="CLASS=N")
@click.option("--step-size", multiple=True, help="CLASS=N")
@click.option("--generation", type=int, help="Expected generation (default: the current one).")
def provider_set_inventory(
    api: Api,
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
        rc: {"total": n} for rc, n in parse.resources(totals, "TOTALS").items()
    }
    for field, values, cast in (
        ("reserved", reserved, int),
        ("allocation_ratio", allocation_ratio, float),
        ("min_unit", min_unit, int),
        ("max_unit", max_unit, int),
        ("step_size", step_size, int),
    ):
        for rc, v in parse.pairs(values, "--" + field.replace("_", "-"), cast).items():
            if rc not in inventories:
                raise click.BadParameter(f"{rc} has no total", param_hint=field)
            inventories[rc][field] = v
    uuid = api.provider_uuid(ref)
    body = {"generation": _generation(api, uuid, generation), "inventories": inventories}
    data = api.call("PUT", f"/providers/{uuid}/inventories", json=body)
    api.out.emit(data, lambda d: render_inventories(api.out, d))


@provider.command("set-traits")
@with_api
@click.argument("ref")
@click.argument("traits", nargs=-1)
@click.option("--generation", type=int)
def provider_set_traits(
    api: Api, ref: str, traits: tuple[str, ...], generation: int | None
) -> None:
    """Replace a provider's traits (none given: clear them)."""
    uuid = api.provider_uuid(ref)
    body = {"generation": _generation(api, uuid, generation), "traits": parse.names(traits)}
    data = api.call("PUT", f"/providers/{uuid}/traits", json=body)
    api.out.emit(
        data, lambda d: api.out.line(f"generation {d['generation']}: " + " ".join(d["traits"]))
    )


@provider.command("set-aggregates")
@with_api
@click.argument("ref")
@click.argument("aggregates", nargs=-1)
@click.option("--generation", type=int)
def provider_set_aggregates(
    api: Api, ref: str, aggregates: tuple[str, ...], generation: int | None
) -> None:
    """Replace a provider's aggregates (none given: clear them)."""
    uuid = api.provider_uuid(ref)
    body = {"generation": _generation(api, uuid, generation), "aggregates": parse.names(aggregates)}
    data = api.call("PUT", f"/providers/{uuid}/aggregates", json=body)
    api.out.emit(
        data,
        lambda d: api.out.line(f"generation {d['generation']}: " + " ".join(d["aggregates"])),
    )


@provider.command("set-attributes")
@with_api
@click.argument("ref")
@click.argument("attributes", nargs=-1)
@click.option("--generation", type=int)
def provider_set_attributes(
    api: Api, ref: str, attributes: tuple[str, ...], generation: int | None
) -> None:
    """Replace a provider's attributes: key=value ... (none given: clear them)."""
    uuid = api.provider_uuid(ref)
    body = {
        "generation": _generation(api, uuid, generation),
        "attributes": parse.pairs(attributes, "ATTRIBUTES", parse.scalar),
    }
    data = api.call("PUT", f"/providers/{uuid}", json=body)
    api.out.emit(
        data,
        lambda d: api.out.line(
            f"generation {d['generation']}: " + json.dumps(d["attributes"], sort_keys=True)
        ),
    )


def render_inventories(out: Out, data: dict[str, Any]) -> None:
    rows = [
        [rc, i["total"], i["reserved"], i["allocation_ratio"], i["capacity"], i["min_unit"],
         i["max_unit"], i["step_size"]]
        for rc, i in data["inventories"].items()
    ]  # fmt: skip
    cols = ["CLASS", "TOTAL", "RESERVED", "RATIO", "CAPACITY", "MIN", "MAX", "STEP"]
    out.table(cols, rows, right=cols[1:])


@click.group()
def inventory() -> None:
    """Inventories of a provider."""


@inventory.command("list")
@with_api
@click.argument("ref")
def inventory_list(api: Api, ref: str) -> None:
    """List a provider's inventories with what is used and free."""
    p = api.provider(ref, usage=True)
    data = {"provider_uuid": p["uuid"], "generation": p["generation"], **p}
    api.out.emit(
        {k: data[k] for k in ("provider_uuid", "generation", "inventories", "usages")},
        lambda _: render_usage(api.out, p),
    )


provider.add_command(_explain.provider_events, "events")
