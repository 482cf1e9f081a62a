"""``claimant sim --cells`` (issue 12): the per-cell run, its figures and its
rendering on real stores; the run across a real 2-DC cluster is slow."""

from __future__ import annotations

import json
import socket
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from claimant.cli.main import main
from claimant.cli.sim import _parse_at, render_cells
from claimant.model import LOCAL_CELL, InvalidInput
from claimant.sim import DcStop, SimConfig, run_cells
from claimant.store import Store
from tests.addresses import SIM_CELLS, SIM_TAKEN
from tests.two_dcs import sim_json

SMALL = SimConfig(hosts=4, requests=30, schedulers=2, build_time=0.0)


def test_cli_takes_cells(tmp_path: Path) -> None:
    # Before issue 12's loop work: "No such option: --cells".
    empty = tmp_path / "no-cluster"
    result = CliRunner().invoke(main, ["sim", "--cells", "2", "--cluster-dir", str(empty)])
    assert result.exit_code == 2, result.output
    assert "no cluster in" in result.output
    assert "No such option" not in result.output


def test_cli_setup_failure_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A node's address is taken: the launcher refuses before any JVM starts,
    # the run says why and exits 2 (not 1: nothing was measured), and leaves
    # no cluster directory behind.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with socket.socket() as taken:
        taken.bind((SIM_TAKEN.base, 9042))
        taken.listen()
        result = CliRunner().invoke(main, ["sim", "--cells", "2", "--base-address", SIM_TAKEN.base])
    assert result.exit_code == 2, result.output
    assert "port already in use" in result.output or "java" in result.output.lower()
    assert not list(tmp_path.glob("claimant-sim-cells-*"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stop-dc", "dc2"], "--stop-dc goes with --cells N"),
        (["--cluster-dir", "x"], "--cluster-dir goes with --cells N"),
        (["--cells", "2", "--mode", "legacy"], "claimant mode only"),
        (["--cells", "2", "--store", "sqlite:///x.db"], "not --store"),
        (["--cells", "2", "--at", "soon"], "--at 'soon'"),
        (["--cells", "2", "--at", "150%"], "--at '150%'"),
    ],
)
def test_cli_refuses_bad_cell_options(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["sim", *args])
    assert result.exit_code == 2
    assert message in result.output


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30s", (30.0, None)), ("12.5", (12.5, None)), ("50%", (None, 0.5)), ("0%", (None, 0.0))],
)
def test_parse_at(text: str, expected: tuple[float | None, float | None]) -> None:
    assert _parse_at(text) == expected


def test_one_cell_run_adds_up(store: Store) -> None:
    calls: list[str] = []
    stop = DcStop(
        LOCAL_CELL,
        stop=lambda: calls.append("stop"),
        start=lambda: calls.append("start"),
        at_fraction=0.5,
    )
    out = run_cells({LOCAL_CELL: store}, SMALL, stop=stop)
    assert calls == ["stop", "start"]
    (cell,) = out.cells
    r = cell.result
    assert cell.cell == LOCAL_CELL
    assert r.requests_active + r.requests_failed == SMALL.requests
    assert r.overcommitted_providers == 0 and out.overcommitted_providers == 0
    assert r.placed > 0
    # The phases split the same requests at the stop.
    before, after = cell.phases
    assert before.name == "both up" and after.name == f"{LOCAL_CELL} stopped"
    assert before.placed + after.placed == r.placed
    assert before.active + before.failed + after.active + after.failed == SMALL.requests
    assert before.active + before.failed >= SMALL.requests // 2
    # Every failed request is counted under a code.
    assert sum(cell.failures.values()) >= r.requests_failed
    data = out.to_dict()
    assert data["stop_dc"]["fired"] is True and data["stop_dc"]["at"] == "50%"
    assert {"cell", "placed", "failures_by_code", "phases", "error_p50_ms"} <= set(data["cells"][0])
    json.dumps(data)


