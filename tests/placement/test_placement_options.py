"""Placement's [placement] candidate options, with Placement's meanings
(issue 14): max_allocation_candidates, the generation strategy and
randomize_allocation_candidates."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from claimant.api.placement import create_placement_app
from claimant.api.placement.options import CandidateOptions
from claimant.store import Store, open_store

HEADERS = {"x-auth-token": "admin", "openstack-api-version": "placement 1.39"}
Make = Callable[[CandidateOptions], TestClient]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store("sqlite:///" + str(tmp_path / "claimant.db").lstrip("/"))
    s.migrate()
    yield s
    s.close()


def _fill(c: TestClient) -> dict[str, list[str]]:
    """Two computes, each with two GPU children of one VGPU."""
    trees: dict[str, list[str]] = {}
    for host in ("a", "b"):
        root = str(uuid.uuid4())
        assert c.post("/resource_providers", json={"name": host, "uuid": root}).status_code == 200
        kids = []
        for i in range(2):
            kid = str(uuid.uuid4())
            body = {"name": f"{host}-gpu{i}", "uuid": kid, "parent_provider_uuid": root}
            assert c.post("/resource_providers", json=body).status_code == 200
            inv = {"resource_provider_generation": 0, "inventories": {"VGPU": {"total": 1}}}
            assert c.put(f"/resource_providers/{kid}/inventories", json=inv).status_code == 200
            kids.append(kid)
        trees[root] = kids
    return trees


@pytest.fixture
def make(store: Store) -> Iterator[Make]:
    clients: list[TestClient] = []

    def build(opts: CandidateOptions) -> TestClient:
        c = TestClient(create_placement_app(store, candidates=opts), headers=HEADERS)
        clients.append(c)
        return c

    yield build
    for c in clients:
        c.close()


def _roots(c: TestClient, trees: dict[str, list[str]], query: str) -> list[str]:
    r = c.get("/allocation_candidates?" + query)
    assert r.status_code == 200, r.text
    root_of = {k: root for root, kids in trees.items() for k in kids}
    return [root_of[next(iter(a["allocations"]))] for a in r.json()["allocation_requests"]]


def test_max_allocation_candidates_caps_every_request(make: Make) -> None:
    c = make(CandidateOptions(max_allocation_candidates=3))
    trees = _fill(c)
    assert len(_roots(c, trees, "resources=VGPU:1")) == 3
    assert len(_roots(c, trees, "resources=VGPU:1&limit=2")) == 2
    assert len(_roots(make(CandidateOptions()), trees, "resources=VGPU:1")) == 4


def test_generation_strategy(make: Make) -> None:
    deep = make(CandidateOptions(allocation_candidates_generation_strategy="depth-first"))
    trees = _fill(deep)
    first = _roots(deep, trees, "resources=VGPU:1&limit=2")
    assert len(set(first)) == 1  # both from the first tree
    wide = make(CandidateOptions(allocation_candidates_generation_strategy="breadth-first"))
    assert len(set(_roots(wide, trees, "resources=VGPU:1&limit=2"))) == 2


def test_randomize_samples_all_candidates(make: Make) -> None:
    c = make(CandidateOptions(randomize_allocation_candidates=True))
    trees = _fill(c)
    seen = set()
    for _ in range(30):
        r = c.get("/allocation_candidates?resources=VGPU:1&limit=1")
        body = r.json()
        assert len(body["allocation_requests"]) == 1
        (kid,) = body["allocation_requests"][0]["allocations"]
        seen.add(kid)
        root = next(root for root, kids in trees.items() if kid in kids)
        # Summaries only for the tree the candidate uses, as Placement trims them.
        assert set(body["provider_summaries"]) == {root, *trees[root]}
    # Without randomizing the first candidate would always be the same one.
    assert len(seen) > 1
    fixed = make(CandidateOptions())
    firsts = {
        next(
            iter(
                fixed.get("/allocation_candidates?resources=VGPU:1&limit=1").json()[
                    "allocation_requests"
                ][0]["allocations"]
            )
        )
        for _ in range(5)
    }
    assert len(firsts) == 1
