"""Prometheus metrics of one app: HTTP requests by route and status, latency,
placements, claim conflicts. With several uvicorn workers the values are
shared through ``PROMETHEUS_MULTIPROC_DIR`` (set by ``claimant serve``)."""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
        self.placements = Counter(
            "claimant_placements", "Instances placed by POST /v1/requests", registry=r
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
        self.claim_retries = Counter(
            "claimant_claim_retries", "Claim attempts retried after a conflict", registry=r
        )
        self.requests_cut = Counter(
            "claimant_requests_cut",
            "Requests stopped before they finished: reason deadline, disconnect or shutdown",
            ["reason", "method", "route"],
            registry=r,
        )

    def observe_schedule(self, result: Any) -> None:
        self.requests_scheduled.inc()
        self.placements.inc(len(result.placements))
        stats = result.stats
        get = stats.get if isinstance(stats, dict) else lambda k, d=0: getattr(stats, k, d)
        conflicts = get("conflicts", 0) or 0
        retries = get("retries", 0) or 0
        elapsed = get("elapsed_s", 0.0) or 0.0
        if elapsed:
            self.schedule_seconds.observe(elapsed)
        if conflicts:
            self.claim_conflicts.inc(conflicts)
        if retries:
            self.claim_retries.inc(retries)

    def render(self) -> tuple[bytes, str]:
        if os.environ.get(MULTIPROC_ENV):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


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
