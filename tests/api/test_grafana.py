"""deploy/grafana/claimant.json queries only metrics claimant exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastapi.testclient import TestClient

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "claimant.json"
# The conductor's and the agents' (tests/e2e/test_observe.py scrapes them).
LOOP_METRICS = {
    "claimant_conductor_builds_total",
    "claimant_conductor_reschedules_total",
    "claimant_agent_heartbeat_age_seconds",
    "claimant_agent_build_failures_total",
}


def test_dashboard_uses_exported_metrics(client: TestClient) -> None:
    text = client.get("/metrics").text
    exported = set(re.findall(r"^# TYPE (\w+) \w+", text, re.M))
    names = set(LOOP_METRICS)
    for name in exported:
        names |= {name, f"{name}_total", f"{name}_bucket", f"{name}_count", f"{name}_sum"}
    dash = json.loads(DASHBOARD.read_text())
    used = {
        m
        for panel in dash["panels"]
        for t in panel["targets"]
        for m in re.findall(r"claimant_\w+", t["expr"])
    }
    assert used and used <= names, sorted(used - names)
