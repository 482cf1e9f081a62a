"""A TCP proxy on 127.0.0.1 that loses replies: it forwards each request to
the upstream server, and for the first ``drops`` requests whose request line
starts with ``prefix`` it reads the reply and closes the client's connection
instead of passing it on. The upstream really did the work; only the answer
is lost, as with a network fault or a client timeout."""

from __future__ import annotations

import contextlib
import socket
import threading


class DroppingProxy:
    def __init__(self, upstream: str, *, prefix: bytes = b"POST /build ", drops: int = 1) -> None:
        host, _, port = upstream.removeprefix("http://").partition(":")
        self.upstream = (host, int(port))
        self.prefix = prefix
        self.drops = drops
        self.dropped = 0
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self._stop = False

    def __enter__(self) -> str:
        threading.Thread(target=self._accept, daemon=True).start()
        return f"http://127.0.0.1:{self._server.getsockname()[1]}"

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        with contextlib.suppress(OSError):
            self._server.close()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self.upstream)
        drop = threading.Event()

        def forward_requests() -> None:
            # Decide per request: a kept-alive connection carries several.
            try:
                while data := client.recv(65536):
                    if data.startswith(self.prefix):
                        with self._lock:
                            if self.dropped < self.drops:
                                self.dropped += 1
                                drop.set()
                    upstream.sendall(data)
            except OSError:
                pass
            with contextlib.suppress(OSError):
                upstream.shutdown(socket.SHUT_WR)

        threading.Thread(target=forward_requests, daemon=True).start()
        try:
            while data := upstream.recv(65536):
                if drop.is_set():
                    break  # the reply is read (the work is done) and thrown away
                client.sendall(data)
        except OSError:
            pass
        finally:
            for s in (client, upstream):
                # shutdown first: close() alone does not wake the forwarding
                # thread's recv, and the client would see no FIN.
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()
