"""``claimant resource-class|trait|resource-type|aggregate ...``: the names
requests and providers use, and aggregate membership."""

from __future__ import annotations

import urllib.parse
import uuid as uuid_mod
from typing import Any

import click

from claimant.cli import parse
from claimant.cli.client import Api, with_api
from claimant.cli.errors import CliError
from claimant.cli.output import Out
from claimant.cli.providers import class_order, render_providers


def _q(name: str) -> str:
    return urllib.parse.quote(name, safe="")


# -- resource classes ----------------------------------------------------------
@click.group("resource-class")
def resource_class() -> None:
    """Resource classes: standard ones and CUSTOM_* (create / delete: admin)."""


@resource_class.command("list")
@with_api
@click.option("--custom", is_flag=True, help="Only CUSTOM_* classes.")
def resource_class_list(api: Api, custom: bool) -> None:
    """List resource classes."""
    data = api.call("GET", "/resource_classes")
    if custom:
        data["resource_classes"] = [c for c in data["resource_classes"] if not c["standard"]]
    rows = [
        [
            c["name"],
            "discrete" if c["discrete"] else "divisible",
            "standard" if c["standard"] else "custom",
        ]
        for c in data["resource_classes"]
    ]
    api.out.emit(data, lambda _: api.out.table(["NAME", "KIND", "ORIGIN"], rows))


@resource_class.command("show")
@with_api
@click.argument("name")
def resource_class_show(api: Api, name: str) -> None:
    """Show a resource class."""
    c = api.call("GET", f"/resource_classes/{_q(name)}")
    api.out.emit(
        c,
        lambda d: api.out.fields(
            f"resource class {d['name']}",
            [("kind", "discrete" if d["discrete"] else "divisible"),
             ("origin", "standard" if d["standard"] else "custom")],
        ),
    )  # fmt: skip


@resource_class.command("create")
@with_api
@click.argument("name")
@click.option("--discrete", is_flag=True, help="Whole units only (a machine, a GPU).")
def resource_class_create(api: Api, name: str, discrete: bool) -> None:
    """Create a CUSTOM_* resource class."""
    c = api.call("POST", "/resource_classes", json={"name": name, "discrete": discrete})
    api.out.emit(c, lambda d: api.out.line(f"created resource class {d['name']}"))


@resource_class.command("delete")
@with_api
@click.argument("name")
def resource_class_delete(api: Api, name: str) -> None:
    """Delete a CUSTOM_* resource class no inventory uses."""
    api.call("DELETE", f"/resource_classes/{_q(name)}")
    api.out.emit({"deleted": name}, lambda _: api.out.line(f"deleted resource class {name}"))


# -- traits ------------------------------------------------------------------------
@click.group()
def trait() -> None:
    """Traits: standard (os-traits) and CUSTOM_* (create / delete: admin)."""


@trait.command("list")
@with_api
@click.option("--prefix", help="Only names starting with this (e.g. HW_CPU_).")
@click.option("--custom", is_flag=True, help="Only CUSTOM_* traits.")
def trait_list(api: Api, prefix: str | None, custom: bool) -> None:
    """List traits."""
    params = {"prefix": "CUSTOM_" if custom else prefix} if custom or prefix else None
    data = api.call("GET", "/traits", params=params)
    api.out.emit(data, lambda d: api.out.table(["NAME"], [[n] for n in d["traits"]]))


@trait.command("show")
@with_api
@click.argument("name")
def trait_show(api: Api, name: str) -> None:
    """Show whether a trait exists."""
    t = api.call("GET", f"/traits/{_q(name)}")
    api.out.emit(t, lambda d: api.out.line(f"trait {d['name']}"))


@trait.command("create")
@with_api
@click.argument("names", nargs=-1, required=True)
def trait_create(api: Api, names: tuple[str, ...]) -> None:
    """Create CUSTOM_* traits (one that exists is left as it is)."""
    done = parse.names(names)
    for name in done:
        api.call("PUT", f"/traits/{_q(name)}")
    api.out.emit({"traits": done}, lambda d: api.out.line("created trait " + " ".join(d["traits"])))


@trait.command("delete")
@with_api
@click.argument("name")
def trait_delete(api: Api, name: str) -> None:
    """Delete a CUSTOM_* trait no provider has."""
    api.call("DELETE", f"/traits/{_q(name)}")
    api.out.emit({"deleted": name}, lambda _: api.out.line(f"deleted trait {name}"))


