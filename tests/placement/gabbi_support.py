"""Run OpenStack Placement's own gabbi YAML files against claimant over real HTTP.

The YAML files come from the ``openstack-placement`` wheel, fetched into a
cache directory with pip (never installed: it is not a dependency of
claimant). Each file runs on a fresh, empty SQLite store, with the
environment variables Placement's ``APIFixture`` sets.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import types
import unittest
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from gabbi import fixture as gabbi_fixture
from gabbi import handlers, suitemaker

from claimant.api.placement import PlacementApp, create_placement_app
from claimant.api.placement.routes import placement_rules
from claimant.api.policy import Policy, default_policy
from claimant.store import open_store

PLACEMENT_VERSION = "16.0.0"
GABBITS_IN_WHEEL = "placement/tests/functional/gabbits/"

# Tests we skip, with the reason (also listed in docs/placement.md).
SKIPS: dict[tuple[str, str], str] = {
    ("basic-http.yaml", "bad content length not int"): (
        "the HTTP server (h11/httptools) rejects a non-integer Content-Length before "
        "any application sees the request"
    ),
}
_RESHAPE_GENERATIONS = (
    "Placement bumps a provider's generation up to three times in one reshape "
    "(interim inventory, allocations, final inventory); claimant bumps each provider "
    "it changes once, and the file reuses Placement's literal generations"
)
for _name in (
    "get usages on parent after move",
    "get usages on child after move",
    "consolidate inventory and allocations",
    "get usages on parent after move back",
    "get usages on child after move back",
    "reshape with mappings",
):
    SKIPS[("reshaper.yaml", _name)] = _RESHAPE_GENERATIONS


def cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(
        os.environ.get("CLAIMANT_PLACEMENT_CACHE")
        or Path(user_cache_dir("claimant")) / f"openstack-placement-{PLACEMENT_VERSION}"
    )


def gabbits_dir(fetch: bool = True) -> Path | None:
    """The directory of Placement's YAML files; downloads the wheel if allowed."""
    base = cache_dir()
    target = base / "gabbits"
    if target.is_dir() and any(target.glob("*.yaml")):
        return target
    wheels = sorted(base.glob("openstack_placement-*.whl"))
    if not wheels and fetch:
        base.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                f"openstack-placement=={PLACEMENT_VERSION}",
                "-d",
                str(base),
            ],
            check=False,
        )
        wheels = sorted(base.glob("openstack_placement-*.whl"))
    if not wheels:
        return None
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheels[-1]) as zf:
        for name in zf.namelist():
            if name.startswith(GABBITS_IN_WHEEL) and name.endswith(".yaml"):
                (target / Path(name).name).write_bytes(zf.read(name))
    return target


def fixtures_of(path: Path) -> list[str]:
    data = yaml.safe_load(path.read_text()) or {}
    return list(data.get("fixtures") or [])


def api_fixture_files(directory: Path) -> list[Path]:
    """The files that need only Placement's empty-database fixture."""
    return sorted(p for p in directory.glob("*.yaml") if fixtures_of(p) == ["APIFixture"])


APIFIXTURE_ENV = (
    "RP_UUID",
    "RP_NAME",
    "RP_UUID1",
    "RP_NAME1",
    "RP_UUID2",
    "RP_NAME2",
    "PROJECT_ID",
    "ADMIN_PROJECT_ID",
    "SERVICE_PROJECT_ID",
    "USER_ID",
    "PROJECT_ID_ALT",
    "USER_ID_ALT",
    "INSTANCE_UUID",
    "MIGRATION_UUID",
    "CONSUMER_UUID",
    "PARENT_PROVIDER_UUID",
    "ALT_PARENT_PROVIDER_UUID",
)


def set_apifixture_env() -> None:
    for name in APIFIXTURE_ENV:
        os.environ[name] = str(uuid.uuid4())
    os.environ["CUSTOM_RES_CLASS"] = "CUSTOM_IRON_NFV"
    os.environ["CUSTOM_RES_CLASS1"] = "CUSTOM_IRON_NFV1"
    os.environ["CUSTOM_RES_CLASS2"] = "CUSTOM_IRON_NFV2"


class LiveServer:
    """claimant's Placement app under a real uvicorn server on loopback.
    ``store_url`` names one store to serve (reset() empties it); without it
    every reset() opens a fresh SQLite file."""

    def __init__(self, workdir: Path, store_url: str | None = None) -> None:
        self.workdir = workdir
        self.store_url = store_url
        self.count = 0
        self.app: PlacementApp = create_placement_app(self.fresh_store())
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        import uvicorn

        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def fresh_store(self) -> Any:
        self.count += 1
        url = self.store_url or f"sqlite:///{self.workdir}/placement-{self.count}.db"
        store = open_store(url)
        store.migrate()
        return store

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        if self.store_url:
            self.app.store.reset()
            return
        old = self.app.store
        self.app.store = self.fresh_store()
        old.close()

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.app.store.close()


@contextmanager
def live_server(store_url: str | None = None) -> Iterator[LiveServer]:
    with tempfile.TemporaryDirectory(prefix="claimant-placement-") as tmp:
        server = LiveServer(Path(tmp), store_url)
        server.start()
        try:
            yield server
        finally:
            server.stop()


