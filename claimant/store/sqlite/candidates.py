"""Candidate reads on the SQLite store: the providers that fit one request
group (``find_candidates``), the trees that may host a request of several
groups (``candidate_trees``), and one provider's usage."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import orjson

from claimant.model import InvalidInput, NotFound, ProviderUsage, Strategy
from claimant.store.base import CandidateQuery, TreePage, TreeQuery
from claimant.store.sqlite import conditions, reads
from claimant.store.sqlite.catalog import get_type
from claimant.store.sqlite.connection import SQLiteBase, translating

# Placement's trait for a provider whose inventory every tree in one of its
# aggregates may use.
SHARING_TRAIT = "MISC_SHARES_VIA_AGGREGATE"


class CandidatesMixin(SQLiteBase):
    def find_candidates(self, query: CandidateQuery) -> list[ProviderUsage]:
        group = query.group
        if not group.resources:
            raise InvalidInput("a candidate query needs at least one resource amount")
        now = self.clock()
        order_rc = query.order_class()
        if order_rc not in group.resources:
            raise InvalidInput(f"sort class {order_rc} is not requested by the group")
        found = self._candidate_where(query, order_rc)
        if found is None:
            return []
        where, params = found
        self._sweep_if_due(now)
        # No read transaction: the answer is ONE statement, so it sees one
        # state anyway (the counts before it only choose the plan), and
        # BEGIN and COMMIT would be two more GIL releases.
        conn = self._conn()
        with translating():
            sql, args = _candidate_sql(conn, query, where, params)
            # The candidates and everything loaded about them come back as ONE
            # row: the sqlite3 module releases the GIL on every row it steps,
            # and with many scheduler threads each release is a thread switch.
            (packed,) = conn.execute(
                f"SELECT json_group_array(json_array(c.free, {reads.PROVIDER_JSON}))"
                f" FROM ({sql}) c CROSS JOIN providers p ON p.id = c.id"
                " LEFT JOIN providers par ON par.id = p.parent_id"
                " JOIN providers root ON root.id = p.root_id",
                args,
            ).fetchone()
        rows = orjson.loads(packed)
        # An aggregate's input order is not promised: sort as ORDER BY did.
        rows.sort(key=lambda r: (r[0], r[1][0]), reverse=query.strategy == Strategy.SPREAD)
        return [reads.make_provider_usage(*reads.provider_row(r[1])) for r in rows]

    def _candidate_where(
        self, query: CandidateQuery, order_rc: str
    ) -> tuple[str, list[Any]] | None:
        """The WHERE clause of a candidate query (``o``: the sort class's
        inventory row, ``p``: the provider) and its parameters; None when the
        query restricts to no tree at all."""
        group = query.group
        amount = group.resources[order_rc]
        others = {rc: n for rc, n in group.resources.items() if rc != order_rc}
        where = (
            " WHERE o.rc = ? AND o.free >= ? AND o.min_unit <= ? AND o.max_unit >= ?"
            " AND (? % o.step_size) = 0"
        )
        if not query.include_disabled:
            where += " AND p.enabled = 1"
        params: list[Any] = [order_rc, amount, amount, amount, amount]
        rw, rp = conditions.resource_exists(others)
        for cond in rw:
            where += " AND " + cond
        params += rp
        if query.heartbeat_after is not None:
            where += " AND (p.heartbeat_at IS NULL OR p.heartbeat_at > ?)"
            params.append(query.heartbeat_after)
        if query.exclude:
            ex = sorted(query.exclude)
            where += f" AND p.uuid NOT IN ({','.join('?' * len(ex))})"
            params += ex
        if query.roots is not None:
            roots = sorted(query.roots)
            if not roots:
                return None
            where += (
                " AND p.root_id IN (SELECT id FROM providers WHERE uuid IN"
                f" ({','.join('?' * len(roots))}))"
            )
            params += roots
        with translating():
            rtype = get_type(self._conn(), group.provider_type) if group.provider_type else None
        gw, gp = conditions.group_conditions(group, rtype)
        for cond in gw:
            where += " AND " + cond
        params += gp
        return where, params

    def get_usage(self, uuid: str) -> ProviderUsage:
        self._sweep_if_due(self.clock())
        # One statement (a scheduler's re-read after a lost compare-and-set).
        with translating():
            (packed,) = (
                self._conn()
                .execute(
                    f"SELECT json_group_array({reads.PROVIDER_JSON}){reads.PROVIDER_FROM}"
                    " WHERE p.uuid = ?",
                    (uuid,),
                )
                .fetchone()
            )
        rows = orjson.loads(packed)
        if not rows:
            raise NotFound(f"provider {uuid} not found", kind="provider", uuid=uuid)
        return reads.make_provider_usage(*reads.provider_row(rows[0]))

    def has_sharing_providers(self) -> bool:
        row = self._one("SELECT 1 FROM provider_traits WHERE trait = ? LIMIT 1", (SHARING_TRAIT,))
        return row is not None

    def candidate_trees(self, query: TreeQuery) -> TreePage:
        needs = sorted(query.needs.items())
        if not needs:
            return TreePage([], [], None)
        self._sweep_if_due(self.clock())
        with self._read() as conn:
            useful, anchored = _sharing_with_room(conn, needs)
            sql, params = _roots_sql(conn, needs, anchored, query.after)
            params.append(int(query.max_roots) + 1)
            rows = conn.execute(sql, params).fetchall()
            more = len(rows) > query.max_roots
            rows = rows[: query.max_roots]
            ids = _tree_members(conn, [r[0] for r in rows], useful)
            return TreePage(
                [r[1] for r in rows],
                reads.usages(conn, ids),
                rows[-1][1] if more and rows else None,
            )


def _sharing_with_room(
    conn: sqlite3.Connection, needs: list[tuple[str, int]]
) -> tuple[set[int], list[list[int]]]:
    """Per class of ``needs``: sharing providers with room for it (all of
    them, as one set), and the roots of every tree that shares an aggregate
    with one of them (a list per class)."""
    sharing = [
        r[0]
        for r in conn.execute(
            "SELECT provider_id FROM provider_traits WHERE trait = ?", (SHARING_TRAIT,)
        )
    ]
    useful: set[int] = set()
    anchored: list[list[int]] = []
    for rc, amount in needs:
        ids: list[int] = []
        for chunk in reads.chunks(sharing):
            marks = ",".join("?" * len(chunk))
            ids += [
                r[0]
                for r in conn.execute(
                    "SELECT provider_id FROM inventories WHERE rc = ? AND free >= ?"
                    f" AND provider_id IN ({marks})",
                    [rc, amount, *chunk],
                )
            ]
        useful.update(ids)
        anchored.append(_anchor_roots(conn, ids))
    return useful, anchored


def _roots_sql(
    conn: sqlite3.Connection,
    needs: list[tuple[str, int]],
    anchored: list[list[int]],
    after: str | None,
) -> tuple[str, list[Any]]:
    """The SELECT of (id, uuid) of the roots that may host ``needs``, in uuid
    order after ``after``, without its LIMIT's value (the caller appends it)."""
    # The class fewest providers have room for drives the scan.
    counts = [
        conn.execute(
            "SELECT COUNT(*) FROM inventories WHERE rc = ? AND free >= ?", (rc, amount)
        ).fetchone()[0]
        + len(anchored[n])
        for n, (rc, amount) in enumerate(needs)
    ]
    d = counts.index(min(counts))
    params: list[Any] = [needs[d][0], needs[d][1], json.dumps(anchored[d])]
    sql = (
        "SELECT r.id, r.uuid FROM providers r WHERE r.id IN ("
        " SELECT p.root_id FROM inventories i JOIN providers p ON p.id = i.provider_id"
        " WHERE i.rc = ? AND i.free >= ?"
        " UNION SELECT value FROM json_each(?))"
    )
    for n, (rc, amount) in enumerate(needs):
        if n == d:
            continue
        sql += (
            " AND (EXISTS (SELECT 1 FROM providers c JOIN inventories j"
            " ON j.provider_id = c.id WHERE c.root_id = r.id AND j.rc = ? AND j.free >= ?)"
            " OR r.id IN (SELECT value FROM json_each(?)))"
        )
        params += [rc, amount, json.dumps(anchored[n])]
    if after is not None:
        sql += " AND r.uuid > ?"
        params.append(after)
    sql += " ORDER BY r.uuid LIMIT ?"
    return sql, params