# -- resource types ----------------------------------------------------------------
def _render_type(out: Out, t: dict[str, Any]) -> None:
    out.fields(
        f"resource type {t['name']}",
        [("origin", "built-in" if t["builtin"] else "custom"), ("description", t["description"])],
    )
    rows = [
        [a["name"], a["kind"], "yes" if a["required"] else "no", a["description"]]
        for a in t["attributes"]
    ]
    if rows:
        out.table(["ATTRIBUTE", "KIND", "REQUIRED", "DESCRIPTION"], rows)


@click.group("resource-type")
def resource_type() -> None:
    """Resource types: what kinds of provider exist and their typed attributes."""


@resource_type.command("list")
@with_api
def resource_type_list(api: Api) -> None:
    """List resource types."""
    data = api.call("GET", "/resource_types")
    rows = [
        [t["name"], "built-in" if t["builtin"] else "custom",
         ", ".join(a["name"] for a in t["attributes"])]
        for t in data["resource_types"]
    ]  # fmt: skip
    api.out.emit(data, lambda _: api.out.table(["NAME", "ORIGIN", "ATTRIBUTES"], rows))


@resource_type.command("show")
@with_api
@click.argument("name")
def resource_type_show(api: Api, name: str) -> None:
    """Show a resource type and its attributes."""
    t = api.call("GET", f"/resource_types/{_q(name)}")
    api.out.emit(t, lambda d: _render_type(api.out, d))


@resource_type.command("create")
@with_api
@click.argument("name")
@click.option("--description", default="")
@click.option(
    "--attribute",
    "attributes",
    multiple=True,
    metavar="NAME:KIND[:required]",
    help="KIND: string, integer, number or boolean (repeatable).",
)
def resource_type_create(
    api: Api, name: str, description: str, attributes: tuple[str, ...]
) -> None:
    """Create a resource type."""
    specs = []
    for text in attributes:
        parts = [p.strip() for p in text.split(":")]
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "required"):
            raise click.BadParameter(
                f"{text!r}: use NAME:KIND or NAME:KIND:required", param_hint="--attribute"
            )
        specs.append({"name": parts[0], "kind": parts[1], "required": len(parts) == 3})
    body = {"name": name, "description": description, "attributes": specs}
    t = api.call("POST", "/resource_types", json=body)
    api.out.emit(t, lambda d: _render_type(api.out, d))


@resource_type.command("delete")
@with_api
@click.argument("name")
def resource_type_delete(api: Api, name: str) -> None:
    """Delete a resource type no provider has."""
    api.call("DELETE", f"/resource_types/{_q(name)}")
    api.out.emit({"deleted": name}, lambda _: api.out.line(f"deleted resource type {name}"))


# -- aggregates ------------------------------------------------------------------
@click.group()
def aggregate() -> None:
    """Aggregates: groups of providers, each a uuid (as in Placement) with an
    optional name (create / delete: admin). Names are accepted wherever an
    aggregate is; deleting a name leaves its providers in the uuid."""


def _agg_label(out: Out, a: dict[str, Any]) -> str:
    return a.get("name") or out.uuid(a["uuid"])


def render_aggregates(out: Out, aggregates: list[dict[str, Any]]) -> None:
    rows = []
    for a in aggregates:
        for i, rc in enumerate(class_order(list(a["resource_classes"]))):
            s = a["resource_classes"][rc]
            first = i == 0
            rows.append(
                [_agg_label(out, a) if first else "", a["providers"] if first else "", rc,
                 s["capacity"], s["used"], s["free"], f"{s['used_percent']:.0f}%"]
            )  # fmt: skip
    cols = ["AGGREGATE", "PROVIDERS", "CLASS", "CAPACITY", "USED", "FREE", "USE%"]
    if rows:
        out.table(cols, rows, right=cols[3:])
    else:
        out.line("no aggregates: no provider is in one")


def _render_names(out: Out, names: list[dict[str, Any]]) -> None:
    rows = [[a["name"], out.uuid(a["uuid"]), a["providers"]] for a in names]
    out.table(["NAME", "UUID", "PROVIDERS"], rows, title="named aggregates", right=["PROVIDERS"])


@aggregate.command("list")
@with_api
def aggregate_list(api: Api) -> None:
    """List aggregates with their providers' capacity and use, and the names
    (named aggregates without providers included)."""
    data = {
        "aggregates": api.call("GET", "/capacity")["aggregates"],
        "names": api.call("GET", "/aggregates")["aggregates"],
    }

    def render(d: dict[str, Any]) -> None:
        render_aggregates(api.out, d["aggregates"])
        if d["names"]:
            _render_names(api.out, d["names"])

    api.out.emit(data, render)


