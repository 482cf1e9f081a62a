"""osc-placement's own functional test suite (160 tests of the ``openstack
resource ...`` commands operators use) against a live ``claimant serve``.

The suite runs unchanged in the client's virtualenv (``scripts/test`` builds
it from ``tests/placement/osc/requirements.txt``); only its wiring differs:
``osc/wiring.py`` stands in for Placement's in-process fixture, pointing the
client at the served API and emptying the store before each test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from platformdirs import user_cache_dir

from tests.api.serve_support import serve
from tests.conftest import skip_unless_built

OSC_DIR = Path(__file__).with_name("osc")
VENV = Path(os.environ.get("CLAIMANT_OSC_VENV") or Path(user_cache_dir("claimant")) / "osc-venv")
VENV_PYTHON = VENV / "bin" / "python"

# Tests of the suite that do not run against claimant, with the reason.
# Empty: every test runs and must pass.
EXPECTED_SKIPS: dict[str, str] = {}


def _has_suite() -> bool:
    if not VENV_PYTHON.is_file():
        return False
    probe = subprocess.run(
        [str(VENV_PYTHON), "-c", "import osc_placement.tests.functional, oslotest, pytest"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


pytestmark = skip_unless_built(
    _has_suite(),
    "osc-placement's test venv is missing (scripts/test builds it)",
)


def test_osc_placement_functional_suite_passes(tmp_path: Path) -> None:
    assert _has_suite(), f"no osc-placement test venv at {VENV}: run scripts/test"
    junit = tmp_path / "osc.xml"
    with serve(tmp_path) as srv:
        env = {
            **os.environ,
            "CLAIMANT_OSC_ENDPOINT": srv.url,
            "CLAIMANT_OSC_STORE": srv.store_url,
            "CLAIMANT_OSC_PYTHON": sys.executable,
            "PYTHONPATH": str(OSC_DIR),
            # test_plugin runs the `openstack` executable, as tox would find it.
            "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        out = subprocess.run(
            [
                str(VENV_PYTHON),
                "-m",
                "pytest",
                "-p",
                "wiring",
                "-p",
                "no:cacheprovider",
                "--pyargs",
                "osc_placement.tests.functional",
                "-q",
                "-W",
                "ignore::DeprecationWarning",
                f"--junitxml={junit}",
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=900,
        )
    assert junit.is_file(), out.stdout[-3000:] + out.stderr[-3000:]
    cases = ET.parse(junit).getroot().iter("testcase")
    failed, skipped, passed = [], {}, 0
    for case in cases:
        name = f"{case.get('classname')}.{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(name)
        elif (skip := case.find("skipped")) is not None:
            skipped[name] = skip.get("message", "")
        else:
            passed += 1
    assert not failed, f"{len(failed)} failed: {failed}\n{out.stdout[-4000:]}"
    assert skipped.keys() == EXPECTED_SKIPS.keys(), skipped
    assert passed >= 160, f"only {passed} tests ran: {out.stdout[-2000:]}"
