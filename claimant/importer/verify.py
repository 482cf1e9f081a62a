"""``claimant import placement --verify``: ask the source Placement and
claimant the same GETs, the ones Nova's report client and scheduler make,
and report every difference in the answers.

What is compared, at microversion 1.39 (Placement 16's newest):
``/resource_providers`` (whole list, and filtered by ``in_tree``,
``member_of``, ``required``, ``resources``), per provider its record,
``/inventories``, ``/usages``, ``/traits``, ``/aggregates`` and
``/allocations``; ``/allocations/{consumer}`` of every consumer those
listings name; ``/usages`` per project (and user, and consumer type);
``/resource_classes``, custom ``/traits``; ``/allocation_candidates`` for a
sample of requests built from the cloud's own classes, traits, aggregates
and trees (plus any given), compared whole (no ``limit``: with one,
Placement and claimant may pick different, equally valid, subsets).
Answers are compared as data: lists whose order means nothing are sorted.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote

import httpx

VERSION: Final = "placement 1.39"
# Shown per side in the difference table: enough to read, short enough for 80 columns.
SHOWN: Final = 120


class ServiceError(Exception):
    """A service could not be reached or answered a GET with 5xx."""


@dataclass(frozen=True, slots=True)
class Difference:
    path: str
    where: str
    source: str
    target: str


@dataclass(slots=True)
class VerifyResult:
    requests: int = 0
    providers: int = 0
    consumers: int = 0
    candidate_queries: int = 0
    differences: list[Difference] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "providers": self.providers,
            "consumers": self.consumers,
            "candidate_queries": self.candidate_queries,
            "differences": [
                {"get": d.path, "where": d.where, "placement": d.source, "claimant": d.target}
                for d in self.differences
            ],
        }


def _short(value: Any) -> str:
    if value is _MISSING:
        return "(absent)"
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= SHOWN else text[: SHOWN - 3] + "..."


class _Missing:
    pass


_MISSING: Final = _Missing()


def normalize(path: str, body: Any) -> Any:
    """Order that carries no meaning removed, so equal answers compare equal."""
    if isinstance(body, dict):
        out: dict[str, Any] = {}
        for key, value in body.items():
            if key == "resource_providers" and isinstance(value, list):
                out[key] = {p.get("uuid", i): normalize(path, p) for i, p in enumerate(value)}
            elif key == "allocation_requests" and isinstance(value, list):
                out[key] = sorted(json.dumps(normalize(path, a), sort_keys=True) for a in value)
            elif key in ("traits", "aggregates") and isinstance(value, list):
                out[key] = sorted(value)
            elif key == "links" and isinstance(value, list):
                out[key] = sorted(json.dumps(v, sort_keys=True) for v in value)
            elif key == "resource_classes" and isinstance(value, list):
                out[key] = {rc.get("name"): normalize(path, rc) for rc in value}
            elif key == "mappings" and isinstance(value, dict):
                out[key] = {k: sorted(v) for k, v in value.items()}
            else:
                out[key] = normalize(path, value)
        return out
    if isinstance(body, list):
        return [normalize(path, v) for v in body]
    return body


def diff(path: str, a: Any, b: Any, where: str = "") -> list[Difference]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[Difference] = []
        for key in sorted(set(a) | set(b), key=str):
            out += diff(path, a.get(key, _MISSING), b.get(key, _MISSING), f"{where}/{key}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            out += diff(path, x, y, f"{where}/{i}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        only_a = [x for x in a if x not in b]
        only_b = [y for y in b if y not in a]
        return [
            Difference(
                path,
                f"{where} ({len(a)} vs {len(b)} items)",
                _short(only_a or a),
                _short(only_b or b),
            )
        ]
    if a == b and type(a) is type(b):
        return []
    if isinstance(a, int | float) and isinstance(b, int | float) and float(a) == float(b):
        return []
    return [Difference(path, where or "/", _short(a), _short(b))]


class _Side:
    def __init__(self, name: str, url: str, token: str) -> None:
        self.name = name
        self.url = url.rstrip("/")
        self.http = httpx.Client(
            base_url=self.url,
            headers={
                "x-auth-token": token,
                "openstack-api-version": VERSION,
                "accept": "application/json",
            },
            timeout=120,
        )

    def get(self, path: str) -> tuple[int, Any]:
        try:
            r = self.http.get(path)
        except httpx.TransportError as exc:
            raise ServiceError(f"cannot reach {self.name} at {self.url}: {exc}") from None
        if r.status_code >= 500:
            raise ServiceError(f"{self.name} answered GET {path} with {r.status_code}")
        if r.status_code in (401, 403):
            raise ServiceError(
                f"{self.name} refused GET {path} ({r.status_code}): give an admin token"
            )
        try:
            body = r.json() if r.content else None
        except ValueError:
            body = r.text
        if r.status_code >= 400 and isinstance(body, dict):
            # Error bodies carry request ids; the status and code are what matter.
            body = [(e.get("status"), e.get("code")) for e in body.get("errors", [])]
        return r.status_code, body


class _Compare:
    def __init__(self, source: _Side, target: _Side, result: VerifyResult) -> None:
        self.source, self.target, self.result = source, target, result

    def __call__(self, path: str) -> Any:
        """GET ``path`` from both; record differences; the source's body."""
        s_status, s_body = self.source.get(path)
        t_status, t_body = self.target.get(path)
        self.result.requests += 1
        if s_status != t_status:
            self.result.differences.append(
                Difference(path, "HTTP status", str(s_status), str(t_status))
            )
            return s_body if s_status < 400 else None
        self.result.differences += diff(path, normalize(path, s_body), normalize(path, t_body))
        return s_body if s_status < 400 else None


