"""A live cell while the other DC stops: its work never needs the stopped
DC, so it sees no error at all.

2 DCs x 1 node from the launcher on 127.0.0.24 (dc1) and 127.0.0.25 (dc2)
(tests/addresses.py), destroyed at the end (slow: two JVMs)::

    CLAIMANT_TEST_CASSANDRA=127.0.0.1 pytest -m slow tests/cluster/test_live_dc_down.py

A dc2 service looks up what may be homed in another cell (a new request's
uuid, a claim's locator) in dc1 too, and skips dc1 when it is unreachable.
Before the fix, the lookups made while dc1 was going away failed with
``store_unavailable`` instead: the driver had not yet marked dc1's host
down, and a read failing on its closing connections ("Server is shutting
down", ``ConnectionShutdown``, "Pool ... is shutdown") was not taken for the
cell being unreachable (docs/cells.md, "A live cell while another stops").

``CLAIMANT_TEST_DCDOWN_DIR=DIR`` runs them on a 2-DC cluster already up in
DIR (``claimant cluster up -n 2 --dcs 2 --base-address 127.0.0.24 --dir
DIR``), left up afterwards.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Iterator

import pytest

from claimant.cluster.launcher import Cluster
from claimant.model import CellUnavailable, ClaimantError, NotFound, new_uuid
from claimant.store import open_store
from claimant.store.cassandra import CassandraStore
from tests.addresses import LIVE_DC_DOWN
from tests.two_dcs import sim_json, two_dcs

pytestmark = [pytest.mark.slow, pytest.mark.cassandra]

BASE = LIVE_DC_DOWN.base
LOOKERS = 6
# Lookups each phase must see, counted (never timed): enough that some of
# them meet dc1 going away.
PER_PHASE = 60


@pytest.fixture(scope="module")
def cells(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with two_dcs(tmp_path_factory, LIVE_DC_DOWN, "dcdown", reuse="CLAIMANT_TEST_DCDOWN_DIR") as c:
        yield c


def _store(cells: Cluster, keyspace: str, dc: str) -> CassandraStore:
    url = cells.store_url().replace("/claimant?", f"/{keyspace}?") + "&timeout=10"
    st = open_store(url.replace("dc=dc1", f"dc={dc}"))
    assert isinstance(st, CassandraStore)
    return st


class _Lookers:
    """Threads looking up, through one store, uuids no cell has: a request
    and a claim (each read here, then in every other cell that answers).
    Every outcome is counted by the phase it began in."""

    def __init__(self, st: CassandraStore) -> None:
        self.st = st
        self.phase = "both up"
        self.outcomes: Counter[tuple[str, str]] = Counter()
        self.guard = threading.Condition()
        self.halt = threading.Event()
        self.threads = [threading.Thread(target=self._look, args=(i,)) for i in range(LOOKERS)]

    def _look(self, i: int) -> None:
        while not self.halt.is_set():
            phase = self.phase
            try:
                if i % 2:
                    self.st.get_request(new_uuid())
                else:
                    self.st.confirm_claim(new_uuid())
                outcome = "found?"
            except NotFound:
                outcome = "not_found"
            except ClaimantError as exc:
                outcome = exc.code
            with self.guard:
                self.outcomes[phase, outcome] += 1
                self.guard.notify_all()

    def count(self, phase: str) -> int:
        return sum(n for (p, _), n in self.outcomes.items() if p == phase)

    def wait_for(self, phase: str, n: int) -> None:
        with self.guard:
            # Bounded by lookups (each ends within the store's timeout), not a clock.
            self.guard.wait_for(lambda: self.count(phase) >= n or self.halt.is_set())

    def __enter__(self) -> _Lookers:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.halt.set()
        for t in self.threads:
            t.join()


def test_dc2_lookups_skip_dc1_while_it_stops(
    cells: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    dc1 = _store(cells, "dcdown_lookups", "dc1")
    dc1.drop()
    dc1.migrate()
    dc2 = _store(cells, "dcdown_lookups", "dc2")
    try:
        assert dc2.dcs == ["dc1", "dc2"]
        with caplog.at_level(logging.WARNING, "claimant.store.cassandra"), _Lookers(dc2) as lookers:
            lookers.wait_for("both up", PER_PHASE)
            lookers.phase = "stopping"
            try:
                cells.stop(dc="dc1", timeout=120, echo=print)
                lookers.phase = "dc1 down"
                lookers.wait_for("dc1 down", PER_PHASE)
            finally:
                lookers.halt.set()
        outcomes = dict(lookers.outcomes)
        print(f"dc2's lookups while dc1 stopped: {outcomes}")
        # The window was exercised: lookups met dc1's host going away (a
        # NoHostAvailable naming it), not only once it was marked down ({}).
        gone = [m for m in caplog.messages if m.startswith("cell dc1 unreachable") and "Host" in m]
        assert gone, outcomes
        assert {o for _, o in outcomes} == {"not_found"}, outcomes
        # dc1's own service prepares on dc1's hosts only: a statement it has
        # not used before says its cell is unreachable (was store_unavailable).
        with pytest.raises(CellUnavailable) as refused:
            dc1.get_request(new_uuid())
        assert refused.value.details["cell"] == "dc1"
    finally:
        cells.start(dc="dc1", timeout=900, echo=print)
        for st in (dc1, dc2):
            st.close()


def test_sim_dc1_stopped_dc2_builds_on_without_an_error(cells: Cluster) -> None:
    """``claimant sim --cells 2 --stop-dc dc1``: dc2's requests are confined to
    dc2 and never need dc1; before the fix dc2 saw 2-4 store_unavailable
    each run, all from lookups in dc1 as it went away."""
    args = [
        "sim", "--cells", "2", "--cluster-dir", str(cells.dir), "--hosts", "4",
        "--requests", "30", "--schedulers", "2", "--stop-dc", "dc1", "--at", "50%",
        "--claim-ttl", "20",
    ]  # fmt: skip
    data = sim_json(args)
    print(json.dumps(data["cells"], indent=1))
    assert data["overcommitted_providers"] == 0
    assert data["stop_dc"]["fired"] is True
    by_cell = {c["cell"]: c for c in data["cells"]}
    dc1, dc2 = by_cell["dc1"], by_cell["dc2"]
    # A full cell refuses with no_valid_host; nothing else, ever, in dc2.
    assert set(dc2["failures_by_code"]) <= {"no_valid_host"}, dc2["failures_by_code"]
    before, after = dc2["phases"]
    assert before["placed"] > 0 and after["placed"] > 0, dc2["phases"]
    # dc1's own requests are refused while it is down, and say why.
    assert dc1["phases"][1]["requests_failed"] > 0
    assert "cell_unavailable" in dc1["failures_by_code"], dc1["failures_by_code"]
