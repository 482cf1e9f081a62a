"""The clients: threads that talk HTTP to the real services and record every
operation in the history.

Outcomes: a 2xx is ``ok``; a 4xx is ``fail`` (the service said no, nothing
changed); a 5xx, a timeout or a broken connection is ``info`` (unknown: it
may have happened, now or later). The mix, per client step:

- Placement moves: ``PUT /allocations/{c}`` with ``consumer_generation`` onto
  two providers at once, sometimes with empty allocations (a remove);
- ``POST /allocations`` moving two or three consumers at once;
- ``DELETE /allocations/{c}``;
- capacity stealers: a big one-provider allocation taken and freed, so that
  moves fail part-way;
- native ``POST /v1/requests`` with confirm and, later, release; some claims
  are abandoned on purpose (they must expire);
- conductor builds (``POST /v1/builds?wait=true``) and destroys.

Placement and native requests use the *shared* providers; builds use the
*build* providers only (a required trait), so what agents report running is
only ever what the conductor built.
"""

from __future__ import annotations

import random
import threading
import time
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from claimant.torture import checker as names
from claimant.torture.history import History, Op

PLACEMENT_VERSION = "placement 1.36"  # consumer_generation (1.28), no consumer_type (1.38)
# noauth2: a caller with the service role (a token alone has no role there).
AUTH = {"X-Auth-Token": "torture", "X-Roles": "service"}
PROJECT = "torture"


# What a client step does, by share (each mix sums to 1).
MIXES: dict[str, list[tuple[str, float]]] = {
    "mixed": [
        ("put", 0.30),
        ("post", 0.10),
        ("delete", 0.07),
        ("steal", 0.10),
        ("native", 0.23),
        ("build", 0.20),
    ],
    # Only Placement moves and stealers: the most multi-provider writes
    # failing part-way (issue 8, scenario 1).
    "moves": [("put", 0.50), ("post", 0.15), ("delete", 0.05), ("steal", 0.30)],
}


@dataclass
class Topology:
    """What the clients may touch."""

    service_urls: list[str]
    conductor_url: str
    shared: list[str]  # provider uuids for Placement writes and native requests
    build: list[str]  # provider uuids of the agents builds go to
    shared_trait: str
    build_trait: str
    consumers: list[str]  # the Placement consumers moved around
    timeout: float = 10.0
    mix: str = "mixed"


@dataclass
class ClientState:
    confirmed: list[tuple[str, str]] = field(default_factory=list)  # (claim, request)
    builds: list[str] = field(default_factory=list)


def _uuid() -> str:
    return str(uuidlib.uuid4())


