"""Each page of the dashboard at /ui/, in a real Chromium against a real
``claimant serve``: what it shows must be what the API says (issue 11)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.serve_support import serve
from tests.ui.conftest import AGG_B, Cloud, Watched, screenshot

WAIT = 30_000  # ms: how long an element may take to appear (not a measurement)


def _open(w: Watched, cloud: Cloud, route: str) -> Any:
    cloud.beat()
    page = w.page
    page.goto(f"{cloud.url}/ui/#{route}")
    page.wait_for_selector("#updated:text-matches('updated'), #banner:visible", timeout=WAIT)
    assert page.locator("#banner").is_hidden(), page.inner_text("#banner")
    return page


def _cells(page: Any, selector: str) -> list[list[str]]:
    rows = page.locator(selector + " tbody tr")
    return [
        [c.strip() for c in rows.nth(i).locator("td").all_inner_texts()]
        for i in range(rows.count())
    ]


def test_overview_shows_capacity_per_class_and_aggregate_and_a_heat_map(
    cloud: Cloud, watched: Watched
) -> None:
    fetched: list[str] = []
    watched.page.on("request", lambda req: fetched.append(req.url))
    page = _open(watched, cloud, "/")
    assert page.inner_text("#stat-hosts .big") == str(len(cloud.hosts))
    stat = page.inner_text("#stat-hosts")
    assert "1 stale" in stat and "1 down" in stat and "1 disabled" in stat

    # Totals per class are the sums of every provider's usages.
    with cloud.api() as api:
        totals: dict[str, dict[str, int]] = {}
        for p in api.get("/v1/providers").json()["providers"]:
            usages = api.get(f"/v1/providers/{p['uuid']}/usages").json()["usages"]
            for rc, u in usages.items():
                t = totals.setdefault(rc, {"capacity": 0, "used": 0, "free": 0})
                for k in t:
                    t[k] += u[k]
    rows = {r[0]: r for r in _cells(page, "table.classes")}
    assert set(rows) == set(totals) == {"DISK_GB", "MEMORY_MB", "VCPU", "VGPU"}
    for rc, t in totals.items():
        used, free, capacity = (f"{t[k]:,}" for k in ("used", "free", "capacity"))
        assert rows[rc][2:5] == [used, free, capacity], rc
    assert totals["VCPU"]["used"] == 8 * 4 + 12 * 2
    with cloud.api() as api:
        listing = api.get("/v1/openapi.json").json()["paths"]["/providers"]["get"]
        capacity = api.get("/v1/capacity")
    if "include" in [p["name"] for p in listing.get("parameters", [])]:
        # One listing with usage and health, not one GET per provider.
        assert not [u for u in fetched if u.endswith("/usages")], fetched
    if capacity.status_code == 200:
        header = page.locator("table.classes th").all_inner_texts()
        column = header.index("schedulable free")
        for rc, c in capacity.json()["resource_classes"].items():
            assert rows[rc][column] == f"{c['schedulable_free']:,}", rc

    # The heat map: every host once per aggregate, marked by health.
    groups = page.locator(".heat-group")
    assert groups.count() == 3  # aggregate A, aggregate B, and no aggregate
    cells = page.locator(".heatmap .cell")
    names = sorted(cells.evaluate_all("els => els.map(e => e.dataset.host)"))
    assert names == sorted(cloud.hosts)
    assert page.locator(".cell.health-stale[data-host='rack-a-4']").count() == 1
    assert page.locator(".cell.health-down[data-host='rack-b-1']").count() == 1
    assert page.locator(".cell.off[data-host='rack-b-4']").count() == 1
    gpu = page.locator(".cell[data-host='numa-gpu-1']")
    assert gpu.inner_text().split() == ["numa-gpu-1", "75%"]  # VGPU 3 of 4: its fullest class
    screenshot(page, "overview")
    page.select_option("#heat-class", "VCPU")
    page.wait_for_selector(".cell[data-host='numa-gpu-1'] .pct:text-is('0%')", timeout=WAIT)

    aggs = {r[0]: r for r in _cells(page, "table.aggregates")}
    assert aggs["rack-a"][1] == "4"  # a named aggregate shows its name
    assert aggs[f"aggregate {AGG_B[:8]}"][1] == "5"
    assert aggs["in no aggregate"][1] == "1"
    watched.clean()


def test_hosts_list_has_health_enabled_and_usage(cloud: Cloud, watched: Watched) -> None:
    page = _open(watched, cloud, "/hosts")
    rows = {r[0]: r for r in _cells(page, "table.hosts")}
    assert set(rows) == set(cloud.hosts)
    header = page.locator("table.hosts th").all_inner_texts()
    health, enabled = header.index("health"), header.index("enabled")
    assert rows["rack-a-1"][health] == "up"
    assert rows["rack-a-4"][health] == "stale"
    assert rows["rack-b-1"][health] == "down"
    assert rows["edge-1"][health] == "no agent"
    assert rows["rack-b-4"][enabled] == "disabled"
    assert rows["rack-a-1"][enabled] == "enabled"
    vgpu = header.index("VGPU")
    assert rows["numa-gpu-1"][vgpu] == "3 / 4"  # a tree's usage is summed on its root
    assert rows["rack-a-1"][1] == cloud.hosts["rack-a-1"][:8]

    page.fill("#host-filter", "rack-b")
    page.wait_for_selector("text=4 of 10 hosts", timeout=WAIT)
    page.fill("#host-filter", "")
    page.select_option("#host-health", "stale")
    assert [r[0] for r in _cells(page, "table.hosts")] == ["rack-a-4"]
    page.select_option("#host-health", "")
    screenshot(page, "hosts")
    watched.clean()


def test_host_page_shows_usage_consumers_and_events(cloud: Cloud, watched: Watched) -> None:
    web = cloud.requests["web"]
    claim = web["placements"][0]["claims"][0]
    host = claim["provider_uuid"]
    name = next(n for n, u in cloud.hosts.items() if u == host)
    page = _open(watched, cloud, f"/hosts/{host}")
    assert page.inner_text("h1").split()[:2] == [name, "up"]
    consumers = _cells(page, "table.consumers")
    assert [claim["consumer_uuid"][:8], "allocation"] == consumers[0][:2]
    assert any(r[3] == web["uuid"][:8] for r in consumers)
    events = page.locator("section:has(h2:text-is('Events'))")
    with cloud.api() as api:
        has_events = "/providers/{uuid}/events" in api.get("/v1/openapi.json").json()["paths"]
    if has_events:
        assert events.locator("ol.timeline li").count() > 0
    else:  # says why there is nothing, instead of an empty box
        assert "keeps no provider event history" in events.inner_text()
    screenshot(page, "host")

    # From a consumer to its request.
    page.click(f"table.consumers a:text-is('{web['uuid'][:8]}')")
    page.wait_for_selector(f"h1:has-text('{web['uuid']}')", timeout=WAIT)
    watched.clean()


def test_a_tree_host_lists_its_nested_providers(cloud: Cloud, watched: Watched) -> None:
    page = _open(watched, cloud, f"/hosts/{cloud.hosts['numa-gpu-1']}")
    assert "no inventory of its own" in page.inner_text("section:has(h2:text-is('Usage'))")
    nested = {r[0]: r for r in _cells(page, "section:has(h2:text-is('Nested providers'))")}
    assert set(nested) == set(cloud.children)
    assert nested["numa-gpu-1-gpu0"][1:] == ["numa-gpu-1", "compute", "VGPU"]
    page.click("a:text-is('numa-gpu-1-gpu0')")
    page.wait_for_selector("h1:has-text('numa-gpu-1-gpu0')", timeout=WAIT)
    page.wait_for_selector("table.consumers", timeout=WAIT)
    assert _cells(page, "table.consumers")[0][2] == "VGPU 3"
    watched.clean()


def test_requests_list_and_a_placed_request(cloud: Cloud, watched: Watched) -> None:
    page = _open(watched, cloud, "/requests")
    rows = {r[0]: r for r in _cells(page, "table.requests")}
    assert rows[cloud.requests["web"]["uuid"][:8]][1] == "scheduled"
    assert rows[cloud.failed_request[:8]][1] == "failed"
    assert "no valid host" in rows[cloud.failed_request[:8]][-1]
    page.select_option("#request-status", "failed")
    page.wait_for_selector("table.requests tbody tr >> nth=0", timeout=WAIT)
    page.wait_for_function(
        "() => document.querySelectorAll('table.requests tbody tr').length === 1", timeout=WAIT
    )
    page.select_option("#request-status", "")

    db = cloud.requests["db"]
    page.goto(f"{cloud.url}/ui/#/requests/{db['uuid']}")
    page.wait_for_selector("table.placements", timeout=WAIT)
    placed = _cells(page, "table.placements")
    names = {u: n for n, u in cloud.hosts.items()}
    expected = {names[c["provider_uuid"]] for p in db["placements"] for c in p["claims"]}
    assert {r[2] for r in placed} == expected
    assert {frozenset(r[3].split(", ")) for r in placed} == {
        frozenset({"VCPU 12", "MEMORY_MB 40,000", "DISK_GB 600"})
    }
    history = page.inner_text("section:has(h2:text-is('History')) ol.timeline")
    assert "scheduled" in history
    screenshot(page, "request")
    watched.clean()


def test_a_failed_request_says_why(cloud: Cloud, watched: Watched) -> None:
    page = _open(watched, cloud, f"/requests/{cloud.failed_request}")
    assert "failed" in page.inner_text("h1")
    assert "No live claims: it failed" in page.inner_text("section:has(h2:text-is('Placements'))")
    why = _cells(page, "table.why")
    assert why[0][0:2] == ["(default)", "VCPU=64"]
    assert "closest" in why[0][-1]
    screenshot(page, "request-failed")
    page.click("a:text-is('Explain this request')")
    page.wait_for_function(
        "() => document.querySelector('#ex-body').value.includes('\"VCPU\": 64')", timeout=WAIT
    )
    watched.clean()


def test_explain_runs_without_claiming_or_says_it_cannot(cloud: Cloud, watched: Watched) -> None:
    with cloud.api() as api:
        doc = api.get("/v1/openapi.json").json()
        before = api.get("/v1/requests", params={"limit": 1000}).json()["requests"]
    post = doc["paths"]["/requests"]["post"]
    dry_run = "dry_run" in [p["name"] for p in post.get("parameters", [])]
    page = watched.page
    page.goto(f"{cloud.url}/ui/#/explain")
    page.wait_for_selector("#ex-go", timeout=WAIT)
    if dry_run:
        page.fill("#ex-resources", "VCPU=4,MEMORY_MB:4096")
        page.fill("#ex-required", "HW_CPU_X86_AVX2")
        page.click("#ex-go")
        page.wait_for_selector("#ex-out .verdict, #ex-out .note.bad", timeout=WAIT)
        verdict = page.inner_text("#ex-out .verdict")
        assert verdict.startswith("It fits."), page.inner_text("#ex-out")
        candidates = _cells(page, "#ex-out table.candidates")
        up = {f"rack-a-{i}" for i in (1, 2, 3)} | {"rack-b-2", "rack-b-3"}
        assert {r[1] for r in candidates} <= up and candidates[0][0].startswith("1")
        chosen = page.inner_text("#ex-out .decision-group h3")
        assert any(f"would choose {n}" in chosen for n in up), chosen
        screenshot(page, "explain")

        # A host only a stale agent could take: named, with why.
        stale = cloud.hosts["rack-a-4"]
        body = {"groups": [{"resources": {"VCPU": 1}, "in_tree": stale}]}
        page.click("form.explain summary")
        page.fill("#ex-body", json.dumps(body))
        page.click("#ex-go")
        page.wait_for_selector("#ex-out .verdict.nofit", timeout=WAIT)
        assert "rack-a-4: stale" in page.inner_text("#ex-out")
    else:
        page.wait_for_selector("#ex-go:disabled", timeout=WAIT)
        assert "cannot explain a request without claiming" in page.inner_text(".note.degraded")
    with cloud.api() as api:
        after = api.get("/v1/requests", params={"limit": 1000}).json()["requests"]
    # Explaining claims nothing.
    assert sum(len(r["claims"]) for r in after) == sum(len(r["claims"]) for r in before)
    watched.clean()


def test_live_refresh_shows_a_new_host_without_reloading(cloud: Cloud, watched: Watched) -> None:
    page = _open(watched, cloud, "/hosts")
    page.evaluate("() => { window.__sameDocument = true; }")
    with cloud.api() as api:
        body = {"name": "late-1", "inventories": {"VCPU": {"total": 2}}}
        r = api.post("/v1/providers", json=body)
        assert r.status_code == 201, r.text
        try:
            page.wait_for_selector("table.hosts a:text-is('late-1')", timeout=WAIT)
            assert page.evaluate("() => window.__sameDocument") is True
        finally:
            assert api.delete(f"/v1/providers/{r.json()['uuid']}").status_code == 204
    watched.clean()


def test_names_holding_markup_stay_text(cloud: Cloud, watched: Watched) -> None:
    evil = '<img src=x onerror="window.__pwned = 1">'
    with cloud.api() as api:
        body = {
            "name": evil,
            "inventories": {"VCPU": {"total": 2}},
            "attributes": {"cpu_model": "<script>window.__pwned = 2</script>"},
        }
        r = api.post("/v1/providers", json=body)
        assert r.status_code == 201, r.text
        try:
            for route in ("/", "/hosts", f"/hosts/{r.json()['uuid']}"):
                page = _open(watched, cloud, route)
                page.wait_for_selector(f"text={evil}", timeout=WAIT)
                assert page.locator("main img, main script").count() == 0
                assert page.evaluate("() => window.__pwned") is None
        finally:
            assert api.delete(f"/v1/providers/{r.json()['uuid']}").status_code == 204
    watched.clean()


def test_swagger_ui_works_offline(cloud: Cloud, watched: Watched) -> None:
    page = watched.page
    page.goto(f"{cloud.url}/v1/docs")
    page.wait_for_selector(".opblock-summary-path[data-path='/requests']", timeout=WAIT)
    assert page.locator(".opblock").count() >= 30
    watched.clean()  # nothing was fetched from outside loopback


def test_the_token_comes_from_the_operator_in_tokens_mode(
    browser: Any, tmp_path: Path, token_file: Path
) -> None:
    with serve(tmp_path, "--auth", "tokens", "--token-file", str(token_file)) as served:
        with httpx.Client(base_url=served.url, headers={"x-auth-token": "admin-secret"}) as api:
            body = {"name": "only-1", "inventories": {"VCPU": {"total": 4}}}
            r = api.post("/v1/providers", json=body)
            assert r.status_code == 201, r.text
        context = browser.new_context()
        try:
            page = context.new_page()
            sent: list[str | None] = []
            page.on(
                "request",
                lambda req: (
                    sent.append(req.headers.get("x-auth-token"))
                    if "/v1/providers" in req.url
                    else None
                ),
            )
            page.goto(f"{served.url}/ui/#/hosts")
            page.wait_for_selector("#banner:has-text('401')", timeout=WAIT)
            assert "Enter your token above" in page.inner_text("#banner")

            page.fill("#token", "reader-secret")
            page.click("#token-form button[type=submit]")
            page.wait_for_selector("table.hosts a:text-is('only-1')", timeout=WAIT)
            assert page.locator("#banner").is_hidden()
            assert sent[-1] == "reader-secret"
            # Kept for this tab only, never in localStorage or a cookie.
            stored = page.evaluate("() => JSON.stringify([sessionStorage, localStorage])")
            assert json.loads(stored) == [{"claimant.token": "reader-secret"}, {}]
            assert context.cookies() == []

            other = context.new_page()
            other.goto(f"{served.url}/ui/#/hosts")
            other.wait_for_selector("#banner:has-text('401')", timeout=WAIT)
        finally:
            context.close()


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.json"
    path.write_text(
        json.dumps(
            {"tokens": {"admin-secret": {"role": "admin"}, "reader-secret": {"role": "reader"}}}
        )
    )
    path.chmod(0o600)
    return path
