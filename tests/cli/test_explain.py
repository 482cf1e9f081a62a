"""Issue 11: ``request explain`` and ``request|provider events`` against a
live server (commands of claimant/cli/explain.py, invoked directly)."""

from __future__ import annotations

import json
import time

import httpx
from click.testing import CliRunner

from claimant.cli.explain import provider_events, request_events, request_explain, when
from claimant.model import Inventory, Provider, new_uuid
from claimant.store import Store


def _provider(store: Store, name: str, vcpu: int) -> Provider:
    return store.create_provider(
        Provider(
            uuid=new_uuid(),
            name=name,
            type="compute",
            inventories={
                "VCPU": Inventory("VCPU", vcpu),
                "MEMORY_MB": Inventory("MEMORY_MB", 4096),
            },
        )
    )


def test_explain_names_the_stale_host(server: str, store: Store) -> None:
    _provider(store, "alive", 2)
    dead = _provider(store, "dead", 16)
    store.heartbeat(dead.uuid, at=time.time() - 3600)
    result = CliRunner().invoke(request_explain, ["--resources", "VCPU:1"])
    assert result.exit_code == 0, result.output
    assert "*#1   alive" in result.output
    assert "dead" in result.output and "not eligible: stale" in result.output
    result = CliRunner().invoke(request_explain, ["--resources", "VCPU=8"])
    assert result.exit_code == 2, result.output
    assert "NO VALID HOST" in result.output and "dead" in result.output


def test_events_commands(server: str, store: Store) -> None:
    _provider(store, "cn1", 8)
    runner = CliRunner()
    body = {"groups": [{"resources": {"VCPU": 1}}]}
    out = json.loads(
        runner.invoke(
            request_explain, ["--resources", "VCPU=1", "--json"], catch_exceptions=False
        ).output
    )
    assert out["fits"] is True
    created = httpx.post(server + "/v1/requests", json=body, headers={"x-auth-token": "admin"})
    uuid = created.json()["uuid"]
    shown = runner.invoke(request_events, [uuid])
    assert shown.exit_code == 0, shown.output
    assert "claimed" in shown.output and "scheduled" in shown.output and "ago)" in shown.output
    shown = runner.invoke(provider_events, ["cn1"])
    assert shown.exit_code == 0, shown.output
    assert "claimed" in shown.output and f'request_uuid="{uuid}"' in shown.output


def test_human_time() -> None:
    assert when(0.0, now=90.0) == "1970-01-01 00:00:00Z (1m ago)"
    assert when(0.0, now=3.0).endswith("(3s ago)")
