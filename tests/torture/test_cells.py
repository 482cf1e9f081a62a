"""Cells in the harness (issue 12, test d) without a cluster: the DC faults
against stand-in launcher and node processes (real processes, SIGSTOPped for
real), the per-cell store URLs, the setup errors, and the per-cell outcomes.
The run on real nodes is ``test_run.py::test_two_cells_with_dc_faults``."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from claimant.cluster.launcher import NodeState, State
from claimant.model import ConsumerAllocations, Inventory, Provider, new_uuid
from claimant.store import open_store
from claimant.torture import nemesis as nem
from claimant.torture.checker import NEMESIS
from claimant.torture.history import History
from claimant.torture.processes import Proc, free_port
from claimant.torture.runner import (
    Run,
    SetupError,
    TortureConfig,
    cell_of,
    cell_outcomes,
    with_option,
)

URL = "cassandra://127.0.0.6,127.0.0.7/t?rf=dc1:1,dc2:1&dc=dc1"


@pytest.mark.parametrize(
    ("url", "key", "value", "expected"),
    [
        pytest.param(URL, "dc", "dc2", "cassandra://127.0.0.6,127.0.0.7/t?rf=dc1:1,dc2:1&dc=dc2",
                     id="replaces"),
        pytest.param("cassandra://h/t", "dc", "dc1", "cassandra://h/t?dc=dc1", id="no-query"),
        pytest.param("cassandra://h/t?rf=3", "consistency", "QUORUM",
                     "cassandra://h/t?rf=3&consistency=QUORUM", id="appends"),
        pytest.param("cassandra://h/t?dc=a&x=1&dc=b", "dc", "c", "cassandra://h/t?x=1&dc=c",
                     id="every-copy"),
    ],
)  # fmt: skip
def test_with_option(url: str, key: str, value: str, expected: str) -> None:
    assert with_option(url, key, value) == expected


def test_cell_of_is_round_robin() -> None:
    assert [cell_of(i, ["dc1", "dc2"]) for i in range(5)] == ["dc1", "dc2", "dc1", "dc2", "dc1"]
    assert cell_of(3, []) is None


def _cluster_dir(tmp_path: Path, dcs: int) -> Path:
    """A launcher state file as `claimant cluster up --dcs N` leaves it (no node runs)."""
    d = tmp_path / f"c{dcs}"
    d.mkdir()
    state = State(
        version="5.0.8",
        heap="512m",
        node_count=2,
        nodes=[NodeState(index=1), NodeState(index=2)],
        base_address="127.0.0.6",
        dcs=dcs,
    )
    (d / "cluster.json").write_text(state.to_json())
    return d


def _run(tmp_path: Path, url: str = URL, **kw: Any) -> Run:
    kw.setdefault("nemeses", [])
    return Run(TortureConfig(store_url=url, seconds=1, workdir=tmp_path, **kw))


def test_cells_come_from_a_cluster_of_two_dcs(tmp_path: Path) -> None:
    run = _run(tmp_path, nemeses=[nem.STOP_DC], cluster_dir=_cluster_dir(tmp_path, 2))
    run._check_config()
    assert run.cells == ["dc1", "dc2"]
    assert run.url_in("dc2") == "cassandra://127.0.0.6,127.0.0.7/t?rf=dc1:1,dc2:1&dc=dc2"
    # The checker has a store in each cell, reading at QUORUM where it may.
    assert run.check_urls == {
        "dc1": "cassandra://127.0.0.6,127.0.0.7/t?rf=dc1:1,dc2:1&dc=dc1&consistency=QUORUM",
        "dc2": "cassandra://127.0.0.6,127.0.0.7/t?rf=dc1:1,dc2:1&dc=dc2&consistency=QUORUM",
    }


def test_no_cells_without_several_dcs(tmp_path: Path) -> None:
    run = _run(tmp_path, url="cassandra://127.0.0.1/t?rf=1")
    run._check_config()
    assert run.cells == [] and run.check_urls == {None: "cassandra://127.0.0.1/t?rf=1"}


@pytest.mark.parametrize(
    ("url", "kw", "message"),
    [
        pytest.param(URL, {"nemeses": [nem.PAUSE_DC]}, "--cluster-dir", id="dc-fault-no-dir"),
        pytest.param(URL, {"nemeses": [nem.STOP_DC], "dcs": 1}, "two or more data centres",
                     id="dc-fault-one-dc"),
        pytest.param("sqlite:////tmp/x.db", {"cells": ["dc1", "dc2"]}, "SQLite", id="sqlite"),
        pytest.param("cassandra://h/t?rf=2&dc=dc1", {"cells": ["dc1", "dc2"]},
                     "replicate to every cell", id="rf-not-per-dc"),
        pytest.param("cassandra://h/t?rf=dc1:1", {"cells": ["dc1", "dc2"]}, "none in dc2",
                     id="rf-misses-a-cell"),
    ],
)  # fmt: skip
def test_setup_errors(tmp_path: Path, url: str, kw: dict[str, Any], message: str) -> None:
    dcs = kw.pop("dcs", None)
    if dcs is not None:
        kw["cluster_dir"] = _cluster_dir(tmp_path, dcs)
    with pytest.raises(SetupError, match=message):
        _run(tmp_path, url=url, **kw)._check_config()


def test_each_provider_is_read_through_its_home_cells_store(tmp_path: Path) -> None:
    """Two real SQLite stores stand for two cells' views: a provider is read
    only through its home cell's, with its usage and live entries."""
    stores = {}
    for cell in ("dc1", "dc2"):
        stores[cell] = open_store("sqlite:///" + str(tmp_path / f"{cell}.db").lstrip("/"))
        stores[cell].migrate()
    try:
        run = _run(tmp_path, cluster_dir=_cluster_dir(tmp_path, 2))
        run._check_config()
        for cell, st in stores.items():
            p = st.create_provider(
                Provider(
                    uuid=new_uuid(), name=f"p-{cell}", inventories={"VCPU": Inventory("VCPU", 8)}
                )
            )
            run.providers.append(p.uuid)
            run.homes[p.uuid] = cell
            st.write_allocations(
                [
                    ConsumerAllocations(
                        new_uuid(), "p", "u", {p.uuid: {"VCPU": 2 if cell == "dc1" else 3}}
                    )
                ]
            )
        snap = run._read(stores)
        assert sorted(s.name for s in snap.providers.values()) == ["p-dc1", "p-dc2"]
        assert sorted(s.used["VCPU"] for s in snap.providers.values()) == [2, 3]
        assert sorted(e.amounts["VCPU"] for e in snap.entries) == [2, 3]
    finally:
        for st in stores.values():
            st.close()


