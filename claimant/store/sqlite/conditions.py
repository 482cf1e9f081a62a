"""The SQL conditions of a request group on the SQLite store: resource fit,
traits, aggregates, tree, type and attributes, as WHERE clauses and their
parameters (``p`` is the provider's alias)."""

from __future__ import annotations

import sqlite3
from typing import Any

from claimant.model import AttributeConstraint, InvalidInput, RequestGroup, ResourceType
from claimant.model.types import check_constraint, infer_spec
from claimant.store.base import CandidateQuery

# A trait, aggregate or tree matching at most this many providers drives the
# candidate query instead of the free-capacity index (see find_candidates).
# Measured at 100k providers: a trait on 1% (1,000) of them is still cheaper
# to find by walking the index; one on nobody cost 140 ms that way, 0.1 ms this way.
NARROW_MAX = 500


def resource_joins(resources: dict[str, int]) -> tuple[str, list[Any]]:
    """One inventory join per requested class, each a fit condition."""
    sql = []
    params: list[Any] = []
    for n, (rc, amount) in enumerate(sorted(resources.items())):
        a = f"r{n}"
        sql.append(
            f" JOIN inventories {a} ON {a}.provider_id = p.id AND {a}.rc = ?"
            f" AND {a}.free >= ? AND {a}.min_unit <= ? AND {a}.max_unit >= ?"
            f" AND (? % {a}.step_size) = 0"
        )
        params += [rc, amount, amount, amount, amount]
    return "".join(sql), params


def resource_exists(resources: dict[str, int]) -> tuple[list[str], list[Any]]:
    """One EXISTS per requested class, each a fit condition. Not joins: with
    three classes joined, SQLite 3.40's planner sorts every fitting
    provider (75 ms at 10k) instead of walking the sort class's index
    (0.3 ms); a correlated EXISTS leaves a two-table join it orders right."""
    where = []
    params: list[Any] = []
    for rc, amount in sorted(resources.items()):
        where.append(
            "EXISTS (SELECT 1 FROM inventories r WHERE r.provider_id = p.id AND r.rc = ?"
            " AND r.free >= ? AND r.min_unit <= ? AND r.max_unit >= ?"
            " AND (? % r.step_size) = 0)"
        )
        params += [rc, amount, amount, amount, amount]
    return where, params


def group_conditions(
    group: RequestGroup, rtype: ResourceType | None
) -> tuple[list[str], list[Any]]:
    """``rtype``: the group's provider type, to check its attribute
    constraints against (None: inferred from each constraint's value)."""
    where: list[str] = []
    params: list[Any] = []
    for trait in sorted(group.required_traits):
        where.append(
            "EXISTS (SELECT 1 FROM provider_traits t WHERE t.provider_id = p.id AND t.trait = ?)"
        )
        params.append(trait)
    if group.forbidden_traits:
        names = sorted(group.forbidden_traits)
        where.append(
            "NOT EXISTS (SELECT 1 FROM provider_traits t WHERE t.provider_id = p.id"
            f" AND t.trait IN ({','.join('?' * len(names))}))"
        )
        params += names
    for any_of in group.any_traits:
        names = sorted(any_of)
        where.append(
            "EXISTS (SELECT 1 FROM provider_traits t WHERE t.provider_id = p.id"
            f" AND t.trait IN ({','.join('?' * len(names))}))"
        )
        params += names
    for any_of in group.member_of:
        names = sorted(any_of)
        where.append(
            "EXISTS (SELECT 1 FROM provider_aggregates a WHERE a.provider_id = p.id"
            f" AND a.aggregate IN ({','.join('?' * len(names))}))"
        )
        params += names
    if group.forbidden_aggregates:
        names = sorted(group.forbidden_aggregates)
        where.append(
            "NOT EXISTS (SELECT 1 FROM provider_aggregates a WHERE a.provider_id = p.id"
            f" AND a.aggregate IN ({','.join('?' * len(names))}))"
        )
        params += names
    if group.in_tree:
        where.append("p.root_id = (SELECT root_id FROM providers WHERE uuid = ?)")
        params.append(group.in_tree)
    if group.provider_type:
        where.append("p.type = ?")
        params.append(group.provider_type)
    for c in group.attributes:
        spec = rtype.attributes.get(c.name) if rtype else None
        if rtype is not None and spec is None:
            raise InvalidInput(
                f"resource type {rtype.name} has no attribute {c.name!r}", field=c.name
            )
        checked = check_constraint(spec or infer_spec(c.name, c.value), c)
        sql, p = attribute_condition(checked)
        where.append(sql)
        params += p
    return where, params


def selective_driver(
    conn: sqlite3.Connection, query: CandidateQuery
) -> tuple[str, list[Any]] | None:
    """The most selective narrowing condition of the query, as a sub-select
    of provider ids, if it matches at most NARROW_MAX providers."""
    group = query.group
    options: list[tuple[str, list[Any]]] = [
        ("SELECT provider_id AS id FROM provider_traits WHERE trait = ?", [t])
        for t in sorted(group.required_traits)
    ]
    for any_of in group.member_of:
        names = sorted(any_of)
        options.append(
            (
                "SELECT DISTINCT provider_id AS id FROM provider_aggregates"
                f" WHERE aggregate IN ({','.join('?' * len(names))})",
                names,
            )
        )
    if group.in_tree:
        options.append(
            (
                "SELECT id FROM providers WHERE root_id ="
                " (SELECT root_id FROM providers WHERE uuid = ?)",
                [group.in_tree],
            )
        )
    if query.roots:
        roots = sorted(query.roots)
        options.append(
            (
                "SELECT id FROM providers WHERE root_id IN (SELECT id FROM providers"
                f" WHERE uuid IN ({','.join('?' * len(roots))}))",
                roots,
            )
        )
    best: tuple[int, tuple[str, list[Any]]] | None = None
    for sql, args in options:
        n = conn.execute(f"SELECT COUNT(*) FROM ({sql} LIMIT {NARROW_MAX + 1})", args).fetchone()[0]
        if n <= NARROW_MAX and (best is None or n < best[0]):
            best = (n, (sql, args))
    return None if best is None else best[1]


def attribute_condition(c: AttributeConstraint) -> tuple[str, list[Any]]:
    values = list(c.value) if c.op == "in" else [c.value]
    column = "txt" if isinstance(values[0], str) else "num"
    values = [v if isinstance(v, str) else float(v) for v in values]
    base = "SELECT 1 FROM provider_attributes x WHERE x.provider_id = p.id AND x.name = ?"
    if c.op == "!=":
        # A provider without the attribute is "not equal" too.
        return f"NOT EXISTS ({base} AND x.{column} = ?)", [c.name, values[0]]
    if c.op == "in":
        marks = ",".join("?" * len(values))
        return f"EXISTS ({base} AND x.{column} IN ({marks}))", [c.name, *values]
    op = "=" if c.op == "==" else c.op
    return f"EXISTS ({base} AND x.{column} {op} ?)", [c.name, values[0]]