class Client:
    """One client thread. ``rng`` makes its choices (not the timing) repeatable."""

    def __init__(
        self,
        name: str,
        topo: Topology,
        history: History,
        rng: random.Random,
        stop: threading.Event,
    ) -> None:
        self.name = name
        self.topo = topo
        self.history = history
        self.rng = rng
        self.stop = stop
        self.state = ClientState()
        self.stealer = _uuid()
        self.errors: list[str] = []
        self.down_until: dict[str, float] = {}
        self.http = httpx.Client(timeout=topo.timeout, headers=AUTH)

    # ---- plumbing -------------------------------------------------------------
    def _service(self) -> str:
        now = time.monotonic()
        up = [u for u in self.topo.service_urls if self.down_until.get(u, 0) <= now]
        return self.rng.choice(up or self.topo.service_urls)

    def _call(
        self,
        op: Op,
        method: str,
        url: str,
        *,
        ok: Callable[[Any], dict[str, Any]] | None = None,
        **kw: Any,
    ) -> Any:
        """Send one request and complete ``op`` from the answer; returns the JSON or None."""
        base = "/".join(url.split("/", 3)[:3])
        try:
            r = self.http.request(method, url, **kw)
        except httpx.HTTPError as exc:
            self.history.info(op, error=type(exc).__name__, via=base)
            if isinstance(exc, httpx.ConnectError):
                # A service being restarted refuses at once: try the others for a while.
                self.down_until[base] = time.monotonic() + 1.0
                self.stop.wait(0.05)
            return None
        try:
            data = r.json() if r.content else None
        except ValueError:
            data = None
        if r.status_code < 300:
            extra = ok(data) if ok is not None else {}
            self.history.ok(op, status=r.status_code, via=base, **extra)
            return data if data is not None else {}
        code = _error_code(data)
        if r.status_code < 500:
            self.history.fail(op, status=r.status_code, code=code, via=base)
        else:
            self.history.info(op, status=r.status_code, code=code, via=base)
        return None

    def _placement(self) -> dict[str, str]:
        return {"OpenStack-API-Version": PLACEMENT_VERSION}

    def _generation(self, consumer: str) -> tuple[bool, int | None]:
        """Read a consumer's generation (not recorded: a read changes nothing)."""
        try:
            r = self.http.get(
                f"{self._service()}/allocations/{consumer}", headers=self._placement()
            )
        except httpx.HTTPError:
            return False, None
        if r.status_code != 200:
            return False, None
        return True, r.json().get("consumer_generation")

    def _move(self, amount_max: int) -> dict[str, dict[str, int]]:
        providers = self.rng.sample(self.topo.shared, min(2, len(self.topo.shared)))
        return {
            p: {"VCPU": self.rng.randint(1, amount_max), "MEMORY_MB": 128 * self.rng.randint(1, 2)}
            for p in providers
        }

    @staticmethod
    def _body(alloc: dict[str, dict[str, int]], generation: int | None) -> dict[str, Any]:
        return {
            "allocations": {p: {"resources": r} for p, r in alloc.items()},
            "project_id": PROJECT,
            "user_id": PROJECT,
            "consumer_generation": generation,
        }

    # ---- operations -----------------------------------------------------------
    def put(self, consumer: str, alloc: dict[str, dict[str, int]]) -> None:
        fresh, gen = self._generation(consumer)
        if not fresh:
            return
        op = self.history.invoke(
            self.name, names.ALLOC_PUT, {"consumer": consumer, "allocations": alloc}
        )
        self._call(
            op,
            "PUT",
            f"{self._service()}/allocations/{consumer}",
            json=self._body(alloc, gen),
            headers=self._placement(),
        )

    def post(self) -> None:
        n = min(self.rng.randint(2, 3), len(self.topo.consumers))
        consumers = self.rng.sample(self.topo.consumers, n)
        writes: dict[str, dict[str, dict[str, int]]] = {}
        body: dict[str, Any] = {}
        for c in consumers:
            fresh, gen = self._generation(c)
            if not fresh:
                return
            writes[c] = self._move(2)
            body[c] = self._body(writes[c], gen)
        op = self.history.invoke(self.name, names.ALLOC_POST, {"writes": writes})
        url = f"{self._service()}/allocations"
        self._call(op, "POST", url, json=body, headers=self._placement())

    def delete(self, consumer: str) -> None:
        op = self.history.invoke(self.name, names.ALLOC_DELETE, {"consumer": consumer})
        url = f"{self._service()}/allocations/{consumer}"
        self._call(op, "DELETE", url, headers=self._placement())

    def steal(self) -> None:
        p = self.rng.choice(self.topo.shared)
        self.put(self.stealer, {p: {"VCPU": self.rng.randint(3, 6)}})
        if self.stop.wait(self.rng.uniform(0.05, 0.3)):
            return
        self.delete(self.stealer)

    def request(self) -> None:
        ruuid, consumer = _uuid(), _uuid()
        body = {
            "uuid": ruuid,
            "consumers": [consumer],
            "groups": [
                {
                    "resources": {"VCPU": 1, "MEMORY_MB": 128},
                    "required_traits": [self.topo.shared_trait],
                }
            ],
        }
        op = self.history.invoke(
            self.name, names.REQUEST, {"request_uuid": ruuid, "consumer": consumer}
        )
        data = self._call(op, "POST", f"{self._service()}/v1/requests", json=body, ok=_claims_of)
        if not data:
            return
        claims = _claims_of(data)["claims"]
        if self.rng.random() < 0.05:
            return  # abandoned: these claims must expire on their own
        for claim in claims:
            value = {"claim": claim, "request_uuid": ruuid, "consumer": consumer}
            cop = self.history.invoke(self.name, names.CONFIRM, value)
            if self._call(cop, "POST", f"{self._service()}/v1/claims/{claim}/confirm") is not None:
                self.state.confirmed.append((claim, ruuid))

    def release(self) -> None:
        claim, ruuid = self.state.confirmed.pop(0)
        op = self.history.invoke(self.name, names.RELEASE, {"claim": claim, "request_uuid": ruuid})
        self._call(op, "DELETE", f"{self._service()}/v1/claims/{claim}")

    def build(self) -> None:
        ruuid, consumer = _uuid(), _uuid()
        body = {
            "uuid": ruuid,
            "consumers": [consumer],
            "groups": [
                {
                    "resources": {"VCPU": 1, "MEMORY_MB": 256},
                    "required_traits": [self.topo.build_trait],
                }
            ],
        }
        op = self.history.invoke(
            self.name, names.BUILD, {"request_uuid": ruuid, "consumer": consumer}
        )
        data = self._call(
            op,
            "POST",
            f"{self.topo.conductor_url}/v1/builds",
            params={"wait": "true"},
            json=body,
            ok=_build_result,
            # A build waits for the agent: give it longer than a Placement write.
            timeout=self.topo.timeout * 3,
        )
        if data is not None:
            self.state.builds.append(ruuid)

    def destroy(self) -> None:
        ruuid = self.state.builds.pop(0)
        op = self.history.invoke(self.name, names.DESTROY, {"request_uuid": ruuid})
        url = f"{self.topo.conductor_url}/v1/builds/{ruuid}"
        self._call(op, "DELETE", url, timeout=self.topo.timeout * 3)

    # ---- the loop -------------------------------------------------------------
    def _put_some(self) -> None:
        consumer = self.rng.choice(self.topo.consumers)
        self.put(consumer, {} if self.rng.random() < 0.1 else self._move(2))

    def _native(self) -> None:
        if len(self.state.confirmed) > 3:
            self.release()
        else:
            self.request()

    def _conductor(self) -> None:
        if not self.topo.build:
            return
        if len(self.state.builds) > 2:
            self.destroy()
        else:
            self.build()

    def step(self) -> None:
        actions = {
            "put": self._put_some,
            "post": self.post,
            "delete": lambda: self.delete(self.rng.choice(self.topo.consumers)),
            "steal": self.steal,
            "native": self._native,
            "build": self._conductor,
        }
        x = self.rng.random()
        for name, share in MIXES[self.topo.mix]:
            if x < share:
                actions[name]()
                return
            x -= share

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                try:
                    self.step()
                except Exception as exc:  # a harness bug must not silently end a client
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                    if len(self.errors) > 20:
                        raise
        finally:
            self.http.close()


def _error_code(data: Any) -> str | None:
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("error"), dict):
        error: dict[str, Any] = data["error"]
    else:
        errors = data.get("errors")
        if not (isinstance(errors, list) and errors and isinstance(errors[0], dict)):
            return None
        error = errors[0]
    code = error.get("code")
    return code if isinstance(code, str) else None


def _claims_of(data: Any) -> dict[str, Any]:
    claims: list[str] = []
    for p in (data or {}).get("placements", []):
        claims.extend(c["uuid"] for c in p.get("claims", []))
    return {"claims": claims}


def _build_result(data: Any) -> dict[str, Any]:
    data = data or {}
    return {"build_status": data.get("status"), **_claims_of(data)}