def test_cell_outcomes_split_by_cell_and_by_the_other_dcs_faults() -> None:
    h = History()
    services = {"http://s1": "dc1", "http://s2": "dc2"}
    a = h.ok(h.invoke("c0", "request", {}), via="http://s1")
    fault = h.invoke(NEMESIS, NEMESIS, {"fault": nem.STOP_DC, "dc": "dc2"})
    b = h.ok(h.invoke("c0", "request", {}), via="http://s1")  # dc1 alone, dc2 down
    c = h.info(h.invoke("c1", "request", {}), via="http://s2", status=503)  # in the stopped DC
    h.info(h.invoke("c1", "build", {}), via="http://conductor")  # not a service: not counted
    h.ok(fault)
    d = h.fail(h.invoke("c1", "request", {}), via="http://s2", status=409)
    assert all(o.outcome for o in (a, b, c, d))
    assert cell_outcomes(h.ops(), services) == {
        "dc1": {"all": {"ok": 2}, "other_dc_faulted": {"ok": 1}},
        "dc2": {"all": {"info": 1, "fail": 1}, "other_dc_faulted": {}},
    }


# ---- the DC faults, against a stand-in launcher --------------------------------


@dataclass
class _Node:
    index: int
    address: str
    dc: str
    pid: int | None


class _Launcher:
    """Stands in for ``claimant.cluster.launcher.Cluster``: what the nemesis
    calls, recorded; the nodes are real processes (``sleep``)."""

    def __init__(self, procs: list[subprocess.Popen[bytes]]) -> None:
        self.nodes = [
            _Node(1, "127.0.0.6", "dc1", procs[0].pid),
            _Node(2, "127.0.0.7", "dc2", procs[1].pid),
            _Node(3, "127.0.0.8", "dc2", procs[2].pid),
        ]
        self.calls: list[tuple[str, str | None]] = []

    def status(self) -> list[_Node]:
        return list(self.nodes)

    def stop(self, index: int | None = None, *, dc: str | None = None, **_: Any) -> dict:
        self.calls.append(("stop", dc))
        return {n.index: "stopped" for n in self.nodes if n.dc == dc}

    def start(self, index: int | None = None, *, dc: str | None = None, **_: Any) -> None:
        self.calls.append(("start", dc))


