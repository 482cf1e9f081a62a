"""Nova's own Placement client tests against a live ``claimant serve``.

``nova/tests/functional/test_report_client.py`` from the ``nova`` package
(18 tests: ``SchedulerReportClient`` creating provider trees, inventories,
traits, aggregates, allocation candidates, claims, reshapes, moves and
deletions) runs unchanged in Nova's own virtualenv (``scripts/test`` builds
it from ``tests/placement/nova/requirements.txt``), on SQLite and on
Cassandra, each test on an emptied store. Only the wiring differs:
``nova/wiring.py`` stands in for Placement's in-process fixture and runs the
module with unittest (Nova's ``TestCase`` deletes its own attributes on
clean-up, which pytest's unittest support does not survive; Nova runs it
with stestr).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from platformdirs import user_cache_dir

from tests.api.serve_support import serve
from tests.conftest import skip_unless_built

NOVA_DIR = Path(__file__).with_name("nova")
VENV = Path(os.environ.get("CLAIMANT_NOVA_VENV") or Path(user_cache_dir("claimant")) / "nova-venv")
VENV_PYTHON = VENV / "bin" / "python"
MODULE = "nova.tests.functional.test_report_client"

# Tests of the module that do not run against claimant, with the reason.
# Empty: every test runs and must pass.
EXPECTED_SKIPS: dict[str, str] = {}


def _has_suite() -> bool:
    if not VENV_PYTHON.is_file():
        return False
    probe = subprocess.run(
        [str(VENV_PYTHON), "-c", "import nova, oslotest, ddt, wsgi_intercept"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


pytestmark = skip_unless_built(
    _has_suite(),
    "Nova's test venv is missing (scripts/test builds it)",
)


@pytest.fixture(params=["sqlite", pytest.param("cassandra", marks=pytest.mark.cassandra)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None  # serve's own SQLite file
        return
    yield request.getfixturevalue("cassandra_url")


def test_nova_report_client_functional_tests_pass(tmp_path: Path, store_url: str | None) -> None:
    assert _has_suite(), f"no Nova test venv at {VENV}: run scripts/test"
    results = tmp_path / "nova.json"
    with serve(tmp_path, store_url=store_url) as srv:
        env = {
            **os.environ,
            "CLAIMANT_NOVA_ENDPOINT": srv.url,
            "CLAIMANT_NOVA_STORE": srv.store_url,
            "CLAIMANT_NOVA_PYTHON": sys.executable,
        }
        out = subprocess.run(
            [
                str(VENV_PYTHON),
                "-W",
                "ignore::DeprecationWarning",
                str(NOVA_DIR / "wiring.py"),
                "--json",
                str(results),
                MODULE,
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=900,
        )
    log = out.stdout[-4000:] + out.stderr[-4000:]
    assert results.is_file(), log
    outcomes: dict[str, dict[str, str]] = json.loads(results.read_text())
    failed = {name: o["detail"] for name, o in outcomes.items() if o["outcome"] == "failed"}
    skipped = {name: o["detail"] for name, o in outcomes.items() if o["outcome"] == "skipped"}
    passed = [name for name, o in outcomes.items() if o["outcome"] == "passed"]
    details = "\n".join(failed.values())[-6000:]
    served = srv.log.read_text()[-3000:]
    assert not failed, f"{len(failed)} failed: {list(failed)}\n{details}\nserve's log:\n{served}"
    assert skipped.keys() == EXPECTED_SKIPS.keys(), skipped
    assert len(passed) >= 18, f"only {len(passed)} tests passed:\n{log}"
