"""Issue 11: ``request explain``, ``request|provider events`` and the recent
events of ``provider show``, through ``claimant`` against a live server on a
real SQLite file: the shared client's options, output formats, JSON errors
and exit codes."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import yaml
from click.testing import CliRunner, Result

from claimant.cli.main import main
from claimant.model import Inventory, Provider, new_uuid
from claimant.store import Store

EPOCH = re.compile(r"\b1\d{9}(\.\d+)?\b")


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), env={"COLUMNS": "80"})


def ok(*args: str) -> str:
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


def fits(text: str) -> None:
    too_long = [line for line in text.splitlines() if len(line.rstrip()) > 80]
    assert not too_long, "\n".join(too_long)
    assert not EPOCH.search(text), text


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
    _provider(store, "alive-compute-node-with-a-long-name-01", 2)
    dead = _provider(store, "dead", 16)
    store.heartbeat(dead.uuid, at=time.time() - 3600)
    text = ok("request", "explain", "--resources", "VCPU:1")
    fits(text)
    assert re.search(r"^\*\s+#1\s+alive-compute-node", text, re.M), text
    assert "dead" in text and "not eligible: stale" in text
    full = run("request", "explain", "--resources", "VCPU=8")
    assert full.exit_code == 5, full.output  # no valid host, as `request create`
    fits(full.stdout)
    assert "NO VALID HOST" in full.stdout and "dead" in full.stdout
    assert "Error: no_valid_host" in full.stderr


def test_explain_for_scripts(server: str, store: Store) -> None:
    _provider(store, "cn1", 2)
    fine = json.loads(ok("request", "explain", "--resources", "VCPU=1", "--json"))
    assert fine["fits"] is True and fine["groups"][0]["would_choose"]
    assert yaml.safe_load(ok("request", "explain", "--resources", "VCPU=1", "-o", "yaml"))["fits"]
    full = run("request", "explain", "--resources", "VCPU=8", "--json")
    assert full.exit_code == 5
    assert json.loads(full.stdout)["fits"] is False
    assert json.loads(full.stderr)["error"]["code"] == "no_valid_host"
    bad = run("request", "explain", "--resources", "VCPU", "--json")
    assert bad.exit_code == 2 and json.loads(bad.stderr)["error"]["code"] == "usage"
    down = run(
        "request", "explain", "--resources", "VCPU=1", "--json", "--url", "http://127.0.0.1:9"
    )
    assert down.exit_code == 6 and json.loads(down.stderr)["error"]["code"] == "unreachable"


def _placed(store: Store) -> tuple[Provider, dict[str, Any]]:
    cn = _provider(store, "compute-node-events-01", 8)
    out = ok("request", "create", "--resources", "VCPU=1", "--json")
    return cn, json.loads(out)


def test_events_commands(server: str, store: Store) -> None:
    cn, req = _placed(store)
    uuid = req["uuid"]
    text = ok("request", "events", uuid)
    fits(text)
    assert "claimed" in text and "scheduled" in text and "ago" in text
    text = ok("provider", "events", cn.name)  # a name, as everywhere
    fits(text)
    assert "claimed" in text and f"request={uuid[:8]}" in text
    as_json = json.loads(ok("provider", "events", cn.uuid, "--json"))
    assert as_json["events"][0]["request_uuid"] == uuid
    as_yaml = yaml.safe_load(ok("request", "events", uuid, "-o", "yaml"))
    assert as_yaml["request_uuid"] == uuid
    gone = run("provider", "events", "nope", "--json")
    assert gone.exit_code == 3 and json.loads(gone.stderr)["error"]["code"] == "not_found"
    gone = run("request", "events", new_uuid(), "--json")
    assert gone.exit_code == 3 and json.loads(gone.stderr)["error"]["code"] == "not_found"


def test_provider_show_has_recent_events(server: str, store: Store) -> None:
    cn, req = _placed(store)
    text = ok("provider", "show", cn.name)
    fits(text)
    recent = text[text.index("recent events") :]
    assert "claimed" in recent and f"request={req['uuid'][:8]}" in recent and "ago" in recent
    for _ in range(11):
        ok("request", "create", "--resources", "MEMORY_MB=1", "--json")
    shown = json.loads(ok("provider", "show", cn.name, "--json"))
    assert len(shown["recent_events"]) == 10
    fresh = _provider(store, "fresh", 1)
    assert "no events" in ok("provider", "show", fresh.name)


def test_request_show_prints_the_servers_reason(server: str, store: Store) -> None:
    _provider(store, "cn1", 2)
    assert (
        run("request", "create", "--resources", "VCPU=1", "--count", "3", "--partial").exit_code
        == 0
    )
    (partial,) = json.loads(ok("request", "list", "--json"))["requests"]
    shown = json.loads(ok("request", "show", partial["uuid"], "--json"))
    assert shown["reason"]
    text = ok("request", "show", partial["uuid"])
    fits(text)
    # The server's words, on the reason line (it wraps: compare the start).
    reason_line = next(line for line in text.splitlines() if line.strip().startswith("reason:"))
    assert " ".join(shown["reason"].split()[:5]) in reason_line, (reason_line, shown["reason"])


def test_claims_tables_wrap_a_long_provider_name(server: str, store: Store) -> None:
    cn = _provider(store, "alive-compute-node-with-a-long-name-01", 8)
    req = json.loads(ok("request", "create", "--resources", "VCPU=1", "--json"))
    (claim,) = req["placements"][0]["claims"]
    for text in (ok("provider", "show", cn.name), ok("request", "show", req["uuid"])):
        fits(text)
        # The name wraps; the status, the consumer and the amounts stay whole.
        row = next(line for line in text.splitlines() if line.startswith(claim["uuid"][:8]))
        assert claim["consumer_uuid"][:8] in row and "claimed" in row and "VCPU=1" in row, row
