"""The harness's parts on their own: the reply proxy (a reply is lost only
after the upstream did the work), the history, the nemesis list, the
Jepsen rule for which writes may be last."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from claimant.torture.history import History, Outcome
from claimant.torture.nemesis import ALL, parse
from claimant.torture.processes import free_port
from claimant.torture.proxy import DELAY, DROP, PASS, ProxyThread, ReplyProxy


class _Agent(BaseHTTPRequestHandler):
    """Stands in for an agent: counts the builds it did, answers JSON."""

    done: list[bytes] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.done.append(body)
        out = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[ReplyProxy]:
    _Agent.done = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Agent)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    thread = ProxyThread()
    p = thread.add(ReplyProxy(free_port(), server.server_address[1]))
    try:
        yield p
    finally:
        thread.close()
        server.shutdown()
        server.server_close()


def _build(p: ReplyProxy, n: int) -> httpx.Response:
    return httpx.post(f"http://127.0.0.1:{p.port}/build", json={"n": n}, timeout=10)


def test_pass_forwards_the_reply(proxy: ReplyProxy) -> None:
    r = _build(proxy, 1)
    assert r.status_code == 200 and r.json() == {"ok": True}
    assert _Agent.done == [b'{"n":1}']


def test_drop_loses_the_reply_after_the_work_was_done(proxy: ReplyProxy) -> None:
    proxy.set_mode(DROP)
    with pytest.raises(httpx.RemoteProtocolError):
        _build(proxy, 2)
    assert _Agent.done == [b'{"n":2}']  # the agent did build
    assert proxy.dropped == 1
    proxy.set_mode(PASS)
    assert _build(proxy, 3).status_code == 200


def test_delay_still_delivers(proxy: ReplyProxy) -> None:
    proxy.set_mode(DELAY, 0.2)
    r = _build(proxy, 4)
    assert r.status_code == 200 and r.json() == {"ok": True}
    assert proxy.delayed == 1


def test_history_outcomes() -> None:
    h = History()
    a = h.invoke("c0", "alloc-put", {"consumer": "x"})
    b = h.invoke("c1", "alloc-put", {"consumer": "y"})
    h.ok(a, status=204)
    with pytest.raises(ValueError, match="already completed"):
        h.fail(a)
    assert b.pending
    assert h.close_pending() == 1
    assert b.outcome == Outcome.INFO
    assert [o.to_dict()["type"] for o in h.ops()] == ["ok", "info"]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param("kill-service", ["kill-service"], id="one"),
        pytest.param(" kill-agent, lost-replies ,", ["kill-agent", "lost-replies"], id="spaces"),
        pytest.param("none", [], id="none"),
        pytest.param(",".join(ALL), list(ALL), id="all"),
    ],
)
def test_parse_nemesis(spec: str, expected: list[str]) -> None:
    assert parse(spec) == expected


def test_parse_refuses_unknown_faults() -> None:
    with pytest.raises(ValueError, match="unknown nemesis kill-everything"):
        parse("kill-service,kill-everything")
