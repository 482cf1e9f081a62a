"""A runner that points Nova's report-client functional tests at claimant.

``nova/tests/functional/test_report_client.py`` builds its Placement with
``nova.tests.functional.fixtures.PlacementFixture``, a subclass of
Placement's in-process ``placement.tests.functional.fixtures.placement.
PlacementFixture`` (a fresh database and the Placement WSGI app behind
wsgi-intercept). This runner provides that base class, and nothing else
changes: Nova's subclass still sends every ``SchedulerReportClient`` call
through a keystoneauth adapter, to a live ``claimant serve`` whose store is
emptied before each test.

Runs inside Nova's virtualenv (see ``requirements.txt``)::

    python wiring.py --json OUT.json nova.tests.functional.test_report_client

configured by the environment:

- ``CLAIMANT_NOVA_ENDPOINT``: the served Placement API's base URL;
- ``CLAIMANT_NOVA_STORE``: that service's store URL (unset: not emptied
  between tests, which then see each other's providers);
- ``CLAIMANT_NOVA_PYTHON``: a Python with claimant installed, to empty it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import types
import unittest
from pathlib import Path
from typing import Any

import fixtures

# The osc suite's helper: one long-lived process that empties the store.
RESET_HELPER = Path(__file__).resolve().parent.parent / "osc" / "reset_store.py"

_resetter: subprocess.Popen[str] | None = None


def _reset_store() -> None:
    global _resetter
    if not os.environ.get("CLAIMANT_NOVA_STORE"):
        return
    if _resetter is None:
        _resetter = subprocess.Popen(
            [
                os.environ["CLAIMANT_NOVA_PYTHON"],
                str(RESET_HELPER),
                os.environ["CLAIMANT_NOVA_STORE"],
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

    def __init__(
        self, token: str = "admin", conf_fixture: Any = None, db: bool = True, **_: Any
    ) -> None:
        super().__init__()
        self.token = token
        self.conf_fixture = conf_fixture
        self.db = db

    def _configure_placement(self, conf_fixture: Any) -> None:
        """Placement's hook for its database options: nothing to configure here."""

    def _setUp(self) -> None:
        _reset_store()
        self.endpoint = os.environ["CLAIMANT_NOVA_ENDPOINT"]


def _install() -> None:
    names = (
        "placement",
        "placement.tests",
        "placement.tests.functional",
        "placement.tests.functional.fixtures",
    )
    for name in names:
        sys.modules.setdefault(name, types.ModuleType(name))
    module = types.ModuleType("placement.tests.functional.fixtures.placement")
    module.PlacementFixture = PlacementFixture  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    sys.modules["placement.tests.functional.fixtures"].placement = module  # type: ignore[attr-defined]


def _outcomes(result: unittest.TestResult, ran: list[str]) -> dict[str, dict[str, str]]:
    out = {name: {"outcome": "passed", "detail": ""} for name in ran}
    for kind, items in (
        ("failed", result.failures),
        ("failed", result.errors),
        ("failed", result.unexpectedSuccesses),
        ("skipped", result.skipped),
    ):
        for item in items:
            test, detail = item if isinstance(item, tuple) else (item, "unexpected success")
            out[test.id()] = {"outcome": kind, "detail": detail}
    return out


class _Recording(unittest.TextTestResult):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ran: list[str] = []

    def startTest(self, test: unittest.TestCase) -> None:
        self.ran.append(test.id())
        super().startTest(test)


def main() -> int:
    """Run the named test modules (or ids); write ``{test id: outcome}`` as JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", required=True, help="file to write the outcomes to")
    parser.add_argument("tests", nargs="+", help="test module names or test ids")
    args = parser.parse_args()
    _install()
    try:
        suite = unittest.defaultTestLoader.loadTestsFromNames(args.tests)
        runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2, resultclass=_Recording)
        result = runner.run(suite)
    finally:
        if _resetter is not None:
            _resetter.terminate()
            _resetter.wait(10)
    assert isinstance(result, _Recording)
    Path(args.json).write_text(json.dumps(_outcomes(result, result.ran), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
