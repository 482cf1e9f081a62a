"""Placement requests skip FastAPI's router and exception middlewares
(``claimant.api.app.PlacementFirst``, issue 10: a tenth of a Nova-flow
placement's server CPU); what the root's own routes match still goes
through them, and the answers are the same either way."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from claimant.api.placement.framework import PlacementApp

# Set by FastAPI's exit-stack middleware, just outside its router.
THROUGH_FASTAPI = "fastapi_middleware_astack"


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """For each request the Placement app got: did it come through FastAPI's router?"""
    calls: list[bool] = []
    original = PlacementApp.__call__

    async def spy(self: PlacementApp, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            calls.append(THROUGH_FASTAPI in scope)
        await original(self, scope, receive, send)

    monkeypatch.setattr(PlacementApp, "__call__", spy)
    yield calls


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/", 200),
        ("/resource_providers", 200),
        ("/allocation_candidates?resources=VCPU:1", 200),
        ("/no/such/thing", 404),
        ("/v1x", 404),
        ("/uix", 404),
    ],
)
def test_placement_paths_go_straight_to_placement(
    client: TestClient, seen: list[bool], path: str, status: int
) -> None:
    r = client.get(path, headers={"OpenStack-API-Version": "placement 1.39"})
    assert r.status_code == status
    assert seen == [False]
    if status == 404:
        assert "errors" in r.json()  # Placement's error format


@pytest.mark.parametrize(
    ("path", "status"), [("/healthz", 200), ("/v1", 200), ("/v1/providers", 200), ("/ui", 308)]
)
def test_the_roots_own_routes_still_answer(
    client: TestClient, seen: list[bool], path: str, status: int
) -> None:
    r = client.get(path, follow_redirects=False)
    assert r.status_code == status
    assert seen == []
