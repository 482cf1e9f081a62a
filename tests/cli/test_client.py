"""``claimant provider|inventory|request|claim`` against a live server."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner, Result

from claimant.cli.main import main


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def run_json(*args: str) -> Any:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_provider_lifecycle(server: str) -> None:
    p = run_json(
        "provider",
        "create",
        "cn1",
        "--inventory",
        "VCPU=8,MEMORY_MB=4096",
        "--trait",
        "HW_CPU_X86_AVX2",
        "--attribute",
        "cpu_arch=x86_64",
        "--attribute",
        "numa_nodes=2",
    )
    assert p["inventories"]["VCPU"]["total"] == 8
    assert p["attributes"] == {"cpu_arch": "x86_64", "numa_nodes": 2}
    table = run("provider", "list")
    assert table.exit_code == 0 and "cn1" in table.output and "0/8" in table.output
    shown = run_json("provider", "show", "cn1")
    assert shown["uuid"] == p["uuid"]
    inv = run_json(
        "provider",
        "set-inventory",
        "cn1",
        "VCPU=16",
        "DISK_GB=100",
        "--allocation-ratio",
        "VCPU=2.0",
        "--reserved",
        "DISK_GB=10",
    )
    assert inv["inventories"]["VCPU"]["capacity"] == 32
    assert inv["inventories"]["DISK_GB"]["capacity"] == 90
    listed = run_json("inventory", "list", p["uuid"])
    assert set(listed["inventories"]) == {"VCPU", "DISK_GB"}
    traits = run_json("provider", "set-traits", "cn1", "HW_CPU_X86_SSE,HW_CPU_X86_AVX")
    assert traits["traits"] == ["HW_CPU_X86_AVX", "HW_CPU_X86_SSE"]
    agg = "5b0bd5c8-6d8e-4c3e-9c56-0a3f7a7f1a11"
    assert run_json("provider", "set-aggregates", "cn1", agg)["aggregates"] == [agg]
    filtered = run_json("provider", "list", "--required", "HW_CPU_X86_AVX", "--member-of", agg)
    assert [x["name"] for x in filtered["providers"]] == ["cn1"]
    deleted = run("provider", "delete", "cn1")
    assert deleted.exit_code == 0 and p["uuid"] in deleted.output
    assert run_json("provider", "list")["providers"] == []


def test_request_and_claims(server: str) -> None:
    run_json(
        "provider",
        "create",
        "cn1",
        "--inventory",
        "VCPU=8,MEMORY_MB=8192",
        "--trait",
        "HW_CPU_X86_AVX2",
    )
    req = run_json(
        "request",
        "create",
        "--resources",
        "VCPU=2,MEMORY_MB=2048",
        "--required",
        "HW_CPU_X86_AVX2",
        "--count",
        "2",
    )
    assert req["status"] == "scheduled" and len(req["placements"]) == 2
    shown = run("request", "show", req["uuid"])
    assert shown.exit_code == 0 and "scheduled" in shown.output
    assert [r["uuid"] for r in run_json("request", "list")["requests"]] == [req["uuid"]]
    claim_uuid = req["placements"][0]["claims"][0]["uuid"]
    assert run_json("claim", "show", claim_uuid)["status"] == "claimed"
    assert run_json("claim", "confirm", claim_uuid)["status"] == "confirmed"
    released = run("claim", "release", claim_uuid)
    assert released.exit_code == 0 and "released" in released.output
    flavored = run_json(
        "request", "create", "--flavor", "vcpus=1,memory_mb=512", "--required", "HW_CPU_X86_AVX2"
    )
    assert flavored["groups"][0]["resources"] == {"VCPU": 1, "MEMORY_MB": 512}
    assert flavored["groups"][0]["required_traits"] == ["HW_CPU_X86_AVX2"]


def test_request_spanning_a_tree(server: str) -> None:
    root = run_json("provider", "create", "tree-root")
    run_json("provider", "create", "tree-numa", "--parent", root["uuid"], "--inventory", "VCPU=4")
    run_json("provider", "create", "tree-gpu", "--parent", root["uuid"], "--inventory", "VGPU=1")
    req = run_json("request", "create", "--resources", "VCPU=2,VGPU=1", "--span", "tree")
    assert req["groups"][0]["span"] == "tree"
    assert sorted((c["amounts"] for c in req["placements"][0]["claims"]), key=str) == sorted(
        [{"VCPU": 2}, {"VGPU": 1}], key=str
    )
    shown = run("request", "show", req["uuid"])
    assert shown.exit_code == 0 and "span=tree" in shown.output


@pytest.mark.parametrize(
    ("case", "args", "expected", "exit_code"),
    [
        ("no valid host", ["request", "create", "--resources", "VCPU=999"], "no_valid_host", 5),
        ("unknown provider", ["provider", "show", "nope"], "not_found", 3),
        ("bad claim uuid", ["claim", "show", "xyz"], "invalid_input", 1),
        (
            "unknown trait",
            ["request", "create", "--resources", "VCPU=1", "--required", "NOPE"],
            "invalid_input",
            1,
        ),
        ("negative amount", ["request", "create", "--resources", "VCPU=-1"], "invalid_input", 1),
        # issue 9: as OpenStack's noauth2, a token other than admin has no role
        ("noauth2 token has no role", ["provider", "create", "x", "--token", "u1"], "forbidden", 1),
        ("name taken", ["provider", "create", "cn1"], "already_exists", 4),
    ],
)
def test_http_errors_print_code_and_exit_code(
    server: str, case: str, args: list[str], expected: str, exit_code: int
) -> None:
    run_json("provider", "create", "cn1", "--inventory", "VCPU=4,MEMORY_MB=4096")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == exit_code, result.output
    assert expected in result.stderr
    assert "Traceback" not in result.output


def test_unreachable_server() -> None:
    result = CliRunner().invoke(main, ["provider", "list", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 6 and "cannot reach" in result.output
    assert "claimant serve" in result.output


def test_bad_cli_values_are_usage_errors(server: str) -> None:
    result = CliRunner().invoke(main, ["request", "create", "--resources", "VCPU"])
    assert result.exit_code == 2 and "CLASS=N" in result.output
    result = CliRunner().invoke(main, ["request", "create"])
    assert result.exit_code == 2
