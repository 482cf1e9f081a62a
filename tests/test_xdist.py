"""The suite under pytest-xdist runs every test one process runs.

pytest 9.2 builds a test's node id from its ``originalname``; schemathesis
4.32 passes the bare function name there, so its 39 per-operation items of
tests/api/test_schemathesis.py all had one id. xdist's group scheduler keys
its queue by node id and ran one of them: an xdist run passed green with 38
operations never tested."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULE = "tests/api/test_schemathesis.py"

pytest.importorskip("schemathesis")
pytest.importorskip("xdist")


def _pytest(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _collected(path: str) -> list[str]:
    out = _pytest("--collect-only", "-q", path)
    assert out.returncode == 0, out.stdout + out.stderr
    return [line for line in out.stdout.splitlines() if line.startswith(path + "::")]


def test_schemathesis_items_have_one_id_each() -> None:
    ids = _collected(MODULE)
    assert len(ids) > 10, ids
    assert len(set(ids)) == len(ids), sorted(i for i in set(ids) if ids.count(i) > 1)
    assert all(i.endswith("]") for i in ids), ids[:3]  # "[GET /providers]"


def test_every_schemathesis_operation_runs_under_xdist(tmp_path: Path) -> None:
    ids = _collected(MODULE)
    junit = tmp_path / "junit.xml"
    out = _pytest("-n", "2", "--dist", "loadgroup", f"--junitxml={junit}", MODULE)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    ran = [
        f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name')}"
        for case in ET.parse(junit).getroot().iter("testcase")
    ]
    assert sorted(ran) == sorted(ids)


def test_a_duplicate_node_id_stops_the_run(tmp_path: Path) -> None:
    # Any plugin that makes two items of one id fails collection, by name,
    # instead of running one of them under xdist.
    mod = tmp_path / "test_twins.py"
    mod.write_text("def test_one():\n    pass\n")
    (tmp_path / "conftest.py").write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
        "import pytest\n"
        "from tests.conftest import pytest_collection_modifyitems  # noqa: F401\n\n"
        "def pytest_pycollect_makeitem(collector, name, obj):\n"
        "    if name == 'test_one':\n"
        "        return [pytest.Function.from_parent(collector, name=name, callobj=obj)\n"
        "                for _ in range(2)]\n"
    )
    out = _pytest("--collect-only", "-q", "--rootdir", str(tmp_path), str(mod))
    assert out.returncode != 0
    assert "test_twins.py::test_one" in out.stdout + out.stderr
    assert "more than one test" in out.stdout + out.stderr
