"""The stdlib CQL client against a scripted fake server."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from claimant.cluster import cql


def _frame(opcode: int, stream: int, body: bytes) -> bytes:
    return struct.pack(">BBhBi", 0x84, 0, stream, opcode, len(body)) + body


def _string(s: str) -> bytes:
    return struct.pack(">H", len(s)) + s.encode()


def _rows_body() -> bytes:
    body = struct.pack(">i", cql.RESULT_ROWS)
    body += struct.pack(">ii", 0x0001, 2)  # global table spec, 2 columns
    body += _string("system") + _string("peers")
    body += _string("peer") + struct.pack(">H", 0x0010)  # inet
    body += _string("release_version") + struct.pack(">H", 0x000D)  # varchar
    body += struct.pack(">i", 2)
    for ip, version in [("127.0.0.2", "5.0.8"), ("127.0.0.3", None)]:
        raw = socket.inet_aton(ip)
        body += struct.pack(">i", len(raw)) + raw
        if version is None:
            body += struct.pack(">i", -1)
        else:
            body += struct.pack(">i", len(version)) + version.encode()
    return body


@pytest.fixture
def server() -> Iterator[tuple[str, int, list[int]]]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    seen: list[int] = []

    def serve() -> None:
        conn, _ = sock.accept()
        with conn:
            while True:
                header = conn.recv(9)
                if len(header) < 9:
                    return
                _v, _f, stream, op, length = struct.unpack(">BBhBi", header)
                body = b""
                while len(body) < length:
                    body += conn.recv(length - len(body))
                seen.append(op)
                if op == cql.OP_OPTIONS:
                    conn.sendall(_frame(cql.OP_SUPPORTED, stream, struct.pack(">H", 0)))
                elif op == cql.OP_STARTUP:
                    conn.sendall(_frame(cql.OP_READY, stream, b""))
                elif op == cql.OP_QUERY and b"boom" in body:
                    err = struct.pack(">i", 0x2200) + _string("line 1: syntax error")
                    conn.sendall(_frame(cql.OP_ERROR, stream, err))
                elif op == cql.OP_QUERY:
                    conn.sendall(_frame(cql.OP_RESULT, stream, _rows_body()))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    host, port = sock.getsockname()
    yield host, port, seen
    sock.close()


def test_query_decodes_rows(server: tuple[str, int, list[int]]) -> None:
    host, port, seen = server
    rows = cql.query(host, "SELECT peer, release_version FROM system.peers", port=port)
    assert rows == [
        {"peer": "127.0.0.2", "release_version": "5.0.8"},
        {"peer": "127.0.0.3", "release_version": None},
    ]
    assert seen == [cql.OP_OPTIONS, cql.OP_STARTUP, cql.OP_QUERY]


def test_server_error_is_raised(server: tuple[str, int, list[int]]) -> None:
    host, port, _ = server
    with pytest.raises(cql.CQLError, match="syntax error"):
        cql.query(host, "boom", port=port)


def test_nothing_listening() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(OSError):
        cql.query("127.0.0.1", "SELECT 1", port=port, timeout=1)


@pytest.fixture
def auth_server() -> Iterator[tuple[str, int, list[bytes]]]:
    """Answers STARTUP with AUTHENTICATE and accepts only claimant/pw."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    tokens: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            with conn:
                while True:
                    header = conn.recv(9)
                    if len(header) < 9:
                        break
                    _v, _f, stream, op, length = struct.unpack(">BBhBi", header)
                    body = b""
                    while len(body) < length:
                        body += conn.recv(length - len(body))
                    if op == cql.OP_OPTIONS:
                        conn.sendall(_frame(cql.OP_SUPPORTED, stream, struct.pack(">H", 0)))
                    elif op == cql.OP_STARTUP:
                        authenticator = _string("org.apache.cassandra.auth.PasswordAuthenticator")
                        conn.sendall(_frame(cql.OP_AUTHENTICATE, stream, authenticator))
                    elif op == cql.OP_AUTH_RESPONSE:
                        tokens.append(body[4:])
                        if body[4:] == b"\0claimant\0pw":
                            conn.sendall(_frame(cql.OP_AUTH_SUCCESS, stream, struct.pack(">i", -1)))
                        else:
                            err = struct.pack(">i", 0x0100) + _string("Provided username ...")
                            conn.sendall(_frame(cql.OP_ERROR, stream, err))
                    elif op == cql.OP_QUERY:
                        conn.sendall(_frame(cql.OP_RESULT, stream, _rows_body()))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    host, port = sock.getsockname()
    yield host, port, tokens
    sock.close()


def test_login_with_sasl_plain(auth_server: tuple[str, int, list[bytes]]) -> None:
    # Issue 9: nodes started with --auth ask for a login; the launcher's own
    # client must give one (it gave up with "authentication required?").
    host, port, tokens = auth_server
    access = cql.Access("claimant", "pw")
    assert len(cql.query(host, "SELECT peer FROM system.peers", port=port, access=access)) == 2
    assert tokens == [b"\0claimant\0pw"]
    with pytest.raises(cql.AuthError):
        cql.query(host, "SELECT 1", port=port, access=access.login("cassandra", "cassandra"))
    with pytest.raises(cql.AuthError):
        cql.query(host, "SELECT 1", port=port)