def verify(
    source_url: str,
    target_url: str,
    *,
    source_token: str = "admin",
    target_token: str = "admin",
    sample: int = 200,
    extra_requests: list[str] | None = None,
    seed: int = 0,
) -> VerifyResult:
    result = VerifyResult()
    source = _Side("Placement", source_url, source_token)
    target = _Side("claimant", target_url, target_token)
    try:
        _run(_Compare(source, target, result), result, sample, extra_requests or [], seed)
    finally:
        source.http.close()
        target.http.close()
    return result


def _run(get: _Compare, result: VerifyResult, sample: int, extra: list[str], seed: int) -> None:
    rnd = random.Random(seed)
    listing = get("/resource_providers") or {}
    providers: list[dict[str, Any]] = listing.get("resource_providers", [])
    get("/resource_classes")
    get("/traits?name=startswith:CUSTOM_")

    # A sample of trees, whole: Nova reads a host's tree together.
    roots = sorted({p["root_provider_uuid"] for p in providers})
    picked_roots = set(rnd.sample(roots, min(len(roots), sample)))
    chosen = [p for p in providers if p["root_provider_uuid"] in picked_roots]
    result.providers = len(chosen)
    classes: set[str] = set()
    traits: set[str] = set()
    aggregates: set[str] = set()
    consumers: set[str] = set()
    for p in chosen:
        u = p["uuid"]
        get(f"/resource_providers/{u}")
        if u == p["root_provider_uuid"]:
            get(f"/resource_providers?in_tree={u}")
        inv = get(f"/resource_providers/{u}/inventories") or {}
        classes |= set(inv.get("inventories", {}))
        get(f"/resource_providers/{u}/usages")
        traits |= set((get(f"/resource_providers/{u}/traits") or {}).get("traits", []))
        aggregates |= set((get(f"/resource_providers/{u}/aggregates") or {}).get("aggregates", []))
        allocs = get(f"/resource_providers/{u}/allocations") or {}
        consumers |= set(allocs.get("allocations", {}))

    for agg in sorted(aggregates)[:sample]:
        get(f"/resource_providers?member_of={agg}")
    for trait in sorted(traits)[:sample]:
        get(f"/resource_providers?required={trait}")
    for rc in sorted(classes):
        get(f"/resource_providers?resources={rc}:1")

    owners: set[tuple[str, str]] = set()
    picked = sorted(consumers)
    for c in rnd.sample(picked, min(len(picked), sample)):
        body = get(f"/allocations/{c}") or {}
        result.consumers += 1
        if body.get("project_id"):
            owners.add((body["project_id"], body["user_id"]))
    for project in sorted({p for p, _ in owners}):
        get(f"/usages?project_id={project}")
        get(f"/usages?project_id={project}&consumer_type=all")
        get(f"/usages?project_id={project}&consumer_type=INSTANCE")
    for project, user in sorted(owners)[:sample]:
        get(f"/usages?project_id={project}&user_id={user}")

    queries = candidate_queries(classes, traits, aggregates, sorted(picked_roots), rnd) + extra
    for query in queries:
        get("/allocation_candidates?" + query)
        result.candidate_queries += 1


def candidate_queries(
    classes: set[str],
    traits: set[str],
    aggregates: set[str],
    roots: list[str],
    rnd: random.Random,
) -> list[str]:
    """Requests shaped like Nova's, from what the cloud holds: a flavor's
    VCPU/MEMORY_MB/DISK_GB (DISK_GB may come from a sharing provider), each
    other class alone and as a granular group next to the flavor, required
    and forbidden traits, member_of, in_tree (a move to a chosen host), and
    one that nothing can satisfy."""
    base = [rc for rc in ("VCPU", "MEMORY_MB") if rc in classes]
    flavor = ",".join(f"{rc}:{n}" for rc, n in (("VCPU", 1), ("MEMORY_MB", 512)) if rc in base)
    out: list[str] = []
    if flavor:
        out.append(f"resources={flavor}")
        if "DISK_GB" in classes:
            out.append(f"resources={flavor},DISK_GB:10")
    for rc in sorted(classes - {"VCPU", "MEMORY_MB", "DISK_GB"}):
        out.append(f"resources={rc}:1")
        if flavor:
            out.append(f"resources={flavor}&resources1={rc}:1&group_policy=isolate")
    if flavor:
        for trait in sorted(traits)[:5]:
            out.append(f"resources={flavor}&required={quote(trait)}")
            out.append(f"resources={flavor}&required=!{quote(trait)}")
        for agg in sorted(aggregates)[:3]:
            out.append(f"resources={flavor}&member_of={agg}")
        for root in rnd.sample(roots, min(3, len(roots))):
            out.append(f"resources={flavor}&in_tree={root}")
        out.append("resources=VCPU:100000" if "VCPU" in classes else f"resources={flavor}")
    return out
