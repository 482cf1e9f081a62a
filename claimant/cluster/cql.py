"""A minimal CQL native-protocol (v4) client, stdlib only.

Enough to prove a node really serves CQL (OPTIONS, STARTUP, then a QUERY
whose rows are decoded) without making this layer depend on a driver.
"""

from __future__ import annotations

import socket
import ssl
import struct
import uuid
from dataclasses import dataclass, field
from typing import Any

VERSION = 0x04
OP_ERROR, OP_STARTUP, OP_READY, OP_AUTHENTICATE = 0x00, 0x01, 0x02, 0x03
OP_OPTIONS, OP_SUPPORTED, OP_QUERY, OP_RESULT = 0x05, 0x06, 0x07, 0x08
OP_AUTH_CHALLENGE, OP_AUTH_RESPONSE, OP_AUTH_SUCCESS = 0x0E, 0x0F, 0x10
ERR_BAD_CREDENTIALS = 0x0100
RESULT_ROWS = 0x0002
CONSISTENCY_ONE = 0x0001

# Column type ids decoded to Python values; others come back as bytes.
_T_VARCHAR, _T_ASCII, _T_INT, _T_BIGINT, _T_UUID, _T_INET, _T_BOOL = (
    0x000D,
    0x0001,
    0x0009,
    0x0002,
    0x000C,
    0x0010,
    0x0004,
)


class CQLError(Exception):
    pass


class AuthError(CQLError):
    """The node asks for a login and ours is missing or refused: it does
    serve CQL, though."""


@dataclass(frozen=True)
class Access:
    """How to reach a node whose cluster runs PasswordAuthenticator and/or
    client TLS; the default is neither."""

    user: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: ssl.SSLContext | None = None

    def login(self, user: str, password: str) -> Access:
        return Access(user, password, self.tls)


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">H", len(raw)) + raw


def _long_string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">i", len(raw)) + raw


def _string_map(values: dict[str, str]) -> bytes:
    out = struct.pack(">H", len(values))
    for key, value in values.items():
        out += _string(key) + _string(value)
    return out


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise CQLError("truncated frame")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def short(self) -> int:
        return int(struct.unpack(">H", self.take(2))[0])

    def int32(self) -> int:
        return int(struct.unpack(">i", self.take(4))[0])

    def string(self) -> str:
        return self.take(self.short()).decode()

    def bytes(self) -> bytes | None:
        n = self.int32()
        return None if n < 0 else self.take(n)

    def option(self) -> int:
        type_id = self.short()
        if type_id == 0x0000:  # custom: class name
            self.string()
        elif type_id in (0x0020, 0x0022):  # list, set
            self.option()
        elif type_id == 0x0021:  # map
            self.option()
            self.option()
        elif type_id == 0x0030:  # udt
            self.string()
            self.string()
            for _ in range(self.short()):
                self.string()
                self.option()
        elif type_id == 0x0031:  # tuple
            for _ in range(self.short()):
                self.option()
        return type_id


def _decode(type_id: int, raw: bytes | None) -> Any:
    if raw is None:
        return None
    if type_id in (_T_VARCHAR, _T_ASCII):
        return raw.decode()
    if type_id in (_T_INT, _T_BIGINT):
        return int.from_bytes(raw, "big", signed=True)
    if type_id == _T_UUID:
        return uuid.UUID(bytes=raw)
    if type_id == _T_INET:
        return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)
    if type_id == _T_BOOL:
        return raw != b"\x00"
    return raw


class Connection:
    def __init__(
        self, host: str, port: int = 9042, timeout: float = 5.0, tls: ssl.SSLContext | None = None
    ) -> None:
        sock = socket.create_connection((host, port), timeout=timeout)
        if tls is not None:
            try:
                sock = tls.wrap_socket(sock, server_hostname=host)
            except BaseException:
                sock.close()
                raise
        self.sock = sock
        self.sock.settimeout(timeout)
        self.stream = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _recv_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise CQLError("connection closed by server")
            buf += chunk
        return buf

    def request(self, opcode: int, body: bytes) -> tuple[int, _Reader]:
        self.stream = (self.stream + 1) % 32768
        header = struct.pack(">BBhBi", VERSION, 0, self.stream, opcode, len(body))
        self.sock.sendall(header + body)
        version, _flags, _stream, op, length = struct.unpack(">BBhBi", self._recv_exact(9))
        reader = _Reader(self._recv_exact(length))
        if op == OP_ERROR:
            code = reader.int32()
            error = AuthError if code == ERR_BAD_CREDENTIALS else CQLError
            raise error(f"server error 0x{code:04x}: {reader.string()}")
        if version & 0x7F != VERSION:
            raise CQLError(f"unexpected protocol version {version & 0x7F}")
        return op, reader

    def handshake(self, user: str | None = None, password: str | None = None) -> None:
        op, _ = self.request(OP_OPTIONS, b"")
        if op != OP_SUPPORTED:
            raise CQLError(f"OPTIONS answered with opcode {op}")
        op, _ = self.request(OP_STARTUP, _string_map({"CQL_VERSION": "3.0.0"}))
        if op == OP_READY:
            return
        if op != OP_AUTHENTICATE:
            raise CQLError(f"STARTUP answered with opcode {op}")
        if user is None or password is None:
            raise AuthError("the node requires a login")
        # SASL PLAIN, what PasswordAuthenticator speaks: \0user\0password.
        token = b"\0" + user.encode() + b"\0" + password.encode()
        op, _ = self.request(OP_AUTH_RESPONSE, struct.pack(">i", len(token)) + token)
        if op != OP_AUTH_SUCCESS:
            raise AuthError(f"AUTH_RESPONSE answered with opcode {op}")

    def query(self, cql: str) -> list[dict[str, Any]]:
        body = _long_string(cql) + struct.pack(">HB", CONSISTENCY_ONE, 0)
        op, reader = self.request(OP_QUERY, body)
        if op != OP_RESULT:
            raise CQLError(f"QUERY answered with opcode {op}")
        if reader.int32() != RESULT_ROWS:
            return []
        flags, column_count = reader.int32(), reader.int32()
        if flags & 0x0002:  # has_more_pages
            reader.bytes()
        columns: list[tuple[str, int]] = []
        if not flags & 0x0004:  # metadata present
            global_spec = bool(flags & 0x0001)
            if global_spec:
                reader.string()
                reader.string()
            for _ in range(column_count):
                if not global_spec:
                    reader.string()
                    reader.string()
                name = reader.string()
                columns.append((name, reader.option()))
        rows = []
        for _ in range(reader.int32()):
            rows.append({name: _decode(t, reader.bytes()) for name, t in columns})
        return rows


def query(
    host: str,
    cql: str,
    *,
    port: int = 9042,
    timeout: float = 5.0,
    access: Access | None = None,
) -> list[dict[str, Any]]:
    """Connect, handshake (log in if ``access`` says how), run one query at
    consistency ONE, return its rows."""
    access = access or Access()
    with Connection(host, port, timeout, access.tls) as conn:
        conn.handshake(access.user, access.password)
        return conn.query(cql)