def _tree_members(conn: sqlite3.Connection, root_ids: list[int], useful: set[int]) -> list[int]:
    """Every provider of these trees, then the ``useful`` sharing providers
    that share an aggregate with one of them."""
    members: list[int] = []
    for chunk in reads.chunks(root_ids):
        marks = ",".join("?" * len(chunk))
        members += [
            r[0]
            for r in conn.execute(
                f"SELECT id FROM providers WHERE root_id IN ({marks}) ORDER BY id", chunk
            )
        ]
    linked: set[int] = set()
    if useful and root_ids:
        linked = {
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT a.provider_id FROM provider_aggregates a"
                " JOIN provider_aggregates b ON b.aggregate = a.aggregate"
                " JOIN providers p ON p.id = b.provider_id"
                " WHERE a.provider_id IN (SELECT value FROM json_each(?))"
                " AND p.root_id IN (SELECT value FROM json_each(?))",
                (json.dumps(sorted(useful)), json.dumps(root_ids)),
            )
        }
    return members + sorted(linked - set(members))


def _anchor_roots(conn: sqlite3.Connection, sharing_ids: list[int]) -> list[int]:
    """Roots of the trees that share an aggregate with these providers."""
    if not sharing_ids:
        return []
    return [
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT p.root_id FROM provider_aggregates a"
            " JOIN provider_aggregates b ON b.aggregate = a.aggregate"
            " JOIN providers p ON p.id = b.provider_id"
            " WHERE a.provider_id IN (SELECT value FROM json_each(?))",
            (json.dumps(sharing_ids),),
        )
    ]


def _candidate_sql(
    conn: sqlite3.Connection, query: CandidateQuery, where: str, params: list[Any]
) -> tuple[str, list[Any]]:
    """The ordered, limited SELECT of (free, provider id) of the candidates,
    and its arguments: driven by the sort class's free index, or by the most
    selective narrowing condition when one matches few providers."""
    direction = "DESC" if query.strategy == Strategy.SPREAD else "ASC"
    order = f" ORDER BY o.free {direction}, o.provider_id {direction} LIMIT ?"
    driver = conditions.selective_driver(conn, query)
    if driver is None:
        # The sort class drives the scan: CROSS JOIN pins it as the outer
        # loop so SQLite walks the (rc, free, provider_id) index in order and
        # stops at LIMIT instead of sorting every fit.
        sql = (
            "SELECT o.free AS free, p.id AS id FROM inventories o CROSS JOIN providers p"
            " ON p.id = o.provider_id" + where + order
        )
        return sql, [*params, int(query.limit)]
    # A rare trait, aggregate or one tree: walking the index would visit
    # nearly every provider to find none; start from the few that qualify
    # and sort them instead.
    dsql, dparams = driver
    sql = (
        f"SELECT o.free AS free, p.id AS id FROM ({dsql}) sel CROSS JOIN providers p"
        " ON p.id = sel.id CROSS JOIN inventories o ON o.provider_id = p.id" + where + order
    )
    return sql, [*dparams, *params, int(query.limit)]
