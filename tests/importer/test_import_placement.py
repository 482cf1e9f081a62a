"""``claimant import placement`` from a database Placement 16 made itself
(data/placement16.sql): everything comes over, generations included, into
every store backend; the CLI's refusals and exit codes; an interrupted import
resumed. The expected values are read from the source with plain SQL, not
through the importer's own reader."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from claimant.cli.main import main
from claimant.importer.placement import ImportRefused, import_placement
from claimant.importer.source import INCOMPLETE, PlacementSource, SourceError
from claimant.model import ClaimStatus
from claimant.store import Store, open_store

pytest.importorskip("sqlalchemy", reason="the importer needs SQLAlchemy (extra placement-import)")


def _source_facts(db: Path) -> dict[str, Any]:
    conn = sqlite3.connect(db)
    q = conn.execute
    rcs = {i: n for i, n in q("SELECT id, name FROM resource_classes")}
    ids = {i: u for i, u in q("SELECT id, uuid FROM resource_providers")}
    facts: dict[str, Any] = {
        "providers": {
            u: (n, g, ids.get(p))
            for u, n, g, p in q(
                "SELECT uuid, name, generation, parent_provider_id FROM resource_providers"
            )
        },
        "inventories": {
            (ids[rp], rcs[rc]): (t, r, mi, ma, s, float(a))
            for rp, rc, t, r, mi, ma, s, a in q(
                "SELECT resource_provider_id, resource_class_id, total, reserved, min_unit,"
                " max_unit, step_size, allocation_ratio FROM inventories"
            )
        },
        "traits": {
            (ids[rp], t)
            for rp, t in q(
                "SELECT resource_provider_id, name FROM resource_provider_traits"
                " JOIN traits ON traits.id = trait_id"
            )
        },
        "aggregates": {
            (ids[rp], a)
            for rp, a in q(
                "SELECT resource_provider_id, uuid FROM resource_provider_aggregates"
                " JOIN placement_aggregates ON placement_aggregates.id = aggregate_id"
            )
        },
        "consumers": {
            u: (p, us, g, t or "")
            for u, p, us, g, t in q(
                "SELECT c.uuid, p.external_id, u.external_id, c.generation, ct.name"
                " FROM consumers c JOIN projects p ON p.id = c.project_id"
                " JOIN users u ON u.id = c.user_id"
                " LEFT JOIN consumer_types ct ON ct.id = c.consumer_type_id"
            )
        },
        "allocations": {
            (c, ids[rp], rcs[rc]): n
            for c, rp, rc, n in q(
                "SELECT consumer_id, resource_provider_id, resource_class_id, used FROM allocations"
            )
        },
    }
    conn.close()
    return facts


def _store_facts(store: Store) -> dict[str, Any]:
    providers = store.list_providers()
    allocations: dict[tuple[str, str, str], int] = {}
    consumers = {}
    for claim in store.list_claims(status=ClaimStatus.CONFIRMED):
        for rc, n in claim.amounts.items():
            allocations[(claim.consumer_uuid, claim.provider_uuid, rc)] = n
        c = store.get_consumer(claim.consumer_uuid)
        assert c is not None
        consumers[c.uuid] = (c.project_id, c.user_id, c.generation, c.consumer_type)
    return {
        "providers": {p.uuid: (p.name, p.generation, p.parent_uuid) for p in providers},
        "inventories": {
            (p.uuid, rc): (
                i.total,
                i.reserved,
                i.min_unit,
                i.max_unit,
                i.step_size,
                float(i.allocation_ratio),
            )
            for p in providers
            for rc, i in p.inventories.items()
        },
        "traits": {(p.uuid, t) for p in providers for t in p.traits},
        "aggregates": {(p.uuid, a) for p in providers for a in p.aggregates},
        "consumers": consumers,
        "allocations": allocations,
    }


def test_everything_comes_over(store: Store, placement_db: Path, placement_url: str) -> None:
    source = PlacementSource(placement_url)
    report = import_placement(source, store, provider_batch=7, consumer_batch=5)
    source.close()
    expected = _source_facts(placement_db)
    got = _store_facts(store)
    for key in expected:
        assert got[key] == expected[key], key
    # what the data holds: trees, sharing, several consumer types, a move
    assert report.providers == len(expected["providers"]) == 25
    assert any(parent for _, _, parent in expected["providers"].values())
    types = {t for *_, t in expected["consumers"].values()}
    assert {"INSTANCE", "MIGRATION", ""} <= types
    assert max(g for _, g, _ in expected["providers"].values()) > 5
    assert {"CUSTOM_BAREMETAL_GOLD", "CUSTOM_FPGA_XILINX"} <= {
        rc.name for rc in store.list_resource_classes()
    }
    # usages per consumer type, as Placement's /usages adds them up
    project = next(iter(expected["consumers"].values()))[0]
    assert set(store.usages_by_project(project)) <= {"INSTANCE", "MIGRATION", "unknown"}


def test_an_interrupted_import_resumes(
    store: Store, placement_db: Path, placement_url: str
) -> None:
    class Stop(Exception):
        pass

    def stop_after_first(phase: str, n: int) -> None:
        raise Stop(phase)

    source = PlacementSource(placement_url)
    with pytest.raises(Stop):
        import_placement(source, store, provider_batch=10, progress=stop_after_first)
    assert 0 < len(store.list_providers()) < 25
    with pytest.raises(ImportRefused):
        import_placement(source, store)
    seen: list[str] = []

    def consumers_once(phase: str, n: int) -> None:
        if phase == "consumers" and not seen:
            seen.append(phase)
            raise Stop(phase)

    with pytest.raises(Stop):
        import_placement(source, store, resume=True, consumer_batch=4, progress=consumers_once)
    import_placement(source, store, resume=True, consumer_batch=4)
    source.close()
    expected = _source_facts(placement_db)
    got = _store_facts(store)
    for key in expected:
        assert got[key] == expected[key], key


def _cli(*args: str) -> Any:
    return CliRunner().invoke(main, ["import", "placement", *args])


def test_cli_import_refuse_resume_force(tmp_path: Path, placement_url: str) -> None:
    target = "sqlite:///" + str(tmp_path / "claimant.db")
    first = _cli("--from", placement_url, "--store", target, "--json")
    assert first.exit_code == 0, first.output
    assert '"providers": 25' in first.output
    again = _cli("--from", placement_url, "--store", target)
    assert again.exit_code == 3
    assert "--resume" in again.output and "Traceback" not in again.output
    resumed = _cli("--from", placement_url, "--store", target, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "newly written: 0 providers, 0 consumers" in resumed.output
    forced = _cli("--from", placement_url, "--store", target, "--force")
    assert forced.exit_code == 0, forced.output
    assert "newly written: 25 providers" in forced.output
    st = open_store(target)
    assert len(st.list_providers()) == 25
    st.close()


@pytest.mark.parametrize(
    ("args", "exit_code", "code"),
    [
        pytest.param(["--from", "nonsense"], 4, "source_unavailable", id="bad-url"),
        pytest.param(["--from", "sqlite:///{empty}"], 4, "source_unavailable", id="not-placement"),
        pytest.param(["--from", "{placement}"], 3, "import_refused", id="refused"),
    ],
)
def test_cli_failures_as_json(
    tmp_path: Path, placement_url: str, args: list[str], exit_code: int, code: str
) -> None:
    # Every failure of the import, not only the store's, is one JSON line on
    # stderr with a stable code under --json (before: plain text).
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    target = "sqlite:///" + str(tmp_path / "t.db")
    assert _cli("--from", placement_url, "--store", target).exit_code == 0
    args = [a.replace("{empty}", str(empty)).replace("{placement}", placement_url) for a in args]
    result = _cli(*args, "--store", target, "--json")
    assert result.exit_code == exit_code, result.output
    assert result.stdout == ""
    error = json.loads(result.stderr)["error"]
    assert error["code"] == code
    assert error["message"]


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        pytest.param([], 2, "--from DB_URL is required", id="no-source"),
        pytest.param(["--from", "nonsense"], 4, "not a database URL", id="bad-url"),
        pytest.param(
            ["--from", "mysql+pymysql://u:secret@127.0.0.1:1/placement"],
            4,
            "cannot read a Placement schema",
            id="unreachable",
        ),
        pytest.param(["--from", "sqlite:///{empty}"], 4, "db sync", id="not-placement"),
        pytest.param(["--verify"], 2, "--placement-url", id="verify-needs-urls"),
        pytest.param(["--from", "sqlite:///x.db", "--resume", "--force"], 2, "exclude", id="both"),
    ],
)
def test_cli_bad_input(tmp_path: Path, args: list[str], code: int, says: str) -> None:
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    args = [a.replace("{empty}", str(empty)) for a in args]
    result = _cli(*args, "--store", "sqlite:///" + str(tmp_path / "t.db"))
    assert result.exit_code == code, result.output
    assert says in result.output
    assert "Traceback" not in result.output
    assert "secret" not in result.output


def test_cli_target_store_error_as_json(tmp_path: Path, placement_url: str) -> None:
    # A target store that fails prints as every command's store error does,
    # as JSON with --json (before: text), with the import's exit code 4.
    target = tmp_path / "broken.db"
    target.write_bytes(b"this is not an SQLite file" * 200)
    result = _cli("--from", placement_url, "--store", "sqlite:///" + str(target), "--json")
    assert result.exit_code == 4, result.output
    assert result.stdout == ""
    error = json.loads(result.stderr)["error"]
    assert error["code"] == "store_unavailable"
    assert error["message"] == "the store's file is not a usable SQLite database"
    assert "file is not a database" not in result.output


def test_unknown_standard_names_are_refused_before_writing(
    store: Store, placement_db: Path, placement_url: str
) -> None:
    conn = sqlite3.connect(placement_db)
    conn.execute("INSERT INTO traits (id, name) VALUES (99999, 'HW_FROM_THE_FUTURE')")
    conn.execute("INSERT INTO resource_provider_traits VALUES (NULL, NULL, 99999, 1)")
    conn.commit()
    conn.close()
    source = PlacementSource(placement_url)
    with pytest.raises(ImportRefused, match="HW_FROM_THE_FUTURE"):
        import_placement(source, store)
    source.close()
    assert store.list_providers() == []


def test_source_errors_never_quote_the_driver() -> None:
    with pytest.raises(SourceError) as exc:
        PlacementSource("mysql+pymysql://placement:hunter2@127.0.0.1:1/placement")
    assert "hunter2" not in str(exc.value)


def test_allocations_without_a_consumer_record(
    store: Store, placement_db: Path, placement_url: str
) -> None:
    """Data from before Placement 1.8 that its online migration never reached
    comes over as that migration would make it: the incomplete consumer."""
    orphan = "6b7c0a58-0a8f-4d3e-9e7a-0f3c2a1b9d11"
    conn = sqlite3.connect(placement_db)
    rp, rc = conn.execute(
        "SELECT resource_provider_id, resource_class_id FROM inventories"
        " JOIN resource_classes ON resource_classes.id = resource_class_id"
        " WHERE name = 'MEMORY_MB' LIMIT 1"
    ).fetchone()
    conn.execute(
        "INSERT INTO allocations (resource_provider_id, consumer_id, resource_class_id, used)"
        " VALUES (?, ?, ?, 256)",
        (rp, orphan, rc),
    )
    conn.commit()
    conn.close()
    source = PlacementSource(placement_url)
    import_placement(source, store)
    source.close()
    consumer = store.get_consumer(orphan)
    assert consumer is not None
    assert (consumer.project_id, consumer.user_id, consumer.generation) == (
        INCOMPLETE,
        INCOMPLETE,
        0,
    )
    [held] = store.list_claims(consumer_uuid=orphan)
    assert held.amounts == {"MEMORY_MB": 256}
