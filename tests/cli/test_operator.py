"""The CLI an operator lives in (issue 11), against a live server on a real
SQLite file: listings that fit 80 columns with used, free and health,
describe, top, disable / enable / drain, names wherever a uuid is taken,
errors that name the fix, JSON errors and exit codes scripts can trust."""

from __future__ import annotations

import json
import re
import time
import uuid as uuidlib
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from claimant.cli.main import main
from claimant.store import Store

AGG = "5b0bd5c8-6d8e-4c3e-9c56-0a3f7a7f1a11"
EPOCH = re.compile(r"\b1\d{9}(\.\d+)?\b")  # a raw epoch time on screen


def run(*args: str, columns: int = 80) -> Result:
    return CliRunner().invoke(main, list(args), env={"COLUMNS": str(columns)})


def ok(*args: str) -> str:
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


def run_json(*args: str) -> Any:
    return json.loads(ok(*args, "--json"))


def fits(text: str, columns: int = 80) -> None:
    too_long = [line for line in text.splitlines() if len(line.rstrip()) > columns]
    assert not too_long, "\n".join(too_long)


def _cloud(store: Store) -> dict[str, dict[str, Any]]:
    """Three compute nodes (up, stale, disabled), a bare-metal node, a claim."""
    ok("resource-class", "create", "CUSTOM_BAREMETAL_GOLD", "--discrete")
    made = {}
    for name in ("compute-node-up-01", "compute-node-stale-02", "compute-node-off-03"):
        made[name] = run_json(
            "provider", "create", name, "--inventory", "VCPU=64,MEMORY_MB=262144,DISK_GB=2000",
            "--aggregate", AGG,
        )  # fmt: skip
    made["bm-1"] = run_json("provider", "create", "bm-1", "--inventory", "CUSTOM_BAREMETAL_GOLD=1")
    store.heartbeat(made["compute-node-up-01"]["uuid"])
    store.heartbeat(made["compute-node-stale-02"]["uuid"], at=time.time() - 120)
    ok("provider", "disable", "compute-node-off-03")
    run_json(
        "request", "create", "--resources", "VCPU=8,MEMORY_MB=16384",
        "--in-tree", "compute-node-up-01",
    )  # fmt: skip
    return made


def test_provider_list_fits_80_columns_with_usage_and_health(server: str, store: Store) -> None:
    made = _cloud(store)
    text = ok("provider", "list")
    fits(text)
    rows = {line.split()[0]: line for line in text.splitlines() if line.strip()}
    up = rows["compute-node-up-01"]
    # a short uuid whole on the row, used/free per class, health, enabled
    assert made["compute-node-up-01"]["uuid"][:8] in up
    assert "8/56" in up and "16k/246k" in up and " up " in up and "yes" in up
    assert " stale " in rows["compute-node-stale-02"]
    assert re.search(r"no_agent\s+no\b", rows["compute-node-off-03"])
    assert "0/1" in rows["bm-1"] and "CUSTOM_BAREMETAL_GOLD" in text
    assert "/v1" not in text and not EPOCH.search(text)


def test_provider_list_wide_json_and_yaml(server: str, store: Store) -> None:
    made = _cloud(store)
    wide = ok("provider", "list", "-o", "wide")
    assert all(p["uuid"] in wide for p in made.values())
    data = run_json("provider", "list")
    by_name = {p["name"]: p for p in data["providers"]}
    assert by_name["compute-node-up-01"]["usages"]["VCPU"] == {
        "capacity": 64,
        "used": 8,
        "free": 56,
    }
    assert by_name["compute-node-stale-02"]["health"] == "stale"
    assert yaml.safe_load(ok("provider", "list", "-o", "yaml")) == data
    assert run("provider", "list", "--json", "-o", "yaml").exit_code == 2


def test_provider_show_is_a_describe(server: str, store: Store) -> None:
    made = _cloud(store)
    text = ok("provider", "show", "compute-node-up-01")
    fits(text)
    assert "health:" in text and "up (heartbeat" in text and "ago" in text
    assert re.search(r"VCPU\s+64\s+8\s+56\s+12%", text)
    assert "claims and allocations (1)" in text and "compute-node-up-01" in text
    assert not EPOCH.search(text)
    shown = run_json("provider", "show", made["compute-node-up-01"]["uuid"])
    assert shown["usages"]["VCPU"]["used"] == 8 and len(shown["claims"]) == 1


def test_disable_enable_drain(server: str, store: Store) -> None:
    _cloud(store)
    off = run("request", "create", "--resources", "VCPU=1", "--in-tree", "compute-node-off-03")
    assert off.exit_code == 5, off.output  # disabled: no valid host
    assert run_json("provider", "enable", "compute-node-off-03")["enabled"] is True
    drained = ok("provider", "drain", "compute-node-up-01")
    assert "disabled" in drained and "still there: 1 claim" in drained
    fits(drained)
    listed = {p["name"]: p for p in run_json("provider", "list")["providers"]}
    assert listed["compute-node-up-01"]["enabled"] is False
    assert listed["compute-node-off-03"]["enabled"] is True
    empty = ok("provider", "drain", "bm-1")
    assert "nothing runs there" in empty


