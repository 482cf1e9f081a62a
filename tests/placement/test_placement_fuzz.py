"""Issue 9: a fuzz of every Placement route (from the route table) with
random and near-valid query strings, JSON bodies and microversions, as an
admin against a real SQLite store: no answer is a 5xx.

Each route gets its own examples and bodies shaped like its own (so they get
past the schema to the handler and the store), with hostile leaves: lone
surrogates, integers beyond 2^63, NaN, Infinity, 3e38."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claimant.api import AuthConfig, create_app
from claimant.api.placement.routes import ROUTES
from claimant.store import open_store

RP = str(uuid.uuid4())
CHILD = str(uuid.uuid4())
CONSUMER = str(uuid.uuid4())
AGG = str(uuid.uuid4())

ENDPOINTS = [(verb, route.template) for route in ROUTES for verb in route.methods if route.template]

uuids = st.sampled_from([RP, CHILD, CONSUMER, AGG, str(uuid.uuid4()), "not-a-uuid", ""])
classes = st.sampled_from(["VCPU", "MEMORY_MB", "DISK_GB", "CUSTOM_FUZZ", "CUSTOM_", "vcpu", ""])
traits = st.sampled_from(["HW_CPU_X86_AVX2", "CUSTOM_T", "!CUSTOM_T", "in:A,B", "", "!"])
ints = st.one_of(
    st.integers(-3, 10),
    st.sampled_from([0, 1, 2**31 - 1, 2**31, 2**63 - 1, 2**63, 2**64, -(2**63) - 1]),
)
floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.5, 1.0, 16.0, 1e-300, 3e38, 1e308, float("inf"), float("nan")]),
)
# Includes lone surrogates: JSON carries them as \udxxx escapes.
text = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)
names = st.one_of(text, st.sampled_from(["rp-a", "a\ud800b", "\udfff", "x" * 300]))
scalars = st.one_of(st.none(), st.booleans(), ints, floats, text, uuids, classes)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(text, classes, uuids), inner, max_size=4),
    ),
    max_leaves=12,
)
generations = st.integers(0, 3)
inventory = st.fixed_dictionaries(
    {"total": ints},
    optional={
        "reserved": ints,
        "min_unit": ints,
        "max_unit": ints,
        "step_size": ints,
        "allocation_ratio": st.one_of(floats, ints),
    },
)
allocation = st.fixed_dictionaries(
    {
        "allocations": st.dictionaries(
            st.sampled_from([RP, CHILD, str(uuid.uuid4())]),
            st.fixed_dictionaries({"resources": st.dictionaries(classes, ints, max_size=3)}),
            max_size=2,
        ),
        "project_id": st.one_of(names, uuids),
        "user_id": st.one_of(names, uuids),
        "consumer_generation": st.one_of(st.none(), generations),
        "consumer_type": st.one_of(names, st.just("INSTANCE")),
    }
)
BODIES: dict[tuple[str, str], st.SearchStrategy[Any]] = {
    ("POST", "/resource_providers"): st.fixed_dictionaries(
        {"name": names}, optional={"uuid": uuids, "parent_provider_uuid": uuids}
    ),
    ("PUT", "/resource_providers/{uuid}"): st.fixed_dictionaries(
        {"name": names}, optional={"parent_provider_uuid": st.one_of(st.none(), uuids)}
    ),
    ("PUT", "/resource_providers/{uuid}/inventories"): st.fixed_dictionaries(
        {
            "resource_provider_generation": generations,
            "inventories": st.dictionaries(classes, inventory, max_size=3),
        }
    ),
    ("POST", "/resource_providers/{uuid}/inventories"): st.builds(
        lambda rc, inv: {"resource_class": rc, **inv}, classes, inventory
    ),
    ("PUT", "/resource_providers/{uuid}/inventories/{resource_class}"): st.builds(
        lambda g, inv: {"resource_provider_generation": g, **inv}, generations, inventory
    ),
    ("PUT", "/resource_providers/{uuid}/traits"): st.fixed_dictionaries(
        {"traits": st.lists(traits, max_size=3), "resource_provider_generation": generations}
    ),
    ("PUT", "/resource_providers/{uuid}/aggregates"): st.fixed_dictionaries(
        {"aggregates": st.lists(uuids, max_size=3), "resource_provider_generation": generations}
    ),
    ("PUT", "/allocations/{consumer_uuid}"): allocation,
    ("POST", "/allocations"): st.dictionaries(
        st.sampled_from([CONSUMER, str(uuid.uuid4())]), allocation, max_size=2
    ),
    ("POST", "/resource_classes"): st.fixed_dictionaries({"name": st.one_of(names, classes)}),
    ("POST", "/reshaper"): st.fixed_dictionaries(
        {
            "inventories": st.dictionaries(
                st.sampled_from([RP, CHILD]),
                st.fixed_dictionaries(
                    {
                        "resource_provider_generation": generations,
                        "inventories": st.dictionaries(classes, inventory, max_size=2),
                    }
                ),
                max_size=2,
            ),
            "allocations": st.dictionaries(st.just(CONSUMER), allocation, max_size=1),
        }
    ),
}
query_keys = st.sampled_from(
    [
        "resources",
        "resources1",
        "required",
        "required1",
        "member_of",
        "member_of1",
        "in_tree",
        "limit",
        "group_policy",
        "name",
        "uuid",
        "project_id",
        "user_id",
        "consumer_type",
        "root_required",
        "same_subtree",
    ]
)
amounts = st.builds(lambda c, n: f"{c}:{n}", classes, ints)
query_values = st.one_of(
    text,
    uuids,
    traits,
    amounts,
    st.lists(amounts, min_size=1, max_size=3).map(",".join),
    st.builds(lambda a, b: f"in:{a},{b}", uuids, uuids),
    ints.map(str),
)
versions = st.one_of(
    st.just("placement latest"),
    st.just("placement latest"),
    st.integers(0, 45).map(lambda m: f"placement 1.{m}"),
    text,
)
path_uuids = st.sampled_from([RP, RP, RP, CHILD, CONSUMER, str(uuid.uuid4()), "not-a-uuid"])


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    path: Path = tmp_path_factory.mktemp("fuzz") / "claimant.db"
    store = open_store("sqlite:///" + str(path).lstrip("/"))
    store.migrate()
    headers = {"x-auth-token": "admin", "openstack-api-version": "placement latest"}
    app = create_app(store, auth=AuthConfig.noauth2())
    with TestClient(app, headers=headers, raise_server_exceptions=False) as c:
        _providers(c)
        yield c
    store.close()


def _providers(c: TestClient) -> None:
    """The providers the examples write to (made again if an example deleted them)."""
    for rp, parent in ((RP, None), (CHILD, RP)):
        if c.get(f"/resource_providers/{rp}").status_code == 200:
            continue
        body = {"name": f"fuzz-{rp}", "uuid": rp, "parent_provider_uuid": parent}
        assert c.post("/resource_providers", json=body).status_code == 200


@pytest.mark.parametrize(("verb", "template"), ENDPOINTS, ids=[f"{v} {t}" for v, t in ENDPOINTS])
def test_no_placement_route_answers_5xx(client: TestClient, verb: str, template: str) -> None:
    shaped = BODIES.get((verb, template), json_values)

    @settings(
        max_examples=20,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        path_uuid=path_uuids,
        path_class=st.one_of(classes, text),
        query=st.lists(st.tuples(query_keys, query_values), max_size=5),
        body=st.one_of(st.none(), shaped, shaped, shaped, json_values),
        version=versions,
        current_generation=st.booleans(),
    )
    def run(
        path_uuid: str,
        path_class: str,
        query: list[tuple[str, str]],
        body: Any,
        version: str,
        current_generation: bool,
    ) -> None:
        path = (
            template.replace("{uuid}", path_uuid)
            .replace("{consumer_uuid}", path_uuid)
            .replace("{resource_class}", quote(path_class, safe="", errors="surrogatepass"))
            .replace("{name}", quote(path_class, safe="", errors="surrogatepass") or "X")
        )
        if current_generation and isinstance(body, dict) and path_uuid in (RP, CHILD):
            # Reach the store's write path: a stale generation stops at 409.
            shown = client.get(f"/resource_providers/{path_uuid}")
            if shown.status_code == 200:
                body["resource_provider_generation"] = shown.json()["generation"]
        content = None if body is None else json.dumps(body).encode("utf-8", "surrogatepass")
        headers = {"openstack-api-version": version}
        if content is not None:
            headers["content-type"] = "application/json"
        try:
            r = client.request(verb, path, params=query, content=content, headers=headers)
        except (UnicodeEncodeError, ValueError, httpx.InvalidURL):
            return  # the client itself cannot send it (a header that is not latin-1 ...)
        assert r.status_code < 500, (verb, path, query, body, version, r.text)
        if verb == "DELETE":
            _providers(client)

    run()
