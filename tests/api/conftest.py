"""Fixtures of the API tests: a real SQLite file, the app, clients per role."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from claimant.api import AuthConfig, create_app
from claimant.store import Store

ADMIN = {"x-auth-token": "admin"}


@pytest.fixture
def store(sqlite_store: Store) -> Store:
    return sqlite_store


@pytest.fixture
def app(store: Store) -> FastAPI:
    return create_app(store, auth=AuthConfig.noauth2())


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, headers=ADMIN) as c:
        yield c


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.json"
    path.write_text(
        json.dumps(
            {
                "tokens": {
                    "admin-secret": {"role": "admin"},
                    "service-secret": {"role": "service", "project_id": "p1", "user_id": "u1"},
                    "reader-secret": {"role": "reader"},
                }
            }
        )
    )
    path.chmod(0o600)
    return path


@pytest.fixture
def tokens_app(store: Store, token_file: Path) -> FastAPI:
    return create_app(store, auth=AuthConfig.from_token_file(token_file))


@pytest.fixture
def make_provider(client: TestClient) -> Callable[..., dict[str, Any]]:
    counter = iter(range(1, 10**6))

    def make(
        name: str | None = None,
        *,
        vcpu: int = 8,
        memory_mb: int = 8192,
        disk_gb: int | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        inventories: dict[str, Any] = {"VCPU": {"total": vcpu}, "MEMORY_MB": {"total": memory_mb}}
        if disk_gb:
            inventories["DISK_GB"] = {"total": disk_gb}
        body = {"name": name or f"cn{next(counter)}", "inventories": inventories, **fields}
        r = client.post("/v1/providers", json=body)
        assert r.status_code == 201, r.text
        out: dict[str, Any] = r.json()
        return out

    return make
