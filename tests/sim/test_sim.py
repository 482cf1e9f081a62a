"""Small simulator runs (measurements live in bench/ and docs/loop.md)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from claimant.cli.main import main
from claimant.model import InvalidInput, Inventory, Provider, RequestGroup
from claimant.sim import SimConfig, run
from claimant.sim.legacy import FilterScheduler, HostManager
from claimant.sim.plot import comparison_svg
from claimant.sim.workload import make_cloud, make_workload
from claimant.store import ClaimSpec, Store

SMALL = {"hosts": 4, "requests": 30, "schedulers": 3, "build_time": 0.0}


def test_claimant_mode_never_races_or_overcommits(store: Store) -> None:
    r = run(store, SimConfig(mode="claimant", **SMALL))
    assert r.overcommitted_providers == 0
    assert r.build_failures_from_races == 0
    assert r.build_failures == 0
    assert r.placed > 0
    assert r.requests_active + r.requests_failed == r.requests


@pytest.mark.cassandra
@pytest.mark.parametrize("mode", ["legacy", "claimant"])
def test_both_modes_on_cassandra(cassandra_store: Store, mode: str) -> None:
    r = run(cassandra_store, SimConfig(mode=mode, hosts=2, requests=8, schedulers=2))
    assert r.overcommitted_providers == 0
    assert r.placed > 0
    if mode == "claimant":
        assert r.build_failures_from_races == 0


def test_legacy_mode_keeps_the_invariants(store: Store) -> None:
    r = run(store, SimConfig(mode="legacy", **SMALL))
    # Races may or may not happen in a small run; what must hold is below.
    assert r.overcommitted_providers == 0
    assert 0 < r.placed <= r.instances_requested
    assert r.requests_active + r.requests_failed == r.requests
    assert r.build_failures == r.build_failures_from_races + r.driver_failures
    assert r.retries <= r.build_failures


def test_driver_failures_are_not_counted_as_races(store: Store) -> None:
    r = run(store, SimConfig(mode="claimant", failure_rate=0.3, **SMALL))
    assert r.driver_failures > 0
    assert r.build_failures_from_races == 0
    assert r.overcommitted_providers == 0


def test_workload_is_reproducible() -> None:
    cloud = make_cloud(8, seed=3)
    assert make_cloud(8, seed=3) == cloud
    a = [(r.groups, r.count) for r in make_workload(cloud, 50, seed=3)]
    b = [(r.groups, r.count) for r in make_workload(cloud, 50, seed=3)]
    assert a == b
    kinds = {r.groups[-1].provider_type for r in make_workload(cloud, 200, seed=3)}
    assert kinds == {"compute", "baremetal", "block_storage"}


def test_host_manager_keeps_its_own_consumption_until_the_host_writes(store: Store) -> None:
    """Nova's HostState is newer than the record after consume_from_request,
    until the compute writes; that stale window is what races in legacy mode."""
    p = store.create_provider(
        Provider(
            uuid="6c1f7d1e-0a1b-4c2d-8e3f-000000000001",
            name="h",
            inventories={
                "MEMORY_MB": Inventory("MEMORY_MB", 4096),
            },
        )
    )
    hm = HostManager(store, [("compute", "MEMORY_MB")])
    fs = FilterScheduler(hm)
    group = RequestGroup(resources={"MEMORY_MB": 3000}, provider_type="compute")
    assert fs.select((group,), 1) is not None
    assert hm.states[p.uuid].free("MEMORY_MB") == 1096  # consumed locally only
    assert fs.select((group,), 1) is None  # this scheduler sees its own choice
    other = FilterScheduler(HostManager(store, [("compute", "MEMORY_MB")]))
    assert other.select((group,), 1) is not None  # another scheduler does not: a race
    store.claim(ClaimSpec(p.uuid, p.generation, {"MEMORY_MB": 3000}, "c"))
    hm.refresh()
    assert hm.states[p.uuid].free("MEMORY_MB") == 1096  # now read from the store


@pytest.mark.parametrize(
    ("case", "kwargs"),
    [
        ("unknown mode", {"mode": "nova"}),
        ("no hosts", {"hosts": 0}),
        ("bad failure rate", {"failure_rate": 1.5}),
    ],
)
def test_bad_config(case: str, kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        SimConfig(**kwargs)  # type: ignore[arg-type]


def test_cli_prints_one_json_line(tmp_path: Path) -> None:
    url = "sqlite:///" + str(tmp_path / "cli.db").lstrip("/")
    args = ["sim", "--mode", "claimant", "--hosts", "2", "--requests", "5", "--store", url]
    result = CliRunner().invoke(main, [*args, "--schedulers", "2", "--build-time", "0", "--json"])
    assert result.exit_code == 0, result.output
    (line,) = [x for x in result.output.splitlines() if x.startswith("{")]
    data = json.loads(line)
    for key in (
        "placed",
        "build_failures_from_races",
        "retries",
        "overcommitted_providers",
        "placements_per_s",
        "p99_ms",
    ):
        assert key in data
    assert data["overcommitted_providers"] == 0
    # A store that holds providers is not wiped without --wipe.
    again = CliRunner().invoke(main, [*args, "--json"])
    assert again.exit_code != 0
    assert "--wipe" in again.output


def test_cli_table_fits_80_columns(tmp_path: Path) -> None:
    # issue 11: the table was 106 columns wide
    url = "sqlite:///" + str(tmp_path / "cli.db").lstrip("/")
    args = ["sim", "--mode", "claimant", "--hosts", "2", "--requests", "3", "--store", url]
    result = CliRunner().invoke(
        main, [*args, "--schedulers", "1", "--build-time", "0"], env={"COLUMNS": "80"}
    )
    assert result.exit_code == 0, result.output
    assert "placed" in result.output and "claimant" in result.output
    assert max(len(line.rstrip()) for line in result.output.splitlines()) <= 80


def test_svg_plot_is_well_formed(store: Store) -> None:
    runs = {
        m: [
            run(store, SimConfig(mode=m, hosts=2, requests=4, schedulers=k, build_time=0.0))
            for k in (1, 2)
        ]
        for m in ("legacy", "claimant")
    }
    root = ET.fromstring(comparison_svg(runs, "test"))
    assert root.tag.endswith("svg")
    assert len(root.findall(".//{http://www.w3.org/2000/svg}polyline")) == 8


def test_cli_refuses_an_unknown_plot_format_before_running(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["sim", "--plot", str(tmp_path / "chart.txt")])
    assert result.exit_code == 2
    assert ".svg or .png" in result.output
