"""Issue 16: SIGTERM during a burst of placements against a real ``claimant
serve`` exits within the graceful timeout, and leaves the store consistent:
nothing over capacity, no request half-done, no claim held by a request that
failed, none left once the TTL passed. On SQLite and Cassandra."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from claimant.model import RequestStatus
from claimant.store import Store, open_store
from tests import children
from tests.api.serve_support import free_port
from tests.api.slow_plugin import ENV_DELAY, SERVE_WITH_SLOW_FILTER

ADMIN = {"x-auth-token": "admin"}
GRACEFUL = 3.0
CLAIM_TTL = 30.0
PROVIDERS = 8
VCPUS = 3  # 24 in all: the burst asks for more, so capacity is what decides


@pytest.fixture(params=["sqlite", pytest.param("cassandra", marks=pytest.mark.cassandra)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield "sqlite:///" + str(tmp_path / "served.db").lstrip("/")
        return
    yield request.getfixturevalue("cassandra_url")


def start(store_url: str, tmp_path: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    log = tmp_path / "serve.log"
    proc = children.popen(
        [
            *SERVE_WITH_SLOW_FILTER,
            "serve",
            "--store",
            store_url,
            "--port",
            str(port),
            "--no-access-log",
            "--graceful-timeout",
            str(GRACEFUL),
            "--claim-ttl",
            str(CLAIM_TTL),
        ],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        # Each placement filters its 8 candidates for 4 s, longer than the
        # drain: SIGTERM always finds placements it must cut.
        env={**os.environ, ENV_DELAY: "0.5"},
        cwd=Path(__file__).resolve().parents[2],
    )
    url = f"http://127.0.0.1:{port}"
    until = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            pytest.fail("claimant serve exited: " + log.read_text())
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url, log
        except httpx.TransportError:
            pass
        if time.monotonic() > until:
            proc.kill()
            pytest.fail("claimant serve did not start: " + log.read_text())
        time.sleep(0.2)


def burst(url: str, stop: threading.Event, outcomes: list[tuple[str, Any]]) -> None:
    with httpx.Client(base_url=url, headers=ADMIN, timeout=60) as client:
        while not stop.is_set():
            body = {"groups": [{"resources": {"VCPU": 1}}]}
            try:
                r = client.post("/v1/requests", json=body)
            except httpx.TransportError as exc:
                outcomes.append(("unknown", type(exc).__name__))
                return  # the server is going away
            if r.status_code == 201:
                outcomes.append(("ok", r.json()["uuid"]))
            else:
                outcomes.append(("fail", (r.status_code, r.json()["error"]["code"])))


def check_consistent(store: Store) -> None:
    providers = store.list_providers()
    assert len(providers) == PROVIDERS
    for p in providers:
        for rc, u in store.get_usage(p.uuid).usages.items():
            assert u.used <= u.capacity, f"{p.name} {rc}: {u.used} > {u.capacity}"
    requests = store.list_requests(limit=1000)
    for req in requests:
        held = {c.uuid for c in store.list_claims(request_uuid=req.uuid)}
        # Finished or rolled back, never half-done.
        assert req.status in (RequestStatus.SCHEDULED, RequestStatus.FAILED), req.history
        if req.status == RequestStatus.SCHEDULED:
            assert held == set(req.claims)
        else:
            assert held == set(), req.history


def test_sigterm_during_a_burst_exits_in_time_and_leaves_the_store_consistent(
    store_url: str, tmp_path: Path
) -> None:
    proc, url, log = start(store_url, tmp_path)
    try:
        with httpx.Client(base_url=url, headers=ADMIN) as client:
            for i in range(PROVIDERS):
                inventories = {"VCPU": {"total": VCPUS}, "MEMORY_MB": {"total": 4096}}
                body = {"name": f"cn{i}", "inventories": inventories}
                r = client.post("/v1/providers", json=body)
                assert r.status_code == 201, r.text
        stop = threading.Event()
        outcomes: list[tuple[str, Any]] = []
        threads = [
            threading.Thread(target=burst, args=(url, stop, outcomes), daemon=True)
            for _ in range(6)
        ]
        for t in threads:
            t.start()
        # SIGTERM once the burst has placed something, with more in flight.
        until = time.monotonic() + 60
        while not any(kind == "ok" for kind, _ in outcomes) and time.monotonic() < until:
            time.sleep(0.05)
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=GRACEFUL + 30)
        took = time.monotonic() - signalled
        stop.set()
        for t in threads:
            t.join(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # Within the graceful timeout; a generous second for the interpreter to go.
    assert took < GRACEFUL + 1.0, log.read_text()
    placed = {u for kind, u in outcomes if kind == "ok"}
    assert placed, outcomes
    # What was in flight at the end of the drain was cut and told so.
    assert ("fail", (503, "deadline_exceeded")) in outcomes, outcomes

    store = open_store(store_url)
    try:
        check_consistent(store)
        for uuid in placed:
            assert store.get_request(uuid).status == RequestStatus.SCHEDULED
        # Nothing outlives its TTL: once it passed, no unconfirmed claim is left.
        real = store.clock
        store.clock = lambda: real() + CLAIM_TTL + 1  # type: ignore[method-assign]
        store.expire_claims()
        assert store.list_claims() == []
    finally:
        store.close()