def _uuid_of(api: Api, ref: str) -> tuple[str, str | None]:
    """(uuid, name) of an aggregate given by name or uuid."""
    try:
        return str(uuid_mod.UUID(ref)), None
    except ValueError:
        pass
    try:
        a = api.call("GET", f"/aggregates/{_q(ref)}")
    except CliError as exc:
        if exc.code == "not_found":
            api.fail(
                "not_found",
                f"no aggregate named {ref!r}",
                fix=f"create it with `claimant aggregate create {ref}`",
            )
        raise
    return a["uuid"], a["name"]


@aggregate.command("show")
@with_api
@click.argument("ref", metavar="NAME_OR_UUID")
def aggregate_show(api: Api, ref: str) -> None:
    """Show an aggregate's providers with health and usage."""
    uuid, name = _uuid_of(api, ref)
    if name is None:
        try:
            name = api.call("GET", f"/aggregates/{uuid}")["name"]
        except CliError as exc:
            if exc.code != "not_found":
                raise
    found = api.call("GET", "/providers", params={"member_of": uuid, "include": "usage"})
    if not found["providers"] and name is None:
        api.fail(
            "not_found",
            f"no provider is in aggregate {uuid}",
            fix="`claimant aggregate list` shows the aggregates",
        )

    def render(d: dict[str, Any]) -> None:
        label = f"{name} ({uuid})" if name else uuid
        api.out.line(f"aggregate {label}: {len(d['providers'])} provider(s)")
        if d["providers"]:
            render_providers(api.out, d["providers"])

    api.out.emit({"uuid": uuid, "name": name, **found}, render)


@aggregate.command("create")
@with_api
@click.argument("name")
@click.option("--uuid", "uuid", help="Name this existing aggregate uuid (default: a new one).")
def aggregate_create(api: Api, name: str, uuid: str | None) -> None:
    """Name an aggregate."""
    body = {"name": name, **({"uuid": uuid} if uuid else {})}
    a = api.call("POST", "/aggregates", json=body)
    api.out.emit(a, lambda d: api.out.line(f"created aggregate {d['name']} ({d['uuid']})"))


@aggregate.command("delete")
@with_api
@click.argument("ref", metavar="NAME_OR_UUID")
def aggregate_delete(api: Api, ref: str) -> None:
    """Delete an aggregate's name; its providers stay in the (now unnamed) uuid."""
    a = api.call("GET", f"/aggregates/{_q(ref)}")
    api.call("DELETE", f"/aggregates/{_q(a['uuid'])}")
    api.out.emit(
        {"deleted": a["name"], "uuid": a["uuid"], "providers": a["providers"]},
        lambda d: api.out.line(
            f"deleted name {d['deleted']}: {d['providers']} provider(s) stay in"
            f" {api.out.uuid(d['uuid'])}"
        ),
    )


def _change_membership(api: Api, uuid: str, refs: tuple[str, ...], add: bool) -> list[str]:
    changed = []
    for ref in refs:
        for attempt in range(5):
            p = api.provider(ref)
            aggs = set(p["aggregates"])
            new = aggs | {uuid} if add else aggs - {uuid}
            if new == aggs:
                break
            body = {"generation": p["generation"], "aggregates": sorted(new)}
            try:
                api.call("PUT", f"/providers/{p['uuid']}/aggregates", json=body)
            except CliError as exc:
                # membership is a set: re-reading and applying it again is safe
                if exc.code == "generation_conflict" and attempt < 4:
                    continue
                raise
            changed.append(p["name"])
            break
    return changed


@aggregate.command("add")
@with_api
@click.argument("ref", metavar="NAME_OR_UUID")
@click.argument("providers", nargs=-1, required=True)
def aggregate_add(api: Api, ref: str, providers: tuple[str, ...]) -> None:
    """Put providers (names or uuids) into an aggregate (a name or a uuid)."""
    uuid, _ = _uuid_of(api, ref)
    changed = _change_membership(api, uuid, providers, add=True)
    api.out.emit(
        {"aggregate": uuid, "added": changed},
        lambda d: api.out.line(f"aggregate {ref}: added {' '.join(changed) or 'nothing new'}"),
    )


@aggregate.command("remove")
@with_api
@click.argument("ref", metavar="NAME_OR_UUID")
@click.argument("providers", nargs=-1, required=True)
def aggregate_remove(api: Api, ref: str, providers: tuple[str, ...]) -> None:
    """Take providers (names or uuids) out of an aggregate (a name or a uuid)."""
    uuid, _ = _uuid_of(api, ref)
    changed = _change_membership(api, uuid, providers, add=False)
    api.out.emit(
        {"aggregate": uuid, "removed": changed},
        lambda d: api.out.line(f"aggregate {ref}: removed {' '.join(changed) or 'nothing'}"),
    )
