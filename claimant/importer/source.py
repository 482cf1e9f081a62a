"""Reading an OpenStack Placement database (its schema as of Placement 16,
``placement/db/sqlalchemy/models.py``) through SQLAlchemy, so any URL
Placement's own ``[placement_database] connection`` takes works:
``mysql+pymysql://``, ``postgresql://``, ``sqlite:///`` (Placement's tests).

Only SELECTs are run; the source is never written."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from claimant.model import Consumer, Inventory, Provider
from claimant.model.names import STANDARD_RESOURCE_CLASSES, STANDARD_TRAITS, is_custom
from claimant.store.base import ImportedConsumer

# Placement's incomplete-consumer placeholders ([placement]
# incomplete_consumer_project_id / _user_id defaults): what its online data
# migration gives allocations that have no consumer record.
INCOMPLETE = "00000000-0000-0000-0000-000000000000"


class SourceError(Exception):
    """The source cannot be read, or holds something claimant cannot take."""


def _epoch(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if isinstance(value, dt.datetime):
        # oslo.db's TimestampMixin stores naive UTC.
        when = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return when.timestamp()
    return float(value)


@dataclass(frozen=True, slots=True)
class Counts:
    providers: int
    inventories: int
    consumers: int
    allocations: int
    resource_classes: int
    traits: int


@dataclass(frozen=True, slots=True)
class _Row:
    id: int
    uuid: str
    name: str
    generation: int
    parent_id: int | None
    created_at: float
    updated_at: float


class PlacementSource:
    def __init__(self, url: str) -> None:
        try:
            import sqlalchemy as sa
        except ModuleNotFoundError as exc:
            raise SourceError(
                "reading a Placement database needs SQLAlchemy (and PyMySQL for MySQL):"
                " pip install 'claimant[placement-import]'"
            ) from exc
        self._sa = sa
        try:
            self.engine = sa.create_engine(url)
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1 FROM resource_providers WHERE 1 = 0"))
        except ModuleNotFoundError as exc:
            raise SourceError(
                f"the database driver {exc.name!r} for this URL is not installed"
                " (pip install 'claimant[placement-import]' brings PyMySQL)"
            ) from None
        except sa.exc.ArgumentError:
            raise SourceError(
                "not a database URL: use mysql+pymysql://user:password@host/placement"
                " or sqlite:///path/to/placement.db"
            ) from None
        except sa.exc.NoSuchModuleError:
            raise SourceError(
                "unknown database URL scheme: use mysql+pymysql:// or sqlite:///"
            ) from None
        except sa.exc.SQLAlchemyError as exc:
            # Only the error's class: the driver's text may quote the password.
            orig = getattr(exc, "orig", None)  # the driver's error, on a DBAPIError
            raise SourceError(
                f"cannot read a Placement schema at {self._safe(url)}"
                f" ({type(orig or exc).__name__}):"
                " is it reachable, and has `placement-manage db sync` run?"
            ) from None
        self._rows: list[_Row] | None = None
        self._classes: dict[int, str] | None = None

    @staticmethod
    def _safe(url: str) -> str:
        from sqlalchemy.engine import make_url

        try:
            return make_url(url).render_as_string(hide_password=True)
        except Exception:
            return "the given URL"

    def close(self) -> None:
        self.engine.dispose()

    def _all(self, sql: str, **params: Any) -> list[Any]:
        sa = self._sa
        stmt = sa.text(sql)
        for name, value in params.items():
            if isinstance(value, list | tuple):
                stmt = stmt.bindparams(sa.bindparam(name, expanding=True))
        try:
            with self.engine.connect() as conn:
                return list(conn.execute(stmt, params))
        except sa.exc.SQLAlchemyError as exc:
            raise SourceError(
                f"reading the Placement database failed ({type(exc).__name__})"
            ) from None

    # -- catalogue ------------------------------------------------------------
    def resource_classes(self) -> dict[int, str]:
        """id -> name. Standard classes have their index in os-resource-classes
        as id; a database never started by Placement >= Stein may not list
        them in its table, so the index fills in."""
        if self._classes is None:
            classes = {i: n for i, n in enumerate(STANDARD_RESOURCE_CLASSES)}
            classes.update({r[0]: r[1] for r in self._all("SELECT id, name FROM resource_classes")})
            self._classes = classes
        return self._classes

    def custom_resource_classes(self) -> list[str]:
        return sorted(n for n in self.resource_classes().values() if is_custom(n))

    def custom_traits(self) -> list[str]:
        return sorted(r[0] for r in self._all("SELECT name FROM traits") if is_custom(r[0]))

    def unknown_names(self) -> list[str]:
        """Standard classes and traits in use in the source that this
        claimant's os-resource-classes / os-traits do not know."""
        classes = self.resource_classes()
        used_classes = {
            classes.get(r[0], f"resource class #{r[0]}")
            for r in self._all(
                "SELECT DISTINCT resource_class_id FROM inventories"
                " UNION SELECT DISTINCT resource_class_id FROM allocations"
            )
        }
        bad = sorted(
            n for n in used_classes if not is_custom(n) and n not in STANDARD_RESOURCE_CLASSES
        )
        used_traits = {
            r[0]
            for r in self._all(
                "SELECT DISTINCT t.name FROM traits t"
                " JOIN resource_provider_traits rpt ON rpt.trait_id = t.id"
            )
        }
        bad += sorted(t for t in used_traits if not is_custom(t) and t not in STANDARD_TRAITS)
        return bad

    def counts(self) -> Counts:
        def n(table: str) -> int:
            return int(self._all(f"SELECT COUNT(*) FROM {table}")[0][0])

        consumers = int(
            self._all(
                "SELECT COUNT(*) FROM (SELECT uuid FROM consumers UNION"
                " SELECT consumer_id FROM allocations) u"
            )[0][0]
        )
        return Counts(
            providers=n("resource_providers"),
            inventories=n("inventories"),
            consumers=consumers,
            allocations=n("allocations"),
            resource_classes=len(self.custom_resource_classes()),
            traits=len(self.custom_traits()),
        )

    # -- providers --------------------------------------------------------------
    def _provider_rows(self) -> list[_Row]:
        if self._rows is None:
            rows = [
                _Row(
                    id=r[0],
                    uuid=r[1],
                    name=r[2],
                    generation=r[3] or 0,
                    parent_id=r[4],
                    created_at=_epoch(r[5]),
                    updated_at=_epoch(r[6]),
                )
                for r in self._all(
                    "SELECT id, uuid, name, generation, parent_provider_id, created_at,"
                    " updated_at FROM resource_providers ORDER BY id"
                )
            ]
            by_id = {r.id: r for r in rows}

            def depth(r: _Row) -> int:
                d, parent = 0, r.parent_id
                while parent is not None:
                    d += 1
                    if d > len(by_id):
                        raise SourceError(f"provider {r.uuid} is in a parent cycle")
                    parent = by_id[parent].parent_id if parent in by_id else None
                return d

            # Parents before children; within a level, Placement's own order.
            self._rows = sorted(rows, key=lambda r: (depth(r), r.id))
            self._by_id = by_id
        return self._rows

    def provider_batches(self, size: int) -> Iterator[list[Provider]]:
        rows = self._provider_rows()
        classes = self.resource_classes()
        for start in range(0, len(rows), size):
            chunk = rows[start : start + size]
            ids = [r.id for r in chunk]
            invs: dict[int, dict[str, Inventory]] = {}
            for r in self._all(
                "SELECT resource_provider_id, resource_class_id, total, reserved, min_unit,"
                " max_unit, step_size, allocation_ratio FROM inventories"
                " WHERE resource_provider_id IN :ids",
                ids=ids,
            ):
                rc = classes.get(r[1])
                if rc is None:
                    raise SourceError(f"inventory of unknown resource class #{r[1]}")
                invs.setdefault(r[0], {})[rc] = Inventory(
                    rc, r[2], r[3], r[4], r[5], r[6], float(r[7])
                )
            traits: dict[int, set[str]] = {}
            for r in self._all(
                "SELECT rpt.resource_provider_id, t.name FROM resource_provider_traits rpt"
                " JOIN traits t ON t.id = rpt.trait_id WHERE rpt.resource_provider_id IN :ids",
                ids=ids,
            ):
                traits.setdefault(r[0], set()).add(r[1])
            aggs: dict[int, set[str]] = {}
            for r in self._all(
                "SELECT rpa.resource_provider_id, pa.uuid FROM resource_provider_aggregates rpa"
                " JOIN placement_aggregates pa ON pa.id = rpa.aggregate_id"
                " WHERE rpa.resource_provider_id IN :ids",
                ids=ids,
            ):
                aggs.setdefault(r[0], set()).add(r[1])
            yield [
                Provider(
                    uuid=r.uuid,
                    name=r.name,
                    parent_uuid=self._by_id[r.parent_id].uuid if r.parent_id else None,
                    generation=r.generation,
                    inventories=invs.get(r.id, {}),
                    traits=frozenset(traits.get(r.id, ())),
                    aggregates=frozenset(aggs.get(r.id, ())),
                    created_at=r.created_at,
                    updated_at=r.updated_at or r.created_at,
                )
                for r in chunk
            ]

    # -- consumers and allocations ----------------------------------------------
    def consumer_batches(self, size: int) -> Iterator[list[ImportedConsumer]]:
        """Consumers with allocations, in Placement's order, then allocations
        whose consumer has no record (data from before Placement 1.8 that its
        online migration has not reached) under the incomplete consumer's
        project and user. Consumers holding nothing are not imported:
        claimant, like Placement's API, drops a consumer left with nothing."""
        self._provider_rows()
        after = -1
        while True:
            rows = self._all(
                "SELECT c.id, c.uuid, p.external_id, u.external_id, c.generation, ct.name,"
                " c.created_at FROM consumers c"
                " JOIN projects p ON p.id = c.project_id JOIN users u ON u.id = c.user_id"
                " LEFT JOIN consumer_types ct ON ct.id = c.consumer_type_id"
                " WHERE c.id > :after ORDER BY c.id LIMIT :n",
                after=after,
                n=size,
            )
            if not rows:
                break
            after = rows[-1][0]
            held = self._allocations([r[1] for r in rows])
            batch = [
                ImportedConsumer(
                    Consumer(r[1], r[2], r[3], r[5] or "", r[4] or 0),
                    held[r[1]][0],
                    created_at=held[r[1]][1] or _epoch(r[6]),
                )
                for r in rows
                if r[1] in held
            ]
            if batch:
                yield batch
        orphans = [
            r[0]
            for r in self._all(
                "SELECT DISTINCT a.consumer_id FROM allocations a"
                " LEFT JOIN consumers c ON c.uuid = a.consumer_id WHERE c.id IS NULL"
                " ORDER BY a.consumer_id"
            )
        ]
        for start in range(0, len(orphans), size):
            chunk = orphans[start : start + size]
            held = self._allocations(chunk)
            yield [
                ImportedConsumer(Consumer(c, INCOMPLETE, INCOMPLETE, "", 0), *held[c])
                for c in chunk
                if c in held
            ]

    def _allocations(
        self, consumer_uuids: list[str]
    ) -> dict[str, tuple[dict[str, dict[str, int]], float]]:
        classes = self.resource_classes()
        out: dict[str, tuple[dict[str, dict[str, int]], float]] = {}
        for r in self._all(
            "SELECT consumer_id, resource_provider_id, resource_class_id, used, created_at"
            " FROM allocations WHERE consumer_id IN :ids ORDER BY id",
            ids=consumer_uuids,
        ):
            provider = self._by_id.get(r[1])
            if provider is None:
                raise SourceError(f"consumer {r[0]} holds resources of a deleted provider #{r[1]}")
            rc = classes.get(r[2])
            if rc is None:
                raise SourceError(f"consumer {r[0]} holds an unknown resource class #{r[2]}")
            allocs, created = out.get(r[0], ({}, 0.0))
            amounts = allocs.setdefault(provider.uuid, {})
            amounts[rc] = amounts.get(rc, 0) + int(r[3])
            out[r[0]] = (allocs, max(created, _epoch(r[4])))
        return out
