"""Prometheus metrics of one app: HTTP requests by route and status, latency,
placements, claim conflicts, and the cloud's capacity, use, health and live
claims (``StoreCollector``: computed at scrape time from one aggregate store
read, cached a few seconds). With several uvicorn workers the counters are
shared through ``PROMETHEUS_MULTIPROC_DIR`` (set by ``claimant serve``)."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from claimant.model import ClaimantError
from claimant.store.base import CloudSummary, Store

log = logging.getLogger("claimant.api.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# The *_created samples only add noise to every counter.
disable_created_metrics()


class Metrics:
    def __init__(self) -> None:
        # One registry per app, so several apps (tests) never clash.
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "claimant_http_requests", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "claimant_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        # result: placed (instances placed) or failed (instances of a request
        # that could not be placed: no valid host, or the rest of a partial one).
        self.placements = Counter(
            "claimant_placements",
            "Instances by outcome of POST /v1/requests",
            ["result"],
            registry=r,
        )
        self.requests_scheduled = Counter(
            "claimant_requests_scheduled", "Requests scheduled", registry=r
        )
        self.no_valid_host = Counter(
            "claimant_no_valid_host", "Requests that found no valid host", registry=r
        )
        self.claim_conflicts = Counter(
            "claimant_claim_conflicts",
            "Claims that lost a compare-and-set on a provider generation",
            registry=r,
        )
        self.schedule_seconds = Histogram(
            "claimant_schedule_duration_seconds",
            "Time the scheduler spent on one request (store queries and claims)",
            registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        # The name; claimant_schedule_duration_seconds stays for
        # existing dashboards (the same observations).
        self.schedule_histogram = Histogram(
            "claimant_schedule_seconds",
            "Time the scheduler spent on one request (store queries and claims)",
            registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.claim_retries = Counter(
            "claimant_claim_retries", "Claim attempts retried after a conflict", registry=r
        )
        self.requests_cut = Counter(
            "claimant_requests_cut",
            "Requests stopped before they finished: reason deadline, disconnect or shutdown",
            ["reason", "method", "route"],
            registry=r,
        )

        self.store_collector: StoreCollector | None = None

    def watch_store(self, store: Store, heartbeat_timeout: float | None) -> None:
        """Add the cloud gauges (capacity, use, health, live claims)."""
        self.store_collector = StoreCollector(store, heartbeat_timeout)
        self.registry.register(self.store_collector)

    def observe_no_valid_host(self, placed: int, count: int) -> None:
        self.no_valid_host.inc()
        self.placements.labels("failed").inc(max(count - placed, 0))

    def observe_schedule(self, result: Any) -> None:
        self.requests_scheduled.inc()
        self.placements.labels("placed").inc(len(result.placements))
        if getattr(result, "partial", None) is not None:
            self.placements.labels("failed").inc(result.request.count - len(result.placements))
        stats = result.stats
        get = stats.get if isinstance(stats, dict) else lambda k, d=0: getattr(stats, k, d)
        conflicts = get("conflicts", 0) or 0
        retries = get("retries", 0) or 0
        elapsed = get("elapsed_s", 0.0) or 0.0
        if elapsed:
            self.schedule_seconds.observe(elapsed)
            self.schedule_histogram.observe(elapsed)
        if conflicts:
            self.claim_conflicts.inc(conflicts)
        if retries:
            self.claim_retries.inc(retries)

    def render(self) -> tuple[bytes, str]:
        if os.environ.get(MULTIPROC_ENV):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            if self.store_collector is not None:
                registry.register(self.store_collector)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class StoreCollector(Collector):
    """The cloud's gauges, from ``Store.summary`` at scrape time. The summary
    is cached ``ttl`` seconds: on Cassandra it reads every provider's static
    row, and several scrapers (or a dashboard) must not multiply that."""

    def __init__(
        self,
        store: Store,
        heartbeat_timeout: float | None,
        *,
        ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.heartbeat_timeout = heartbeat_timeout
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, CloudSummary] | None = None

    def summary(self) -> CloudSummary | None:
        with self._lock:
            now = self.clock()
            if self._cached is not None and now - self._cached[0] < self.ttl:
                return self._cached[1]
            timeout = self.heartbeat_timeout
            after = self.store.clock() - timeout if timeout is not None else None
            try:
                s = self.store.summary(after)
            except ClaimantError as exc:
                # A scrape must answer even when the store does not.
                log.warning("cloud gauges skipped: %s", exc.message)
                return None
            self._cached = (now, s)
            return s

    def collect(self) -> Iterator[Any]:
        expired = CounterMetricFamily(
            "claimant_claims_expired",
            "Claims this process saw expire and swept",
        )
        expired.add_metric([], float(self.store.expired_seen))
        yield expired
        s = self.summary()
        if s is None:
            return
        cap = GaugeMetricFamily(
            "claimant_provider_capacity",
            "Capacity summed over providers, per resource class",
            labels=["resource_class"],
        )
        used = GaugeMetricFamily(
            "claimant_provider_used",
            "Used (allocations and live claims) summed over providers, per resource class",
            labels=["resource_class"],
        )
        for rc in sorted(s.capacity):
            cap.add_metric([rc], s.capacity[rc])
            used.add_metric([rc], s.used.get(rc, 0))
        providers = GaugeMetricFamily(
            "claimant_providers",
            "Providers by agent health (up, stale, no_agent) and enabled",
            labels=["health", "enabled"],
        )
        for health in ("up", "stale", "no_agent"):
            for enabled in (True, False):
                n = s.providers.get((health, enabled), 0)
                providers.add_metric([health, str(enabled).lower()], n)
        live = GaugeMetricFamily("claimant_claims_live", "Unconfirmed claims not yet expired")
        live.add_metric([], s.claims_live)
        yield from (cap, used, providers, live)


def route_label(scope: Scope, unmatched: str = "unmatched") -> str:
    """The route template (``/v1/providers/{uuid}``), never the raw path, so
    label values stay few. ``unmatched``: the label of paths no route of ours
    matched (with the Placement API mounted at "/", that API's)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path is None or not getattr(route, "methods", None):
        return unmatched
    return str(scope.get("root_path", "")) + str(path)


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, unmatched: str = "unmatched") -> None:
        self.app = app
        self.metrics = metrics
        self.unmatched = unmatched

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = route_label(scope, self.unmatched)
            method = scope.get("method", "")
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - start)