def test_top(server: str, store: Store) -> None:
    _cloud(store)
    text = ok("top")
    fits(text)
    assert "4 (3 enabled, 1 disabled)" in text
    assert "1 up, 1 stale, 0 down, 2 no agent" in text
    # schedulable: only the up node's free VCPUs (stale and disabled are skipped)
    assert re.search(r"VCPU\s+192\s+8\s+184\s+4%\s+56\s+3", text)
    assert AGG[:8] in text
    cap = run_json("top")
    assert cap["aggregates"][0]["uuid"] == AGG
    assert cap["resource_classes"]["CUSTOM_BAREMETAL_GOLD"]["capacity"] == 1


def test_claims_by_provider_name_show_names(server: str, store: Store) -> None:
    _cloud(store)
    text = ok("claim", "list", "--provider", "compute-node-up-01")
    fits(text)
    assert "compute-node-up-01" in text and "claimed" in text
    (claim,) = run_json("claim", "list", "--provider", "compute-node-up-01")["claims"]
    assert claim["uuid"][:8] in text
    shown = ok("claim", "show", claim["uuid"])
    assert "compute-node-up-01" in shown and not EPOCH.search(shown)


def test_names_wherever_a_uuid_is_taken(server: str) -> None:
    ok("provider", "create", "root-a")
    ok("provider", "create", "numa-a", "--parent", "root-a", "--inventory", "VCPU=4")
    ok("provider", "create", "root-b", "--inventory", "VCPU=4")
    tree = run_json("provider", "list", "--in-tree", "root-a")["providers"]
    assert {p["name"] for p in tree} == {"root-a", "numa-a"}
    req = run_json("request", "create", "--resources", "VCPU=1", "--in-tree", "root-a")
    numa = run_json("provider", "show", "numa-a")
    assert req["placements"][0]["claims"][0]["provider_uuid"] == numa["uuid"]
    assert run_json("inventory", "list", "numa-a")["inventories"]["VCPU"]["total"] == 4
    assert run_json("provider", "set-traits", "numa-a", "HW_CPU_X86_AVX2")["traits"]
    unknown = run("provider", "list", "--in-tree", "nope")
    assert unknown.exit_code == 1 and "claimant provider list" in unknown.stderr


def test_one_resources_syntax(server: str) -> None:
    ok("provider", "create", "cn1", "--inventory", "VCPU:8,MEMORY_MB=1024")
    for spelling in ("VCPU=4", "VCPU:4"):
        found = run_json("provider", "list", "--resources", spelling)["providers"]
        assert [p["name"] for p in found] == ["cn1"]
    req = run_json("request", "create", "--resources", "VCPU:1,MEMORY_MB=128")
    assert req["groups"][0]["resources"] == {"VCPU": 1, "MEMORY_MB": 128}


def test_attribute_in_a_list_finds_providers(server: str) -> None:
    ok("provider", "create", "x86", "--inventory", "VCPU=4", "--attribute", "cpu_arch=x86_64")
    arm = run_json(
        "provider", "create", "arm", "--inventory", "VCPU=4", "--attribute", "cpu_arch=aarch64"
    )
    # issue 11: "[aarch64" and "ppc64le]" used to be the values: nothing matched
    req = run_json("request", "create", "--resources", "VCPU=1", "--attribute",
                   "cpu_arch in [aarch64, ppc64le]")  # fmt: skip
    assert req["placements"][0]["claims"][0]["provider_uuid"] == arm["uuid"]
    # shown as data, not swallowed as rich markup
    assert "cpu_arch in [aarch64, ppc64le]" in ok("request", "show", req["uuid"])
    bad = run("request", "create", "--resources", "VCPU=1", "--attribute", "cpu_arch in [a, b")
    assert bad.exit_code == 2 and "brackets" in bad.output


def test_errors_name_the_fix_and_scripts_get_json(server: str) -> None:
    ok("provider", "create", "cn1", "--inventory", "VCPU=4")
    missing = run("request", "create", "--resources", "VCPU=1", "--required", "CUSTOM_GPU_A100")
    assert missing.exit_code == 1
    assert "create it with `claimant trait create CUSTOM_GPU_A100`" in missing.stderr
    as_json = run(
        "request", "create", "--resources", "VCPU=1", "--required", "CUSTOM_GPU_A100", "--json"
    )
    assert as_json.exit_code == 1 and as_json.stdout == ""
    err = json.loads(as_json.stderr)["error"]
    assert err["code"] == "invalid_input" and "claimant trait create" in err["fix"]
    rc = run("provider", "create", "bm", "--inventory", "CUSTOM_GOLD=1", "-o", "json")
    assert "claimant resource-class create CUSTOM_GOLD" in json.loads(rc.stderr)["error"]["fix"]
    usage = run("request", "create", "--resources", "VCPU", "--json")
    assert usage.exit_code == 2 and json.loads(usage.stderr)["error"]["code"] == "usage"
    gone = run("provider", "show", "nope", "--json")
    assert gone.exit_code == 3 and json.loads(gone.stderr)["error"]["code"] == "not_found"
    full = run("request", "create", "--resources", "VCPU=99", "--json")
    assert full.exit_code == 5 and json.loads(full.stderr)["error"]["code"] == "no_valid_host"
    taken = run("provider", "create", "cn1", "--json")
    assert taken.exit_code == 4 and json.loads(taken.stderr)["error"]["code"] == "already_exists"


