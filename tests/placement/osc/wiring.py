"""A pytest plugin that points osc-placement's functional tests at claimant.

osc-placement's ``base.py`` imports Placement's in-process fixtures
(``placement.tests.functional.fixtures.placement.PlacementFixture`` and
``capture.Logging``). This plugin provides those two names, and nothing
else changes: the tests drive the real ``openstack`` shell, in process, at a
live ``claimant serve`` whose store is emptied before each test, as
Placement's fixture gives each test a fresh database.

Runs inside the client's virtualenv (see ``requirements.txt``), configured by
the environment:

- ``CLAIMANT_OSC_ENDPOINT``: the served Placement API's base URL;
- ``CLAIMANT_OSC_STORE``: that service's store URL;
- ``CLAIMANT_OSC_PYTHON``: a Python with claimant installed, to empty it;
- ``CLAIMANT_OSC_RECORD`` (optional): a file to append every error answer
  to, one JSON line each, to compare claimant's texts with Placement's (run
  once against each, with ``CLAIMANT_OSC_STORE`` unset for Placement).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import types
from pathlib import Path

import fixtures

_resetter: subprocess.Popen[str] | None = None


def _reset_store() -> None:
    global _resetter
    if not os.environ.get("CLAIMANT_OSC_STORE"):
        return  # a service we cannot empty (Placement itself, for --record)
    if _resetter is None:
        _resetter = subprocess.Popen(
            [
                os.environ["CLAIMANT_OSC_PYTHON"],
                str(Path(__file__).with_name("reset_store.py")),
                os.environ["CLAIMANT_OSC_STORE"],
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
    assert _resetter.stdin is not None and _resetter.stdout is not None
    _resetter.stdin.write("reset\n")
    _resetter.stdin.flush()
    if _resetter.stdout.readline().strip() != "ok":
        raise RuntimeError("could not empty the claimant store")


class PlacementFixture(fixtures.Fixture):  # type: ignore[misc]
    """Placement's fixture, served by claimant: an empty store, an endpoint, a token."""

    def _setUp(self) -> None:
        _reset_store()
        self.endpoint = os.environ["CLAIMANT_OSC_ENDPOINT"]
        # noauth2: the token "admin" is the admin caller, as in Placement.
        self.token = "admin"


class Logging(fixtures.Fixture):  # type: ignore[misc]
    """Placement's log capture: keeps the client's DEBUG logs out of the output."""

    def _setUp(self) -> None:
        self.useFixture(fixtures.FakeLogger(level=logging.INFO))


def _install() -> None:
    names = (
        "placement",
        "placement.tests",
        "placement.tests.functional",
        "placement.tests.functional.fixtures",
    )
    for name in names:
        sys.modules.setdefault(name, types.ModuleType(name))
    for leaf, cls in (("placement", PlacementFixture), ("capture", Logging)):
        module = types.ModuleType(f"placement.tests.functional.fixtures.{leaf}")
        setattr(module, cls.__name__, cls)
        sys.modules[module.__name__] = module
        setattr(sys.modules["placement.tests.functional.fixtures"], leaf, module)


def _record_errors(path: str) -> None:
    from keystoneauth1 import session

    request = session.Session.request

    def recording(self: object, url: str, method: str, **kwargs: object) -> object:
        try:
            resp = request(self, url, method, **kwargs)
        except Exception as exc:
            resp = getattr(exc, "response", None)
            if resp is not None:
                _append(path, method, url, resp)
            raise
        if resp.status_code >= 400:
            _append(path, method, url, resp)
        return resp

    session.Session.request = recording


def _append(path: str, method: str, url: str, resp: object) -> None:
    test = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]
    line = {
        "test": test,
        "method": method,
        "status": getattr(resp, "status_code", None),
        "text": getattr(resp, "text", ""),
    }
    with open(path, "a") as f:
        f.write(json.dumps(line) + "\n")


def pytest_configure(config: object) -> None:
    _install()
    if path := os.environ.get("CLAIMANT_OSC_RECORD"):
        _record_errors(path)


def pytest_unconfigure(config: object) -> None:
    if _resetter is not None:
        _resetter.terminate()
        _resetter.wait(10)
