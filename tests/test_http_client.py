"""claimant.http_client against a real HTTP server on loopback: what a failed
call means (delivered or not), and the one error format read back."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from claimant.http_client import TOKEN_HEADER, JsonClient, Unreachable


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/ok":
            self._send(200, b'{"token": "%s"}' % (self.headers.get(TOKEN_HEADER) or "").encode())
        elif self.path == "/empty":
            self._send(204, b"")
        elif self.path == "/error":
            body = b'{"error": {"code": "in_use", "message": "busy", "details": {"n": 1}}}'
            self._send(409, body)
        elif self.path == "/odd-details":
            self._send(400, b'{"error": {"code": "bad", "message": "m", "details": [1]}}')
        elif self.path == "/html":
            self._send(502, b"<html>bad gateway</html>" + b"x" * 1000, "text/html")
        elif self.path == "/slow":
            time.sleep(2)
            # The client gave up long ago: its socket is gone.
            with contextlib.suppress(OSError):
                self._send(200, b"{}")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def test_a_json_answer_and_the_token(server: str) -> None:
    with JsonClient(server, token="s3cret") as http:
        reply = http.request("GET", "/ok")
    assert reply.ok and reply.status == 200
    assert reply.data == {"token": "s3cret"}


def test_no_token_sends_no_header(server: str) -> None:
    with JsonClient(server) as http:
        assert http.request("GET", "/ok").data == {"token": ""}


def test_an_empty_body_is_none(server: str) -> None:
    with JsonClient(server) as http:
        reply = http.request("GET", "/empty")
    assert reply.ok and reply.data is None


def test_the_error_format_is_read(server: str) -> None:
    with JsonClient(server) as http:
        reply = http.request("GET", "/error")
    assert not reply.ok
    err = reply.error
    assert (err.code, err.message, err.details) == ("in_use", "busy", {"n": 1})


def test_details_that_are_not_an_object_are_wrapped(server: str) -> None:
    with JsonClient(server) as http:
        assert http.request("GET", "/odd-details").error.details == {"details": [1]}


def test_a_body_in_another_format_is_quoted_short(server: str) -> None:
    with JsonClient(server) as http:
        reply = http.request("GET", "/html")
    assert reply.data is None
    err = reply.error
    assert err.code == "error"
    assert err.message.startswith("HTTP 502: <html>bad gateway</html>")
    assert len(err.message) < 400


def test_refused_connection_was_not_delivered() -> None:
    with socket.socket() as s:  # a port nobody listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with JsonClient(f"http://127.0.0.1:{port}") as http, pytest.raises(Unreachable) as exc:
        http.request("GET", "/ok")
    assert exc.value.delivered is False
    assert exc.value.url == f"http://127.0.0.1:{port}"


def test_a_read_timeout_may_have_been_delivered(server: str) -> None:
    with JsonClient(server, timeout=0.3) as http, pytest.raises(Unreachable) as exc:
        http.request("GET", "/slow")
    assert exc.value.delivered is True
