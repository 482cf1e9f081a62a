"""Cells in the native API (issue 12, docs/cells.md), on a store of one cell:
providers show their home cell, a request may name the cell, an unknown
cell is a 400 with the stable code ``unknown_cell``, and a cell that is cut
off is a 503 ``cell_unavailable`` whose message says which (never the
driver's text). Several real cells: tests/cluster/test_live_cells.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from claimant.model import CellUnavailable, StoreUnavailable
from claimant.store import Store

from .conftest import ADMIN


def test_provider_view_has_its_cell(
    client: TestClient, make_provider: Callable[..., dict[str, Any]]
) -> None:
    p = make_provider("cn-cell")
    assert p["cell"] == "local"
    assert client.get(f"/v1/providers/{p['uuid']}").json()["cell"] == "local"
    listed = client.get("/v1/providers").json()["providers"]
    assert [x["cell"] for x in listed] == ["local"]
    named = make_provider("cn-named", cell="local")
    assert named["cell"] == "local"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/providers", {"name": "elsewhere", "cell": "dc9"}),
        ("/v1/requests", {"groups": [{"resources": {"VCPU": 1}}], "cell": "dc9"}),
    ],
    ids=["provider", "request"],
)
def test_unknown_cell_is_400_unknown_cell(
    client: TestClient, path: str, body: dict[str, Any]
) -> None:
    r = client.post(path, json=body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "unknown_cell"
    assert error["details"]["cell"] == "dc9"
    assert "local" in error["message"]  # says which cells there are
    assert client.get("/v1/requests").json()["requests"] == []
    assert client.get("/v1/providers").json()["providers"] == []


def test_request_confined_to_the_store_cell_is_placed(
    client: TestClient, make_provider: Callable[..., dict[str, Any]]
) -> None:
    p = make_provider("cn-confined")
    r = client.post("/v1/requests", json={"groups": [{"resources": {"VCPU": 1}}], "cell": "local"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["cell"] == "local"
    assert body["placements"][0]["claims"][0]["provider_uuid"] == p["uuid"]


@pytest.mark.parametrize(
    ("error", "status", "code", "says"),
    [
        (CellUnavailable("cell dc2 is unreachable", cell="dc2"), 503, "cell_unavailable", "dc2"),
        (StoreUnavailable("driver text: Unable to complete"), 503, "store_unavailable", "retry"),
    ],
    ids=["cell", "store"],
)
def test_cell_unavailable_is_503_with_its_reason(
    store: Store,
    app: FastAPI,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    status: int,
    code: str,
    says: str,
) -> None:
    def down(*args: Any, **kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(store, "list_providers", down)
    with TestClient(app, headers=ADMIN) as c:
        r = c.get("/v1/providers")
    assert r.status_code == status
    assert r.json()["error"]["code"] == code
    assert says in r.json()["error"]["message"]
    assert "driver text" not in r.text
