"""Issue 9 against the real ``claimant serve`` process: big bodies don't grow
its memory, idle connections are closed, noauth2 answers loopback names only."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import httpx

from tests.api.serve_support import serve

MIB = 1024 * 1024
BODY = 50 * MIB


def _send_big(port: int, path: str, token: str | None, chunked: bool, out: list[str]) -> None:
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    if token:
        head.append(f"x-auth-token: {token}")
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {BODY}")
    piece = b"[" * MIB
    frame = b"%x\r\n" % len(piece) + piece + b"\r\n" if chunked else piece
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        try:
            s.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
            for _ in range(BODY // MIB):
                s.sendall(frame)
            if chunked:
                s.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed before the body was sent
        try:
            out.append(s.recv(200).decode("latin-1").split("\r\n")[0])
        except OSError as exc:
            out.append(f"closed: {exc}")


def test_fifty_mib_bodies_do_not_grow_memory(tmp_path: Path) -> None:
    with serve(tmp_path) as srv:
        # Warm both APIs up, so their code is loaded before the idle figure.
        h = {"x-auth-token": "admin"}
        assert httpx.post(srv.url + "/v1/providers", json={"name": "a"}, headers=h).status_code
        assert httpx.post(
            srv.url + "/resource_providers", json={"name": "b"}, headers=h
        ).status_code
        srv.reset_peak()
        idle = srv.status("VmRSS")
        clients = [
            ("/v1/providers", None, False),
            ("/v1/providers", "admin", True),
            ("/resource_providers", None, True),
            ("/resource_providers", "admin", False),
        ]
        answers: list[str] = []
        threads = [
            threading.Thread(target=_send_big, args=(srv.port, p, t, c, answers))
            for p, t, c in clients
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        peak = srv.status("VmHWM")
        assert httpx.get(srv.url + "/healthz").status_code == 200
    growth = peak - idle
    print(f"idle RSS {idle / MIB:.0f} MiB, peak {peak / MIB:.0f} MiB, answers {answers}")
    assert growth < 50 * MIB, f"peak RSS grew {growth / MIB:.0f} MiB over idle; {answers}"
    assert all(" 413 " in a or " 401 " in a or a.startswith("closed") for a in answers), answers


def test_idle_connection_is_closed_after_the_header_timeout(tmp_path: Path) -> None:
    with (
        serve(tmp_path, "--header-timeout", "0.5") as srv,
        socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s,
    ):
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
        # recv returns b"" once the server closes; before the fix it blocked
        # until this socket's own 30 s timeout.
        assert s.recv(100) == b""


def test_noauth2_answers_loopback_host_names_only(tmp_path: Path) -> None:
    cases = [
        ("127.0.0.1", 200),
        ("localhost", 200),
        ("localhost:8778", 200),
        ("evil.example", 400),
        ("127.0.0.1.nip.io", 400),
    ]
    with serve(tmp_path) as srv:
        got = [
            (host, httpx.get(srv.url + "/healthz", headers={"host": host}).status_code)
            for host, _ in cases
        ]
    assert got == cases
