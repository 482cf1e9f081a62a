"""Issue 9: /v1 requests, claims and usages are project-scoped for every
non-admin caller (tokens mode, as the issue's reporter tried it)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from claimant.api import AuthConfig, create_app
from claimant.model import new_uuid
from claimant.store import Store

TOKENS = {
    "adm": {"role": "admin"},
    "svcA": {"role": "service", "project_id": "projA", "user_id": "uA"},
    "svcB": {"role": "service", "project_id": "projB", "user_id": "uB"},
    "rdr": {"role": "reader"},
    "rdrA": {"role": "reader", "project_id": "projA"},
}


@pytest.fixture
def clients(store: Store, tmp_path: Path) -> Iterator[dict[str, TestClient]]:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({"tokens": TOKENS}))
    path.chmod(0o600)
    app = create_app(store, auth=AuthConfig.from_token_file(path))
    out = {t: TestClient(app, headers={"x-auth-token": t}) for t in TOKENS}
    for c in out.values():
        c.__enter__()
    try:
        r = out["adm"].post(
            "/v1/providers", json={"name": "cn1", "inventories": {"VCPU": {"total": 16}}}
        )
        assert r.status_code == 201, r.text
        yield out
    finally:
        for c in out.values():
            c.__exit__(None, None, None)


def _request(c: TestClient, **extra: Any) -> dict[str, Any]:
    r = c.post("/v1/requests", json={"groups": [{"resources": {"VCPU": 1}}], **extra})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def _claim_uuid(request: dict[str, Any]) -> str:
    uuid: str = request["placements"][0]["claims"][0]["uuid"]
    return uuid


def test_another_projects_request_is_not_found(clients: dict[str, TestClient]) -> None:
    a = _request(clients["svcA"])
    assert a["project_id"] == "projA"
    path = f"/v1/requests/{a['uuid']}"
    got = {t: clients[t].get(path).status_code for t in ("svcA", "rdrA", "adm", "svcB", "rdr")}
    assert got == {"svcA": 200, "rdrA": 200, "adm": 200, "svcB": 404, "rdr": 403}


def test_request_list_is_scoped(clients: dict[str, TestClient]) -> None:
    a = _request(clients["svcA"])
    b = _request(clients["svcB"])

    def listed(token: str) -> set[str]:
        r = clients[token].get("/v1/requests")
        assert r.status_code == 200, r.text
        return {x["uuid"] for x in r.json()["requests"]}

    assert listed("svcA") == {a["uuid"]}
    assert listed("svcB") == {b["uuid"]}
    assert listed("rdrA") == {a["uuid"]}
    assert listed("adm") == {a["uuid"], b["uuid"]}
    assert clients["rdr"].get("/v1/requests").status_code == 403  # no project: nothing to see


@pytest.mark.parametrize(
    ("case", "method", "suffix"),
    [
        ("show", "GET", ""),
        ("confirm", "POST", "/confirm"),
        ("release", "DELETE", ""),
    ],
)
def test_another_projects_claim_is_not_found(
    clients: dict[str, TestClient], case: str, method: str, suffix: str
) -> None:
    claim = _claim_uuid(_request(clients["svcA"]))
    path = f"/v1/claims/{claim}{suffix}"
    r = clients["svcB"].request(method, path)
    assert r.status_code == 404, r.text
    assert clients["svcA"].get(f"/v1/claims/{claim}").json()["status"] == "claimed"
    r = clients["svcA"].request(method, path)
    assert r.status_code in (200, 204), r.text


def test_provider_claims_list_is_scoped(clients: dict[str, TestClient]) -> None:
    a = _claim_uuid(_request(clients["svcA"]))
    b = _claim_uuid(_request(clients["svcB"]))
    rp = clients["adm"].get("/v1/providers").json()["providers"][0]["uuid"]

    def listed(token: str) -> set[str]:
        return {
            c["uuid"] for c in clients[token].get(f"/v1/providers/{rp}/claims").json()["claims"]
        }

    assert listed("svcA") == {a}
    assert listed("svcB") == {b}
    assert listed("adm") == {a, b}


def test_request_for_another_project_is_refused(clients: dict[str, TestClient]) -> None:
    r = clients["svcB"].post(
        "/v1/requests", json={"groups": [{"resources": {"VCPU": 1}}], "project_id": "projA"}
    )
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "forbidden"
    assert _request(clients["svcB"], project_id="projB")["project_id"] == "projB"
    assert _request(clients["adm"], project_id="projA")["project_id"] == "projA"


@pytest.mark.parametrize(
    ("token", "project", "headers", "status"),
    [
        ("rdrA", "projA", {}, 200),
        ("rdrA", "projB", {}, 403),
        ("svcB", "projA", {}, 403),
        ("adm", "projB", {}, 200),
        ("rdr", "projB", {}, 403),
        # a header never gives a token a project in tokens mode
        ("rdr", "projB", {"openstack-project-id": "projB", "x-project-id": "projB"}, 403),
    ],
)
def test_usages_are_scoped(
    clients: dict[str, TestClient],
    token: str,
    project: str,
    headers: dict[str, str],
    status: int,
) -> None:
    r = clients[token].get("/v1/usages", params={"project_id": project}, headers=headers)
    assert r.status_code == status, r.text


def test_request_list_is_not_capped_by_other_projects(
    clients: dict[str, TestClient], store: Store
) -> None:
    # Issue 9: a non-admin's list was filtered from the newest 5,000 requests
    # of every project, so A's request vanished behind 5,000 newer ones of B.
    a = _request(clients["svcA"])
    template = store.get_request(a["uuid"])
    later = template.created_at + 1
    for i in range(5000):
        store.save_request(
            template.evolve(uuid=new_uuid(), project_id="projB", created_at=later + i)
        )
    r = clients["svcA"].get("/v1/requests", params={"limit": 10})
    assert r.status_code == 200, r.text
    assert [x["uuid"] for x in r.json()["requests"]] == [a["uuid"]]


def test_events_are_scoped(clients: dict[str, TestClient]) -> None:
    a = _request(clients["svcA"])
    b = _request(clients["svcB"])
    rp = clients["adm"].get("/v1/providers").json()["providers"][0]["uuid"]

    def claims_seen(token: str) -> set[str]:
        r = clients[token].get(f"/v1/providers/{rp}/events")
        assert r.status_code == 200, r.text
        return {e["claim_uuid"] for e in r.json()["events"]}

    assert claims_seen("svcA") == {_claim_uuid(a)}
    assert claims_seen("adm") == {_claim_uuid(a), _claim_uuid(b)}
    path = f"/v1/requests/{a['uuid']}/events"
    got = {t: clients[t].get(path).status_code for t in ("svcA", "rdrA", "adm", "svcB", "rdr")}
    assert got == {"svcA": 200, "rdrA": 200, "adm": 200, "svcB": 404, "rdr": 403}
