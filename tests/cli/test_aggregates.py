"""``claimant aggregate ...`` with names (issue 11), against a live server on a
real SQLite file."""

from __future__ import annotations

import json
import uuid as uuidlib

from .test_operator import fits, ok, run, run_json


def test_create_list_show_delete(server: str) -> None:
    ok("provider", "create", "cn1", "--inventory", "VCPU=4")
    agg = str(uuidlib.uuid4())
    made = run_json("aggregate", "create", "rack-1", "--uuid", agg)
    assert (made["name"], made["uuid"]) == ("rack-1", agg)
    assert "created aggregate az-east-long-name" in ok("aggregate", "create", "az-east-long-name")
    assert run_json("aggregate", "add", "rack-1", "cn1")["aggregate"] == agg
    listing = ok("aggregate", "list")
    fits(listing)
    assert "rack-1" in listing and "az-east-long-name" in listing  # the empty one too
    names = {a["name"]: a for a in run_json("aggregate", "list")["names"]}
    assert names["rack-1"]["providers"] == 1 and names["az-east-long-name"]["providers"] == 0
    assert "rack-1" in ok("top")
    shown = ok("aggregate", "show", "rack-1")
    fits(shown)
    assert "rack-1" in shown and "cn1" in shown
    assert run_json("aggregate", "show", agg)["name"] == "rack-1"
    assert run_json("aggregate", "show", "az-east-long-name")["providers"] == []
    assert "stay in" in ok("aggregate", "delete", "rack-1")
    # the name is gone, the membership is not
    assert run_json("provider", "show", "cn1")["aggregates"] == [agg]
    assert run_json("aggregate", "remove", agg, "cn1")["removed"] == ["cn1"]


def test_add_remove_by_name(server: str) -> None:
    ok("provider", "create", "cn1", "--inventory", "VCPU=4")
    ok("provider", "create", "cn2", "--inventory", "VCPU=4")
    ok("aggregate", "create", "rack-2")
    assert run_json("aggregate", "add", "rack-2", "cn1", "cn2")["added"] == ["cn1", "cn2"]
    assert "removed cn2" in ok("aggregate", "remove", "rack-2", "cn2")
    shown = run_json("aggregate", "show", "rack-2")
    assert [p["name"] for p in shown["providers"]] == ["cn1"]
    placed = run_json("request", "create", "--resources", "VCPU=1", "--member-of", "rack-2")
    assert placed["status"] == "scheduled"


def test_errors_name_the_fix(server: str) -> None:
    ok("provider", "create", "cn1", "--inventory", "VCPU=4")
    missing = run("aggregate", "add", "nope", "cn1")
    assert missing.exit_code == 3 and "claimant aggregate create nope" in missing.output
    assert run("aggregate", "delete", "nope").exit_code == 3
    ok("aggregate", "create", "rack-3")
    taken = run("aggregate", "create", "rack-3", "--json")
    assert taken.exit_code != 0
    assert json.loads(taken.stderr)["error"]["code"] == "already_exists"
    unknown = run("request", "create", "--resources", "VCPU=1", "--member-of", "nope")
    assert unknown.exit_code != 0 and "claimant aggregate create nope" in unknown.output