EXTRA_FIXTURES = (
    "OpenPolicyFixture",
    "LegacyRBACPolicyFixture",
    "SecureRBACPolicyFixture",
    "CORSFixture",
)


def preloaded_files(directory: Path) -> list[Path]:
    """Files whose fixtures pre-load data we can load through the API."""
    from tests.placement.placement_fixtures import LOADERS

    return sorted(
        p
        for p in directory.glob("*.yaml")
        if (fx := fixtures_of(p))
        and fx != ["APIFixture"]
        and all(f in LOADERS or f in EXTRA_FIXTURES for f in fx)
    )


def fixture_module(server: LiveServer) -> types.ModuleType:
    from tests.placement.placement_fixtures import LOADERS, Loader

    class APIFixture(gabbi_fixture.GabbiFixture):
        """Placement's APIFixture: an empty store and its environment variables."""

        def start_fixture(self) -> None:
            server.reset()
            set_apifixture_env()

    module = types.ModuleType("claimant_placement_fixtures")
    module.APIFixture = APIFixture  # type: ignore[attr-defined]
    for name, load in LOADERS.items():

        def start(self: gabbi_fixture.GabbiFixture, load: Any = load) -> None:
            APIFixture.start_fixture(self)  # type: ignore[arg-type]
            loader = Loader(f"http://127.0.0.1:{server.port}")
            try:
                os.environ.update(load(loader, dict(os.environ)))
            finally:
                loader.close()

        setattr(module, name, type(name, (APIFixture,), {"start_fixture": start}))

    class OpenPolicyFixture(APIFixture):
        """Every rule open to any authenticated caller ("@" in oslo.policy)."""

        def start_fixture(self) -> None:
            super().start_fixture()
            server.app.policy = open_policy()

        def stop_fixture(self) -> None:
            server.app.policy = default_policy()

    class SecureRBACPolicyFixture(APIFixture):
        """Placement's new policy defaults (enforce_new_defaults on)."""

        def start_fixture(self) -> None:
            super().start_fixture()
            server.app.policy = upstream_policy(enforce_new_defaults=True)

        def stop_fixture(self) -> None:
            server.app.policy = default_policy()

    class LegacyRBACPolicyFixture(APIFixture):
        """Placement's legacy policy defaults (its own default)."""

        def start_fixture(self) -> None:
            super().start_fixture()
            server.app.policy = upstream_policy(enforce_new_defaults=False)

        def stop_fixture(self) -> None:
            server.app.policy = default_policy()

    class CORSFixture(APIFixture):
        """CORS on for one origin, as Placement's CORSFixture configures it."""

        def start_fixture(self) -> None:
            super().start_fixture()
            server.app.cors_origins = frozenset({"http://valid.example.com"})
            server.app.cors_headers = frozenset({"openstack-api-version"})

        def stop_fixture(self) -> None:
            server.app.cors_origins = frozenset()

    module.CORSFixture = CORSFixture  # type: ignore[attr-defined]
    module.OpenPolicyFixture = OpenPolicyFixture  # type: ignore[attr-defined]
    module.SecureRBACPolicyFixture = SecureRBACPolicyFixture  # type: ignore[attr-defined]
    module.LegacyRBACPolicyFixture = LegacyRBACPolicyFixture  # type: ignore[attr-defined]
    return module


def open_policy() -> Policy:
    """Every rule open to any authenticated caller ("@"), scope unchecked."""
    return Policy({r.name: "@" for r in placement_rules()}, enforce_scope=False)


def upstream_policy(enforce_new_defaults: bool) -> Policy:
    """OpenStack Placement's own defaults, as an operator's policy file over
    claimant's: any service (or admin) may do anything, a project reader may
    read its project's usages; with the new defaults only a service reshapes."""
    rules = {r.name: "role:admin or role:service" for r in placement_rules()}
    rules["placement:usages"] = (
        "role:admin or role:service or (role:reader and project_id:%(project_id)s)"
    )
    if enforce_new_defaults:
        rules["placement:reshaper:reshape"] = "role:service"
    return default_policy().override(rules)


def run_file(server: LiveServer, path: Path) -> unittest.TestResult:
    suite_dict = yaml.safe_load(path.read_text())
    for test in suite_dict.get("tests", []):
        reason = SKIPS.get((path.name, test.get("name", "")))
        if reason:
            test["skip"] = reason
    handler_objects = [h() for h in handlers.RESPONSE_HANDLERS]
    suite = suitemaker.test_suite_from_dict(
        unittest.TestLoader(),
        path.stem,
        suite_dict,
        str(path.parent),
        "127.0.0.1",
        server.port,
        fixture_module(server),
        None,
        handlers=handler_objects,
    )
    result = unittest.TestResult()
    suite.run(result)
    return result


def describe(result: unittest.TestResult) -> str:
    out = io.StringIO()
    for test, trace in result.failures + result.errors:
        out.write(f"--- {test.id()}\n{trace[-3000:]}\n")
    return out.getvalue()
