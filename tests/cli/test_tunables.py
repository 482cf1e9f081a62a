"""Issue 11: the scheduler's tunables and logging from claimant.toml, flags
and environment variables, for serve, the conductor and the agent."""

from __future__ import annotations

import json
from pathlib import Path

import click
import httpx
import pytest
from click.testing import CliRunner

from claimant.cli.config import show
from claimant.cli.tunables import scheduler_config
from tests.api.serve_support import serve

TOML = """\
[scheduler]
host_subset_size = 2
heartbeat_timeout = 120
claim_ttl = 90
expire_interval = 7
filters = ["AffinityFilter", "AntiAffinityFilter"]
weighers = { CPUWeigher = 3.0, RAMWeigher = 0.5 }

[logging]
format = "json"

[conductor]
port = 9100
max_attempts = 5

[agent]
port = 9200
log_level = "debug"
"""


def _settings(tmp_path: Path, command: str, env: dict[str, str] | None = None) -> dict[str, dict]:
    path = tmp_path / "claimant.toml"
    path.write_text(TOML)
    result = CliRunner().invoke(
        show, ["--for", command, "--config-file", str(path), "--json"], env=env or {}
    )
    assert result.exit_code == 0, result.output
    return {row["setting"]: row for row in json.loads(result.output)}


def test_conductor_reads_its_table_scheduler_and_logging(tmp_path: Path) -> None:
    rows = _settings(tmp_path, "conductor", {"CLAIMANT_HOST_SUBSET_SIZE": "4"})
    assert rows["port"]["value"] == 9100 and rows["port"]["source"].startswith("file")
    assert rows["max-attempts"]["value"] == 5
    assert rows["claim-ttl"]["value"] == 90
    assert rows["heartbeat-timeout"]["value"] == 120
    assert list(rows["weigher"]["value"]) == ["CPUWeigher=3.0", "RAMWeigher=0.5"]
    assert list(rows["filter"]["value"]) == ["AffinityFilter", "AntiAffinityFilter"]
    assert rows["log-format"]["value"] == "json"
    # The environment wins over the file.
    assert rows["host-subset-size"] == {
        "setting": "host-subset-size",
        "value": "4",
        "source": "env CLAIMANT_HOST_SUBSET_SIZE",
    }


def test_agent_reads_its_table_and_logging_only(tmp_path: Path) -> None:
    rows = _settings(tmp_path, "agent")
    assert rows["port"]["value"] == 9200
    assert rows["log-level"]["value"] == "debug"
    assert rows["log-format"]["value"] == "json"
    assert "host-subset-size" not in rows


def test_unknown_keys_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "claimant.toml"
    path.write_text("[conductor]\nno_such = 1\n")
    result = CliRunner().invoke(show, ["--for", "conductor", "--config-file", str(path)])
    assert result.exit_code != 0 and "no_such" in result.output


def test_scheduler_config_from_options() -> None:
    config = scheduler_config(
        claim_ttl=30.0,
        host_subset_size=3,
        heartbeat_timeout=0.0,
        weigher=("CPUWeigher=2,RAMWeigher=0",),
        filter_=("AffinityFilter",),
    )
    assert config.heartbeat_timeout is None  # 0: never stale
    assert config.weighers["CPUWeigher"] == 2.0 and config.weighers["RAMWeigher"] == 0.0
    assert config.weighers["BuildFailureWeigher"] == 1e6  # defaults kept
    assert config.filters == ["AffinityFilter"]
    with pytest.raises(click.BadParameter, match="NoSuchWeigher"):
        scheduler_config(
            claim_ttl=30.0,
            host_subset_size=3,
            heartbeat_timeout=60.0,
            weigher=("NoSuchWeigher=1",),
            filter_=(),
        )


def test_serve_schedules_with_the_files_tunables(tmp_path: Path) -> None:
    path = tmp_path / "claimant.toml"
    path.write_text(TOML)
    admin = {"x-auth-token": "admin"}
    with serve(tmp_path, "--config-file", str(path)) as s:
        r = httpx.post(
            s.url + "/v1/requests",
            params={"dry_run": "true"},
            json={"groups": [{"resources": {"VCPU": 1}}]},
            headers=admin,
        )
        assert r.status_code == 200, r.text
    out = r.json()
    assert out["host_subset_size"] == 2
    assert out["weighers"]["CPUWeigher"] == 3.0 and out["weighers"]["RAMWeigher"] == 0.5
    assert out["filters"] == ["AffinityFilter", "AntiAffinityFilter"]
    # [logging] format = "json": the server's lines are JSON objects.
    assert any(line.startswith("{") for line in s.log.read_text().splitlines())
