"""``/healthz`` and ``/metrics`` of the agent and the conductor (both public,
as the service's own: they carry counts, never a uuid or a token).

Values are read from the agent or the conductor at scrape time (a custom
collector): nothing here is a second copy of their state."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool

log = logging.getLogger("claimant.observe")

Sample = tuple[str, str, str, dict[str, str], float]  # kind, name, help, labels, value


class _Samples(Collector):
    def __init__(self, read: Callable[[], list[Sample]]) -> None:
        self.read = read

    def collect(self) -> Iterator[Any]:
        families: dict[str, Any] = {}
        for kind, name, doc, labels, value in self.read():
            fam = families.get(name)
            if fam is None:
                cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
                fam = families[name] = cls(name, doc, labels=sorted(labels))
            fam.add_metric([labels[k] for k in sorted(labels)], value)
        yield from families.values()


def install(app: FastAPI, check: Callable[[], object], samples: Callable[[], list[Sample]]) -> None:
    """``check``: raises when the process cannot do its job (its store
    unreadable); ``samples``: the metric values now."""
    registry = CollectorRegistry()
    registry.register(_Samples(samples))

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        try:
            await run_in_threadpool(check)
        except Exception as exc:  # any failure to check means not healthy
            log.warning("health check failed: %s", exc)
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        data = await run_in_threadpool(generate_latest, registry)
        return Response(data, media_type=CONTENT_TYPE_LATEST)


def agent_samples(agent: Any) -> list[Sample]:
    p_at = agent.last_heartbeat
    out: list[Sample] = [
        ("counter", "claimant_agent_builds", "Build messages handled", {}, agent.builds),
        (
            "counter",
            "claimant_agent_build_failures",
            "Builds that failed",
            {},
            agent.build_failures,
        ),
        ("gauge", "claimant_agent_instances", "Instances running here", {}, len(agent.running())),
    ]
    if p_at is not None:
        out.append(
            (
                "gauge",
                "claimant_agent_heartbeat_age_seconds",
                "Seconds since this agent's last heartbeat was written",
                {},
                max(0.0, time.time() - p_at),
            )
        )
    return out


def conductor_samples(conductor: Any) -> list[Sample]:
    out: list[Sample] = [
        (
            "counter",
            "claimant_conductor_builds",
            "Requests the conductor finished, by final status",
            {"result": result},
            n,
        )
        for result, n in sorted(conductor.outcomes.items())
    ]
    out.append(
        (
            "counter",
            "claimant_conductor_reschedules",
            "Instances rebuilt on another host after a failed build",
            {},
            conductor.rescheduled,
        )
    )
    out.append(
        (
            "gauge",
            "claimant_conductor_agents",
            "Agents known (by URL)",
            {},
            len(set(conductor.agents.listing().values())),
        )
    )
    return out
