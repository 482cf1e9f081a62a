"""Request records on the SQLite store (insert-if-absent, save, read)."""

from __future__ import annotations

import json
import sqlite3
from contextlib import suppress
from typing import Any

import orjson

from claimant.model import AlreadyExists, NotFound, Request
from claimant.model.codec import request_from_dict, request_to_dict
from claimant.store.sqlite.connection import SQLiteBase


class RequestsMixin(SQLiteBase):
    # -- requests ----------------------------------------------------------
    def create_request(self, request: Request) -> Request:
        saved, row = request_row(request, self.clock())
        self._group(lambda conn: insert_request(conn, saved, row))
        return saved

    def save_request(self, request: Request) -> Request:
        saved, row = request_row(request, self.clock())
        self._group(
            lambda conn: conn.execute(
                "INSERT INTO requests VALUES (?, ?, ?, ?, ?) ON CONFLICT(uuid) DO UPDATE SET"
                " status = excluded.status, body = excluded.body, updated_at = excluded.updated_at",
                row,
            )
        )
        return saved

    def get_request(self, uuid: str) -> Request:
        row = self._one("SELECT body FROM requests WHERE uuid = ?", (uuid,))
        if row is None:
            raise NotFound(f"no request {uuid}", kind="request", uuid=uuid)
        return request_from_dict(orjson.loads(row[0]))

    def list_requests(
        self, *, status: str | None = None, project_id: str | None = None, limit: int = 100
    ) -> list[Request]:
        sql = "SELECT body FROM requests"
        where: list[str] = []
        params: list[Any] = []
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if project_id is not None:
            where.append("json_extract(body, '$.project_id') = ?")
            params.append(project_id)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC LIMIT ?"
        params.append(int(limit))
        return [request_from_dict(orjson.loads(r[0])) for r in self._select(sql, params)]


def request_row(request: Request, now: float) -> tuple[Request, tuple[Any, ...]]:
    saved = request.evolve(created_at=request.created_at or now, updated_at=now)
    row = (
        saved.uuid,
        saved.status.value,
        request_json(saved),
        saved.created_at,
        saved.updated_at,
    )
    return saved, row


def insert_request(conn: sqlite3.Connection, saved: Request, row: tuple[Any, ...]) -> None:
    try:
        conn.execute("INSERT INTO requests VALUES (?, ?, ?, ?, ?)", row)
    except sqlite3.IntegrityError:
        raise AlreadyExists(f"request {saved.uuid} already exists", uuid=saved.uuid) from None


def request_json(request: Request) -> str:
    body = request_to_dict(request)
    # orjson writes a NaN as null and refuses integers beyond 64 bits: an
    # attribute constraint may hold either, so those go through json.
    if not any(g.attributes for g in request.groups):
        with suppress(orjson.JSONEncodeError):
            return orjson.dumps(body).decode()
    return json.dumps(body)
