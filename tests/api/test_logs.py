"""Issue 11: log lines carry a timestamp, the level and the request id
(``X-OpenStack-Request-Id`` accepted in and returned out), and a failure
says why; ``claimant serve --log-format json`` writes one JSON object a line,
uvicorn's access lines included."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from claimant.logs import JsonFormatter, RequestIdFilter, TextFormatter

from .serve_support import serve


@pytest.fixture
def api_log() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("claimant.api")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield out
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_openstack_request_id_in_and_out_and_in_the_log(
    client: TestClient, make_provider: Callable[..., dict[str, Any]], api_log: io.StringIO
) -> None:
    make_provider("cn1", vcpu=1)
    r = client.post(
        "/v1/requests",
        json={"groups": [{"resources": {"VCPU": 4}}]},
        headers={"X-OpenStack-Request-Id": "req-from-nova-1"},
    )
    assert r.status_code == 409
    assert r.headers["x-openstack-request-id"] == "req-from-nova-1"
    assert r.headers["x-request-id"] == "req-from-nova-1"
    lines = [json.loads(line) for line in api_log.getvalue().splitlines()]
    [failed] = [x for x in lines if "no_valid_host" in x["message"]]
    assert failed["level"] == "WARNING"
    assert failed["request_id"] == "req-from-nova-1"
    assert failed["ts"].endswith("Z") and "T" in failed["ts"]
    assert "POST /v1/requests -> 409 no_valid_host: no valid host" in failed["message"]
    # Without an id of its own, the caller gets a generated one, in both headers.
    r = client.get("/v1/providers")
    assert r.headers["x-openstack-request-id"] == r.headers["x-request-id"]


def test_formatters() -> None:
    record = logging.LogRecord("claimant.x", logging.ERROR, "f", 1, "boom %s", ("a",), None)
    record.request_id = "r1"
    record.reason = "because"
    doc = json.loads(JsonFormatter().format(record))
    assert doc["message"] == "boom a" and doc["request_id"] == "r1" and doc["reason"] == "because"
    text = TextFormatter().format(record)
    assert " ERROR claimant.x [r1] boom a reason=because" in text


def test_serve_json_logs_with_access_lines(tmp_path: Path) -> None:
    with serve(tmp_path, "--log-format", "json", "--access-log") as s:
        admin = {"x-auth-token": "admin"}
        r = httpx.get(
            s.url + "/v1/providers", headers={**admin, "X-OpenStack-Request-Id": "abc-123"}
        )
        assert r.status_code == 200
        body = {"groups": [{"resources": {"VCPU": 1}}]}
        r = httpx.post(s.url + "/v1/requests", json=body, headers=admin)
        assert r.status_code == 409
    lines = [json.loads(x) for x in s.log.read_text().splitlines() if x.startswith("{")]
    access = [x for x in lines if x["logger"] == "uvicorn.access"]
    [mine] = [x for x in access if "/v1/providers" in x["message"]]
    assert mine["request_id"] == "abc-123" and mine["ts"]
    assert any(
        x["level"] == "WARNING" and "no_valid_host" in x["message"] and x["request_id"] != "-"
        for x in lines
    )
