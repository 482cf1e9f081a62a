"""Smoke test with the real OpenStack client and its osc-placement plugin
against claimant's Placement API over HTTP.

The client is not a dependency of claimant. Install it into a test-only
virtualenv (see docs/placement.md):

    python3 -m venv ~/.cache/claimant/osc-venv
    ~/.cache/claimant/osc-venv/bin/pip install osc-placement python-openstackclient

or point ``CLAIMANT_OSC`` at an ``openstack`` executable that has osc-placement.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.placement import gabbi_support as gs


def _find_openstack() -> str | None:
    from platformdirs import user_cache_dir

    for candidate in (
        os.environ.get("CLAIMANT_OSC"),
        str(Path(user_cache_dir("claimant")) / "osc-venv" / "bin" / "openstack"),
        shutil.which("openstack"),
    ):
        if candidate and Path(candidate).is_file():
            probe = subprocess.run(
                [candidate, "resource", "provider", "list", "--help"],
                capture_output=True,
                check=False,
            )
            if probe.returncode == 0:
                return candidate
    return None


OPENSTACK = _find_openstack()
pytestmark = pytest.mark.skipif(
    OPENSTACK is None,
    reason="python-openstackclient with osc-placement not installed "
    "(pip install osc-placement python-openstackclient into a test venv; see docs/placement.md)",
)


@pytest.fixture(scope="module")
def server() -> Iterator[gs.LiveServer]:
    with gs.live_server() as s:
        yield s


def osc(server: gs.LiveServer, *args: str, parse: bool = True) -> Any:
    # admin_token: keystoneauth sends the token as X-Auth-Token to the given
    # endpoint, which is how Placement's noauth2 mode is reached.
    cmd = [
        str(OPENSTACK),
        "--os-auth-type",
        "admin_token",
        "--os-token",
        "admin",
        "--os-endpoint",
        server.base_url,
        "--os-placement-api-version",
        "1.39",
        *args,
    ]
    if parse:
        cmd += ["-f", "json"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
    assert out.returncode == 0, f"{' '.join(args)}: {out.stderr}"
    return json.loads(out.stdout) if parse and out.stdout.strip() else out.stdout


def test_osc_placement_lifecycle(server: gs.LiveServer) -> None:
    rp = osc(server, "resource", "provider", "create", "osc-cn1")
    uuid = rp["uuid"]
    assert rp["generation"] == 0 and rp["root_provider_uuid"] == uuid
    child = osc(server, "resource", "provider", "create", "osc-numa0", "--parent-provider", uuid)
    assert child["parent_provider_uuid"] == uuid

    invs = osc(
        server,
        "resource",
        "provider",
        "inventory",
        "set",
        uuid,
        "--resource",
        "VCPU=8",
        "--resource",
        "VCPU:allocation_ratio=2.0",
        "--resource",
        "MEMORY_MB=4096",
    )
    assert {i["resource_class"]: i["total"] for i in invs} == {"VCPU": 8, "MEMORY_MB": 4096}

    osc(server, "trait", "create", "CUSTOM_OSC_SMOKE", parse=False)
    traits = osc(
        server, "resource", "provider", "trait", "set", uuid, "--trait", "CUSTOM_OSC_SMOKE"
    )
    assert [t["name"] for t in traits] == ["CUSTOM_OSC_SMOKE"]
    generation = osc(server, "resource", "provider", "show", uuid)["generation"]
    agg = "11111111-2222-3333-4444-555555555555"
    aggs = osc(
        server,
        "resource",
        "provider",
        "aggregate",
        "set",
        uuid,
        "--aggregate",
        agg,
        "--generation",
        str(generation),
    )
    assert [a["uuid"] for a in aggs] == [agg]

    consumer = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    osc(
        server,
        "resource",
        "provider",
        "allocation",
        "set",
        consumer,
        "--allocation",
        f"rp={uuid},VCPU=2,MEMORY_MB=512",
        "--project-id",
        "p1",
        "--user-id",
        "u1",
        "--consumer-type",
        "INSTANCE",
    )
    shown = osc(server, "resource", "provider", "allocation", "show", consumer)
    assert shown[0]["resources"] == {"VCPU": 2, "MEMORY_MB": 512}
    usages = osc(server, "resource", "provider", "usage", "show", uuid)
    assert {u["resource_class"]: u["usage"] for u in usages} == {"VCPU": 2, "MEMORY_MB": 512}

    candidates = osc(
        server,
        "allocation",
        "candidate",
        "list",
        "--resource",
        "VCPU=1",
        "--required",
        "CUSTOM_OSC_SMOKE",
    )
    assert len(candidates) == 1 and candidates[0]["resource provider"] == uuid

    osc(server, "resource", "provider", "allocation", "delete", consumer, parse=False)
    usages = osc(server, "resource", "provider", "usage", "show", uuid)
    assert {u["resource_class"]: u["usage"] for u in usages} == {"VCPU": 0, "MEMORY_MB": 0}
    osc(server, "resource", "provider", "delete", child["uuid"], parse=False)
    osc(server, "resource", "provider", "delete", uuid, parse=False)
    assert osc(server, "resource", "provider", "list") == []
