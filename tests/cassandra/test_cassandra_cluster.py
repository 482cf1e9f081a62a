"""Three real nodes, RF 3: schedulers keep placing while one node is stopped,
nothing is overcommitted and no confirmed claim is lost.

Starts its own cluster with the launcher (minutes on a 2-core machine), so it
is marked slow: ``CLAIMANT_TEST_CASSANDRA=1 pytest -m slow tests/cassandra``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from claimant.cluster.launcher import Cluster
from claimant.model import (
    ClaimantError,
    Inventory,
    NoValidHost,
    Provider,
    Request,
    RequestGroup,
    StoreUnavailable,
    new_uuid,
)
from claimant.store import open_store

pytestmark = [pytest.mark.slow, pytest.mark.cassandra]

# The dev node owns 127.0.0.1: this cluster lives on 127.0.0.11-13.
BASE_ADDRESS = "127.0.0.11"
PROVIDERS = 12
VCPU = 16


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    given = os.environ.get("CLAIMANT_TEST_CLUSTER_DIR")
    directory = Path(given) if given else tmp_path_factory.mktemp("cass3")
    c = Cluster(directory)
    c.up(3, heap="512m", timeout=600, echo=print, base_address=BASE_ADDRESS)
    try:
        yield c
    finally:
        if not given:
            c.destroy(timeout=60)


def test_three_nodes_one_stopped_mid_run(cluster: Cluster) -> None:
    from claimant.scheduler import Scheduler

    hosts = ",".join(cluster.contact_points())
    url = f"cassandra://{hosts}/claimant_three?rf=3&timeout=5"
    setup = open_store(url)
    setup.drop()
    setup.migrate()
    providers = [
        setup.create_provider(
            Provider(
                uuid=new_uuid(),
                name=f"cn{i}",
                inventories={"VCPU": Inventory("VCPU", VCPU)},
            )
        )
        for i in range(PROVIDERS)
    ]

    stop = threading.Event()
    node_stopped_at: list[float] = []
    confirmed: dict[str, str] = {}  # claim uuid -> provider
    placed_at: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def scheduler_loop() -> None:
        store = open_store(url)
        sched = Scheduler(store)
        try:
            while not stop.is_set():
                req = Request(uuid=new_uuid(), groups=(RequestGroup(resources={"VCPU": 1}),))
                try:
                    result = sched.schedule(req)
                    for p in result.placements:
                        for c in p.claims:
                            store.confirm_claim(c.uuid)
                            with lock:
                                confirmed[c.uuid] = c.provider_uuid
                                placed_at.append(time.monotonic())
                except NoValidHost:
                    stop.set()
                except StoreUnavailable as exc:
                    # In-flight requests to the node being stopped may fail.
                    with lock:
                        errors.append(f"{type(exc).__name__}: {exc}")
                    time.sleep(0.2)
                except ClaimantError as exc:
                    with lock:
                        errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            store.close()

    threads = [threading.Thread(target=scheduler_loop) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(8)
    cluster.stop(3, timeout=60)
    node_stopped_at.append(time.monotonic())
    time.sleep(12)
    stop.set()
    for t in threads:
        t.join(timeout=120)

    after_stop = [t for t in placed_at if t > node_stopped_at[0] + 1]
    print(
        f"placed {len(placed_at)} ({len(after_stop)} after node3 stopped), "
        f"errors {len(errors)}: {errors[:3]}"
    )
    assert after_stop, "no placement succeeded with node3 down"

    # Zero overcommit, no confirmed claim lost (read with node3 still down).
    for p in providers:
        held = sum(c.amounts["VCPU"] for c in setup.list_claims(provider_uuid=p.uuid))
        assert held <= VCPU
        assert setup.get_usage(p.uuid).usages["VCPU"].used == held
    for claim_uuid, provider_uuid in confirmed.items():
        got = setup.get_claim(claim_uuid)
        assert got.provider_uuid == provider_uuid
        assert got.status == "confirmed"

    cluster.start(3, timeout=600)
    states = {n.index: n.state for n in cluster.status()}
    assert states == {1: "up", 2: "up", 3: "up"}
    setup.drop()
    setup.close()