def test_request_show_says_why_and_what_was_placed(server: str) -> None:
    ok("provider", "create", "cn1", "--inventory", "VCPU=2")
    assert run("request", "create", "--resources", "VCPU=9").exit_code == 5
    (failed,) = run_json("request", "list", "--status", "failed")["requests"]
    text = ok("request", "show", failed["uuid"])
    fits(text)
    assert "status:" in text and "failed" in text
    assert "reason:" in text and "no valid host" in text
    assert not EPOCH.search(text)
    partial = run_json("request", "create", "--resources", "VCPU=1", "--count", "3", "--partial")
    text = ok("request", "show", partial["uuid"])
    assert "2 of 3: partial" in text and "reason:" in text
    assert text.count("cn1") == 2  # claims show the provider's name


def test_multi_group_requests_and_host_hints_without_a_body(server: str) -> None:
    # Later groups stay in the first group's tree: a host with two NUMA nodes.
    ok("provider", "create", "host")
    for name in ("numa0", "numa1"):
        ok("provider", "create", name, "--parent", "host", "--inventory", "VCPU=4")
    other = run_json("provider", "create", "other", "--inventory", "VCPU=4")
    req = run_json(
        "request", "create", "--group", "name=one; VCPU=1", "--group", "name=two; VCPU:1",
        "--group-policy", "isolate",
    )  # fmt: skip
    claims = req["placements"][0]["claims"]
    assert [g["name"] for g in req["groups"]] == ["one", "two"]
    assert len(claims) == 2 and len({c["provider_uuid"] for c in claims}) == 2
    consumer = req["placements"][0]["consumer_uuid"]
    away = run_json("request", "create", "--resources", "VCPU=1", "--different-host", consumer)
    assert away["placements"][0]["claims"][0]["provider_uuid"] == other["uuid"]
    assert away["hints"]["different_host"] == [consumer]


def test_catalog_commands(server: str) -> None:
    ok("trait", "create", "CUSTOM_GPU_A100")
    assert "CUSTOM_GPU_A100" in run_json("trait", "list", "--custom")["traits"]
    assert "CUSTOM_GPU_A100" in ok("trait", "show", "CUSTOM_GPU_A100")
    ok("trait", "delete", "CUSTOM_GPU_A100")
    assert run("trait", "show", "CUSTOM_GPU_A100").exit_code == 3

    ok("resource-class", "create", "CUSTOM_FPGA", "--discrete")
    custom = run_json("resource-class", "list", "--custom")["resource_classes"]
    assert custom == [{"name": "CUSTOM_FPGA", "discrete": True, "standard": False}]
    assert "discrete" in ok("resource-class", "show", "CUSTOM_FPGA")
    ok("resource-class", "delete", "CUSTOM_FPGA")

    ok("resource-type", "create", "gpu_box", "--attribute", "gpu_model:string:required",
       "--attribute", "gpus:integer")  # fmt: skip
    shown = run_json("resource-type", "show", "gpu_box")
    assert [(a["name"], a["required"]) for a in shown["attributes"]] == [
        ("gpu_model", True),
        ("gpus", False),
    ]
    assert "gpu_box" in ok("resource-type", "list")
    assert run("resource-type", "create", "x", "--attribute", "bad").exit_code == 2
    ok("resource-type", "delete", "gpu_box")

    ok("provider", "create", "cn1", "--inventory", "VCPU=4")
    ok("provider", "create", "cn2", "--inventory", "VCPU=4")
    agg = str(uuidlib.uuid4())
    assert run_json("aggregate", "add", agg, "cn1", "cn2")["added"] == ["cn1", "cn2"]
    assert run_json("aggregate", "list")["aggregates"][0]["providers"] == 2
    assert agg[:8] in ok("aggregate", "list")
    assert "cn2" in ok("aggregate", "show", agg)
    assert run_json("aggregate", "remove", agg, "cn2")["removed"] == ["cn2"]
    assert [p["name"] for p in run_json("aggregate", "show", agg)["providers"]] == ["cn1"]
    assert run("aggregate", "show", str(uuidlib.uuid4())).exit_code == 3


@pytest.mark.parametrize("command", [["provider", "list"], ["top"], ["request", "list"]])
def test_empty_cloud(server: str, command: list[str]) -> None:
    fits(ok(*command))
