"""JSON over HTTP for every client of a claimant service: the CLI (the native
API and the conductor), the conductor (its agents) and the agents (their
conductor). One place decides what a failed call means, so the callers only
turn it into their own errors:

- no connection was made (refused, connect timeout): ``Unreachable`` with
  ``delivered=False`` -- the service surely never saw the request;
- anything else that left no answer (a read timeout, a reset, a broken
  reply): ``Unreachable`` with ``delivered=True`` -- it may have acted, and
  only the answer is lost;
- an answer, whatever its status: a ``Reply``; ``Reply.error`` reads the one
  error format every service speaks (``{"error": {"code", "message",
  "details"}}``) and falls back to the status and the start of the body.

It imports nothing of ours, like ``claimant.logs``, so any layer may use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx

TOKEN_HEADER = "X-Auth-Token"

# How much of a body that is not our error format an error message quotes.
_QUOTED = 300


class Unreachable(Exception):
    """No answer from ``url``; ``delivered`` as in the module docstring."""

    def __init__(self, url: str, detail: str, *, delivered: bool) -> None:
        super().__init__(f"{url}: {detail}")
        self.url = url
        self.detail = detail
        self.delivered = delivered


@dataclass(frozen=True)
class ErrorBody:
    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reply:
    status: int
    data: Any  # the parsed JSON body; None when empty or not JSON
    text: str

    @property
    def ok(self) -> bool:
        return self.status < 400

    @property
    def error(self) -> ErrorBody:
        err = self.data.get("error") if isinstance(self.data, dict) else None
        if not isinstance(err, dict) or "code" not in err or "message" not in err:
            return ErrorBody("error", f"HTTP {self.status}: {self.text[:_QUOTED]}")
        details = err.get("details") or {}
        if not isinstance(details, dict):
            details = {"details": details}
        return ErrorBody(str(err["code"]), str(err["message"]), details)


class JsonClient:
    """One connection pool to one service. ``token`` goes in ``X-Auth-Token``
    (None sends no header: an open loopback service)."""

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        headers = {TOKEN_HEADER: token} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Any = None,
    ) -> Reply:
        try:
            r = self._http.request(method, path, json=json, params=params)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise Unreachable(self.url, str(exc) or type(exc).__name__, delivered=False) from exc
        except httpx.HTTPError as exc:
            raise Unreachable(self.url, str(exc) or type(exc).__name__, delivered=True) from exc
        try:
            data = r.json() if r.content else None
        except ValueError:
            data = None
        return Reply(r.status_code, data, r.text)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> JsonClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
