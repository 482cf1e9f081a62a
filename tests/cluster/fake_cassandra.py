"""Stands in for `java ... CassandraDaemon` in tests: serves just enough CQL.

Invoked with the launcher's java arguments. It reads listen_address from the
cassandra.yaml named by -Dcassandra.config, listens on it at port 9042 and
answers OPTIONS, STARTUP and QUERY (system.local: release_version; peers:
every address of $FAKE_CASSANDRA_PEERS but its own). $FAKE_CASSANDRA_MODE:
"die" exits at once, "ignore-term" ignores SIGTERM, "slow" waits 1 s before
listening.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import struct
import sys
import threading
import time


def _string(s: str) -> bytes:
    return struct.pack(">H", len(s)) + s.encode()


def _frame(opcode: int, stream: int, body: bytes) -> bytes:
    return struct.pack(">BBhBi", 0x84, 0, stream, opcode, len(body)) + body


def _rows(name: str, type_id: int, values: list[bytes]) -> bytes:
    body = struct.pack(">iii", 2, 0x0001, 1) + _string("system") + _string("t")
    body += _string(name) + struct.pack(">H", type_id) + struct.pack(">i", len(values))
    for raw in values:
        body += struct.pack(">i", len(raw)) + raw
    return body


def serve_conn(conn: socket.socket, me: str) -> None:
    with conn:
        while True:
            header = b""
            while len(header) < 9:
                chunk = conn.recv(9 - len(header))
                if not chunk:
                    return
                header += chunk
            _v, _f, stream, op, length = struct.unpack(">BBhBi", header)
            body = b""
            while len(body) < length:
                body += conn.recv(length - len(body))
            if op == 0x05:
                conn.sendall(_frame(0x06, stream, struct.pack(">H", 0)))
            elif op == 0x01:
                conn.sendall(_frame(0x02, stream, b""))
            elif op == 0x07 and b"peers" in body:
                peers = [p for p in os.environ.get("FAKE_CASSANDRA_PEERS", "").split(",") if p]
                raw = [socket.inet_aton(p) for p in peers if p != me]
                conn.sendall(_frame(0x08, stream, _rows("peer", 0x0010, raw)))
            elif op == 0x07:
                conn.sendall(_frame(0x08, stream, _rows("release_version", 0x000D, [b"5.0.8"])))


def main(argv: list[str]) -> int:
    if "-version" in argv:
        print('openjdk version "17.0.15" 2025-04-15', file=sys.stderr)
        return 0
    mode = os.environ.get("FAKE_CASSANDRA_MODE", "")
    if mode == "die":
        print("Exception (java.lang.RuntimeException) encountered during startup: fake")
        return 3
    conf = next(a.split("=", 1)[1] for a in argv if a.startswith("-Dcassandra.config="))
    with open(conf.removeprefix("file://")) as f:
        text = f.read()
    me = re.search(r"^listen_address: \"?([0-9.]+)", text, re.M).group(1)  # type: ignore[union-attr]
    if mode == "ignore-term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    if mode == "slow":
        time.sleep(1)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((me, 9042))
    srv.listen(16)
    print(f"fake cassandra listening on {me}:9042", flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve_conn, args=(conn, me), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