@pytest.fixture
def nodes() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs = [subprocess.Popen(["sleep", "60"]) for _ in range(3)]
    try:
        yield procs
    finally:
        for p in procs:
            p.kill()
            p.wait()


def _stopped(pid: int) -> bool:
    """Whether ``pid`` is stopped (``T``), once a signal sent to it has landed:
    delivery is asynchronous, so this waits (bounded) for the state to settle."""
    deadline = time.monotonic() + 10
    while True:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state in "TS" or time.monotonic() > deadline:
            return state == "T"
        time.sleep(0.01)


def _nemesis(kind: str, launcher: _Launcher, history: History, seed: int) -> nem.Nemesis:
    targets = nem.Targets(services=[], agents=[], conductor=None, proxies=[], cluster=launcher)
    return nem.Nemesis([kind], targets, history, random.Random(seed))


def test_stop_dc_stops_and_starts_one_whole_dc(nodes: list[subprocess.Popen[bytes]]) -> None:
    launcher, history = _Launcher(nodes), History()
    n = _nemesis(nem.STOP_DC, launcher, history, seed=0)
    stop = threading.Event()
    stop.set()  # no hold: the fault is injected and healed at once
    n.inject(nem.STOP_DC, stop)
    (op,) = history.ops()
    dc = op.value["dc"]
    assert launcher.calls == [("stop", dc), ("start", dc)]
    assert op.f == NEMESIS and op.value["fault"] == nem.STOP_DC and op.outcome is not None
    want = [n.index for n in launcher.nodes if n.dc == dc]
    assert op.value["nodes"] == want and op.result["stopped"] == dict.fromkeys(want, "stopped")


def test_pause_dc_pauses_every_node_of_one_dc(
    nodes: list[subprocess.Popen[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher, history = _Launcher(nodes), History()
    # Seeds until dc2 (two nodes) is the one chosen: the rng is seeded.
    seed = next(s for s in range(50) if random.Random(s).choice(["dc1", "dc2"]) == "dc2")
    n = _nemesis(nem.PAUSE_DC, launcher, history, seed=seed)
    seen: list[list[str]] = []
    monkeypatch.setattr(n, "_hold", lambda *_: seen.append([_stopped(p.pid) for p in nodes]))
    n.inject(nem.PAUSE_DC, threading.Event())
    assert seen == [[False, True, True]]  # dc1's node runs, both of dc2's are stopped
    assert [_stopped(p.pid) for p in nodes] == [False, False, False]  # and continued
    (op,) = history.ops()
    assert op.value["dc"] == "dc2" and op.value["pids"] == [nodes[1].pid, nodes[2].pid]
    assert op.outcome is not None and not n._paused


def test_a_pause_cut_short_continues_the_dc(nodes: list[subprocess.Popen[bytes]]) -> None:
    """An exception in the hold (a run interrupted) never leaves a DC stopped."""
    launcher, history = _Launcher(nodes), History()
    n = _nemesis(nem.PAUSE_DC, launcher, history, seed=1)

    def boom(*_: Any) -> None:
        raise KeyboardInterrupt

    n._hold = boom  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        n.inject(nem.PAUSE_DC, threading.Event())
    n.heal()
    assert [_stopped(p.pid) for p in nodes] == [False, False, False]


_FLAKY = """
import pathlib, sys
from http.server import HTTPServer, SimpleHTTPRequestHandler
marker = pathlib.Path(sys.argv[1])
if not marker.exists():
    marker.write_text("failed once")
    sys.exit(1)  # as `claimant serve` does when its first store call fails
HTTPServer(("127.0.0.1", int(sys.argv[2])), SimpleHTTPRequestHandler).serve_forever()
"""


def test_a_process_that_exits_while_starting_is_started_again(tmp_path: Path) -> None:
    port = free_port()
    p = Proc(
        "flaky",
        [sys.executable, "-c", _FLAKY, str(tmp_path / "marker"), str(port)],
        tmp_path / "flaky.log",
        f"http://127.0.0.1:{port}/",
    )
    run = _run(tmp_path)
    p.start()
    try:
        run._ready(p, 30)
        assert p.alive() and p.starts == 2
        assert run.setup_restarts == ["flaky"]
    finally:
        p.stop()
