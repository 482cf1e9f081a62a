"""Issue 11: the conductor and the agent answer /healthz and /metrics
(without a token, as the API does), with their own counts."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from claimant.agent.http import create_agent_app
from claimant.conductor import AgentDirectory, Conductor
from claimant.conductor.http import create_conductor_app
from claimant.scheduler import Scheduler
from claimant.store import Store

from .conftest import AgentFactory


def _value(text: str, sample: str) -> float:
    m = re.search(rf"^{re.escape(sample)} ([0-9.e+-]+)$", text, re.M)
    assert m, f"{sample} not in {text}"
    return float(m.group(1))


def test_conductor_and_agent_health_and_metrics(store: Store, make_agent: AgentFactory) -> None:
    good = make_agent(store, "host-good")
    agents = AgentDirectory()
    agents.add([good.uuid], good)
    conductor = Conductor(store, Scheduler(store), agents)
    flavor = {"flavor": {"vcpus": 1, "memory_mb": 256}}
    with (
        TestClient(create_conductor_app(conductor, token="s3cret")) as c,
        TestClient(create_agent_app(good, token="s3cret")) as a,
    ):
        for http in (c, a):
            assert http.get("/healthz").json() == {"status": "ok"}
        r = c.post(
            "/v1/builds", params={"wait": "true"}, json=flavor, headers={"X-Auth-Token": "s3cret"}
        )
        assert r.status_code == 201, r.text
        assert c.get("/v1/builds/x").status_code == 401  # the rest still needs the token
        text = c.get("/metrics").text
        assert _value(text, 'claimant_conductor_builds_total{result="active"}') == 1
        assert _value(text, "claimant_conductor_reschedules_total") == 0
        assert _value(text, "claimant_conductor_agents") == 1
        text = a.get("/metrics").text
        assert _value(text, "claimant_agent_builds_total") == 1
        assert _value(text, "claimant_agent_build_failures_total") == 0
        assert _value(text, "claimant_agent_instances") == 1
        assert _value(text, "claimant_agent_heartbeat_age_seconds") >= 0