def test_refusals_are_counted_by_code(store: Store) -> None:
    # A cell the store does not have: every request is refused, and the run
    # goes on and says why, instead of stopping on the first error.
    out = run_cells({"nowhere": store}, SimConfig(hosts=2, requests=5, build_time=0.0))
    (cell,) = out.cells
    assert cell.failures == {"unknown_cell": 5}
    assert cell.result.requests_failed == 5 and cell.result.placed == 0
    assert len(cell.error_latencies_ms) == 5


def test_a_stop_after_the_run_never_fires(store: Store) -> None:
    calls: list[str] = []
    stop = DcStop(LOCAL_CELL, stop=lambda: calls.append("stop"), start=lambda: None, at_s=3600)
    out = run_cells({LOCAL_CELL: store}, SimConfig(hosts=2, requests=4, build_time=0.0), stop=stop)
    assert calls == []
    assert out.stop == {"cell": LOCAL_CELL, "fired": False, "at": "3600s"}
    assert out.cells[0].phases == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"at_s": None, "at_fraction": None},
        {"at_s": 1.0, "at_fraction": 0.5},
        {"at_fraction": 1.5},
        {"at_s": -1.0},
    ],
)
def test_bad_stop(kwargs: dict[str, float | None]) -> None:
    with pytest.raises(InvalidInput):
        DcStop("dc2", stop=lambda: None, start=lambda: None, **kwargs)  # type: ignore[arg-type]


def test_render_fits_80_columns(
    store: Store, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    stop = DcStop(LOCAL_CELL, stop=lambda: None, start=lambda: None, at_fraction=0.5)
    out = run_cells({LOCAL_CELL: store}, SMALL, stop=stop)
    capsys.readouterr()
    render_cells(out)
    text = capsys.readouterr().out
    assert "claimant sim: 1 cells" in text
    assert f"{LOCAL_CELL} failures:" in text
    assert "before and after the stop" in text and "both up" in text
    assert f"{LOCAL_CELL} stopped at" in text
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 80


@pytest.mark.cassandra
def test_one_cell_on_cassandra(cassandra_store: Store) -> None:
    (cell,) = cassandra_store.cells()
    out = run_cells({cell: cassandra_store}, SimConfig(hosts=2, requests=8, schedulers=2))
    (c,) = out.cells
    assert c.cell == cell
    assert c.result.overcommitted_providers == 0
    assert c.result.placed > 0


@pytest.mark.slow
@pytest.mark.cassandra
def test_two_cells_with_dc2_stopped(tmp_path: Path) -> None:
    """2 DCs x 1 node on 127.0.0.6/.7 (tests/addresses.py) from the launcher, made and destroyed by
    the command; dc2 is stopped once half the requests have finished. A short
    claim TTL bounds how long dc1's agents retry confirming meanwhile."""
    args = [
        "sim", "--cells", "2", "--base-address", SIM_CELLS.base, "--hosts", "2",
        "--requests", "24", "--schedulers", "2", "--stop-dc", "dc2", "--at", "50%",
        "--claim-ttl", "20",
    ]  # fmt: skip
    data = sim_json(args)
    assert data["overcommitted_providers"] == 0
    by_cell = {c["cell"]: c for c in data["cells"]}
    assert set(by_cell) == {"dc1", "dc2"}
    assert data["stop_dc"]["fired"] is True
    dc1, dc2 = by_cell["dc1"], by_cell["dc2"]
    for c in (dc1, dc2):
        assert c["requests_active"] + c["requests_failed"] == 24
        assert c["phases"][0]["placed"] > 0  # both up: each cell placed
    for c in (dc1, dc2):
        assert sum(c["failures_by_code"].values()) >= c["requests_failed"]
    # dc1 builds on while dc2 is stopped: its agents read and confirm their
    # claims in dc1 (before homed consumers and homed claim reads, every dc1
    # build then failed: build:store).
    assert not {k for k in dc1["failures_by_code"] if k.startswith("build:")}, dc1
    # While dc2 is stopped its requests are refused, and say why.
    if dc2["phases"][1]["requests_failed"]:
        assert {"cell_unavailable", "store_unavailable"} & set(dc2["failures_by_code"])
