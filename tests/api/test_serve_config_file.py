"""``claimant serve --config-file placement.conf`` honours Placement's
options, flags win over the file, and ``claimant config show`` says where
each setting came from (issue 14)."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import httpx

from tests.api.serve_support import CLI, serve

CONF = """\
[DEFAULT]
log_dir = /var/log/placement

[placement]
max_allocation_candidates = 2
randomize_allocation_candidates = false

[placement_database]
connection = mysql+pymysql://placement:hunter2@db/placement

[cors]
allowed_origin = https://dash.example.org
"""
H = {"x-auth-token": "admin", "openstack-api-version": "placement 1.39"}


def _four_hosts(url: str) -> None:
    for i in range(4):
        u = str(uuid.uuid4())
        r = httpx.post(url + "/resource_providers", json={"name": f"h{i}", "uuid": u}, headers=H)
        assert r.status_code == 200, r.text
        inv = {"resource_provider_generation": 0, "inventories": {"VCPU": {"total": 4}}}
        r = httpx.put(url + f"/resource_providers/{u}/inventories", json=inv, headers=H)
        assert r.status_code == 200, r.text


def _count(url: str) -> int:
    r = httpx.get(url + "/allocation_candidates?resources=VCPU:1", headers=H)
    assert r.status_code == 200, r.text
    return len(r.json()["allocation_requests"])


def test_placement_conf_options_apply(tmp_path: Path) -> None:
    conf = tmp_path / "placement.conf"
    conf.write_text(CONF)
    with serve(tmp_path, "--config-file", str(conf)) as srv:
        _four_hosts(srv.url)
        assert _count(srv.url) == 2
        pre = httpx.options(
            srv.url + "/resource_providers",
            headers={
                "origin": "https://dash.example.org",
                "access-control-request-method": "GET",
            },
        )
        assert pre.headers.get("access-control-allow-origin") == "https://dash.example.org"
        log = srv.log.read_text()
    # Reported once, by name, never with its value.
    assert "[placement_database] connection" in log
    assert "hunter2" not in log


def test_a_flag_wins_over_the_file(tmp_path: Path) -> None:
    conf = tmp_path / "placement.conf"
    conf.write_text(CONF)
    with serve(tmp_path, "--config-file", str(conf), "--max-allocation-candidates", "3") as srv:
        _four_hosts(srv.url)
        assert _count(srv.url) == 3


def test_config_show_says_where_each_setting_comes_from(tmp_path: Path) -> None:
    conf = tmp_path / "placement.conf"
    conf.write_text(CONF)
    out = subprocess.run(
        [*CLI, "config", "show", "--config-file", str(conf), "--json"],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "CLAIMANT_PORT_UNUSED": "1"},
    )
    rows = {r["setting"]: r for r in json.loads(out.stdout)}
    assert rows["max-allocation-candidates"]["value"] == 2
    assert rows["max-allocation-candidates"]["source"] == f"file {conf}"
    assert rows["port"] == {"setting": "port", "value": 8778, "source": "default"}
    assert rows["cors-origin"]["value"] == ["https://dash.example.org"]
    assert rows["[placement_database] connection"]["value"] == "(not used)"
    assert "hunter2" not in out.stdout
    table = subprocess.run(
        [*CLI, "config", "show", "--config-file", str(conf)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert all(len(line) <= 80 for line in table.splitlines())
    assert "[placement_database] connection" in table
