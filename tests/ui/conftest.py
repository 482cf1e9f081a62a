"""The dashboard in a real Chromium (Debian's ``chromium``, driven by
Playwright with ``executable_path``, so nothing is downloaded), against a
real ``claimant serve`` on SQLite holding a small cloud.

Screenshots go to docs/img/ only when ``CLAIMANT_UI_SCREENSHOTS=1``.
``CLAIMANT_REQUIRE_BROWSER=1`` (set by scripts/test, which installs
chromium) turns a missing browser into a failure instead of a skip."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from claimant.store import Store, open_store
from tests.api.serve_support import Served, serve

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "img"
AGG_A = "a9a9a9a9-0000-4000-8000-00000000000a"
AGG_B = "b9b9b9b9-0000-4000-8000-00000000000b"
LOOPBACK = ("127.0.0.1", "localhost")


def chromium_path() -> str | None:
    explicit = os.environ.get("CLAIMANT_CHROMIUM")
    if explicit:
        return explicit
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _unavailable(reason: str) -> None:
    if os.environ.get("CLAIMANT_REQUIRE_BROWSER") == "1":
        pytest.fail(reason + " (CLAIMANT_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


# Package, not session: Playwright's sync API leaves its event loop running in
# the thread until it stops, and asyncio.run() refuses to start beside it, so
# any later test of that process that runs an event loop failed
# (tests/api/test_limits.py, once xdist put the two on one worker).
@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    path = chromium_path()
    if path is None:
        _unavailable(
            "no Chromium: apt-get install chromium (scripts/test does), or set CLAIMANT_CHROMIUM"
        )
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=["--disable-gpu"])
        try:
            yield b
        finally:
            b.close()


@dataclass
class Cloud:
    """A small cloud: two aggregates of racks, a NUMA/GPU host, hosts whose
    agents are up, stale, down or absent, a disabled host, requests that
    were placed (some confirmed) and one that found no host."""

    served: Served
    hosts: dict[str, str] = field(default_factory=dict)  # root name -> uuid
    children: dict[str, str] = field(default_factory=dict)
    requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed_request: str = ""
    alive: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.served.url

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"x-auth-token": "admin"}, timeout=30)

    def store(self) -> Store:
        return open_store(self.served.store_url)

    def beat(self) -> None:
        """The agents of the "up" hosts heartbeat, as they would every few seconds."""
        st = self.store()
        try:
            for u in self.alive:
                st.heartbeat(u)
        finally:
            st.close()


def _create(api: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    r = api.post("/v1/providers", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def _populate(cloud: Cloud) -> None:
    compute = {
        "VCPU": {"total": 16, "allocation_ratio": 2.0},
        "MEMORY_MB": {"total": 65536, "reserved": 2048},
        "DISK_GB": {"total": 1000},
    }
    with cloud.api() as api:
        # Aggregate A has a name, B only its uuid: the pages show both kinds.
        r = api.post("/v1/aggregates", json={"name": "rack-a", "uuid": AGG_A})
        assert r.status_code == 201, r.text
        for rack, agg in (("a", AGG_A), ("b", AGG_B)):
            for i in range(1, 5):
                name = f"rack-{rack}-{i}"
                p = _create(
                    api,
                    {
                        "name": name,
                        "inventories": compute,
                        "aggregates": [agg],
                        "traits": ["HW_CPU_X86_AVX2"],
                        "attributes": {"cpu_arch": "x86_64"},
                        "enabled": name != "rack-b-4",
                    },
                )
                cloud.hosts[name] = p["uuid"]
        root = _create(api, {"name": "numa-gpu-1", "aggregates": [AGG_B]})
        cloud.hosts["numa-gpu-1"] = root["uuid"]
        for child, inv in (
            ("numa-gpu-1-numa0", {"VCPU": {"total": 8}, "MEMORY_MB": {"total": 32768}}),
            ("numa-gpu-1-numa1", {"VCPU": {"total": 8}, "MEMORY_MB": {"total": 32768}}),
            ("numa-gpu-1-gpu0", {"VGPU": {"total": 4}}),
        ):
            c = _create(api, {"name": child, "parent_uuid": root["uuid"], "inventories": inv})
            cloud.children[child] = c["uuid"]
        edge = _create(api, {"name": "edge-1", "inventories": {"VCPU": {"total": 8}}})
        cloud.hosts["edge-1"] = edge["uuid"]

        st = cloud.store()
        try:
            now = st.clock()
            cloud.alive = [cloud.hosts[f"rack-a-{i}"] for i in (1, 2, 3)] + [
                cloud.hosts[f"rack-b-{i}"] for i in (2, 3, 4)
            ]
            st.heartbeat(cloud.hosts["rack-a-4"], at=now - 200)  # stale
            st.heartbeat(cloud.hosts["rack-b-1"], at=now - 7200)  # down
        finally:
            st.close()
        cloud.beat()

        def place(key: str, body: dict[str, Any]) -> dict[str, Any]:
            r = api.post("/v1/requests", json=body)
            assert r.status_code == 201, r.text
            cloud.requests[key] = r.json()
            return dict(r.json())

        web = place(
            "web",
            {
                "groups": [
                    {
                        "resources": {"VCPU": 8, "MEMORY_MB": 16384},
                        "required_traits": ["HW_CPU_X86_AVX2"],
                    }
                ],
                "count": 4,
                "hints": {"strategy": "pack"},
            },
        )
        for pl in web["placements"][:2]:
            for claim in pl["claims"]:
                assert api.post(f"/v1/claims/{claim['uuid']}/confirm").status_code == 200
        place(
            "db",
            {
                "groups": [{"resources": {"VCPU": 12, "MEMORY_MB": 40000, "DISK_GB": 600}}],
                "count": 2,
                "hints": {"strategy": "spread"},
            },
        )
        place("gpu", {"groups": [{"resources": {"VGPU": 3}}]})
        r = api.post("/v1/requests", json={"groups": [{"resources": {"VCPU": 64}}]})
        assert r.status_code == 409, r.text
        cloud.failed_request = r.json()["error"]["details"]["request_uuid"]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    tmp = tmp_path_factory.mktemp("ui")
    with serve(tmp) as served:
        c = Cloud(served)
        _populate(c)
        yield c


class Watched:
    """A page whose console errors, CSP violations and requests that left
    loopback are recorded (and the latter refused)."""

    def __init__(self, context: Any) -> None:
        self.context = context
        self.page = context.new_page()
        self.errors: list[str] = []
        self.external: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        context.route("**/*", self._route)

    def _console(self, msg: Any) -> None:
        if msg.type == "error":
            self.errors.append(msg.text)

    def _route(self, route: Any) -> None:
        host = httpx.URL(route.request.url).host
        if host in LOOPBACK:
            route.continue_()
        else:
            self.external.append(route.request.url)
            route.abort()

    def clean(self) -> None:
        assert self.external == [], self.external
        assert self.errors == [], self.errors


@pytest.fixture
def watched(browser: Any) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    try:
        yield Watched(context)
    finally:
        context.close()


def screenshot(page: Any, name: str) -> None:
    if os.environ.get("CLAIMANT_UI_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"ui-{name}.png"), full_page=True)
