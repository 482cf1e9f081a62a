"""The nemesis: faults injected from outside the product, on a seeded schedule.

| name | what it does |
| --- | --- |
| ``kill-service`` | SIGKILL one ``claimant serve`` process, restart it |
| ``kill-agent`` | SIGKILL one agent, restart it |
| ``kill-conductor`` | SIGKILL the conductor, restart it |
| ``lost-replies`` | one build agent's proxy drops replies after the agent did the work |
| ``delayed-replies`` | one build agent's proxy holds replies for a few seconds |
| ``store-errors`` | SQLite: a process holds the write lock past the busy timeout; |
|  | Cassandra: SIGSTOP/SIGCONT of a node (needs ``--cluster-dir``) |
| ``pause-node`` | SIGSTOP a Cassandra node, SIGCONT it later |
| ``kill-node`` | SIGKILL a Cassandra node, start it again through the launcher |
| ``stop-dc`` | stop every node of one data centre through the launcher, start them later |
| ``pause-dc`` | SIGSTOP every node of one data centre, SIGCONT them later |

Every fault is one ``nemesis`` operation in the history: invoked when it is
injected, ``ok`` when it is healed.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from claimant.torture.checker import NEMESIS
from claimant.torture.history import History
from claimant.torture.processes import Proc
from claimant.torture.proxy import DELAY, DROP, PASS, ReplyProxy

KILL_SERVICE = "kill-service"
KILL_AGENT = "kill-agent"
KILL_CONDUCTOR = "kill-conductor"
LOST_REPLIES = "lost-replies"
DELAYED_REPLIES = "delayed-replies"
STORE_ERRORS = "store-errors"
PAUSE_NODE = "pause-node"
KILL_NODE = "kill-node"
STOP_DC = "stop-dc"
PAUSE_DC = "pause-dc"

ALL = (
    KILL_SERVICE,
    KILL_AGENT,
    KILL_CONDUCTOR,
    LOST_REPLIES,
    DELAYED_REPLIES,
    STORE_ERRORS,
    PAUSE_NODE,
    KILL_NODE,
    STOP_DC,
    PAUSE_DC,
)
NEEDS_CLUSTER = frozenset({PAUSE_NODE, KILL_NODE, STOP_DC, PAUSE_DC})
# Faults of a whole data centre: the cluster must have two or more.
NEEDS_DCS = frozenset({STOP_DC, PAUSE_DC})

# A Python child that takes SQLite's write lock and sits on it.
_HOLD_LOCK = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)
db.execute("BEGIN IMMEDIATE")
time.sleep(float(sys.argv[2]))
db.execute("ROLLBACK")
"""


def parse(spec: str) -> list[str]:
    kinds = [k.strip() for k in spec.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in ALL and k != "none"]
    if unknown:
        raise ValueError(f"unknown nemesis {', '.join(unknown)}; choose from {', '.join(ALL)}")
    return [k for k in kinds if k != "none"]


@dataclass
class Targets:
    services: list[Proc]
    agents: list[Proc]
    conductor: Proc | None
    proxies: list[ReplyProxy]
    sqlite_path: str | None = None
    busy_timeout: float = 0.0
    cluster: Any = None  # claimant.cluster.launcher.Cluster, for node faults


class Nemesis:
    def __init__(
        self,
        kinds: list[str],
        targets: Targets,
        history: History,
        rng: random.Random,
        *,
        interval: tuple[float, float] = (2.0, 6.0),
        echo: Callable[[str], None] = lambda _: None,
        ready_timeout: float = 90.0,
        node_start_timeout: float = 300.0,
    ) -> None:
        self.kinds = kinds
        self.t = targets
        self.history = history
        self.rng = rng
        self.interval = interval
        self.echo = echo
        self.ready_timeout = ready_timeout
        self.node_start_timeout = node_start_timeout
        self.faults = 0
        self.errors: list[str] = []
        self._paused: set[int] = set()

    # ---- the schedule -----------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        while self.kinds and not stop.wait(self.rng.uniform(*self.interval)):
            kind = self.rng.choice(self.kinds)
            try:
                self.inject(kind, stop)
            except Exception as exc:  # a fault that could not be healed is reported, not fatal
                self.errors.append(f"{kind}: {type(exc).__name__}: {exc}")
                self.echo(f"nemesis {kind} failed: {exc}")

    def _hold(self, stop: threading.Event, low: float, high: float) -> None:
        stop.wait(self.rng.uniform(low, high))

    def inject(self, kind: str, stop: threading.Event) -> None:
        conductors = [self.t.conductor] if self.t.conductor else []
        handler: Callable[[], None] = {
            KILL_SERVICE: lambda: self._kill(self.t.services, kind, stop),
            KILL_AGENT: lambda: self._kill(self.t.agents, kind, stop),
            KILL_CONDUCTOR: lambda: self._kill(conductors, kind, stop),
            LOST_REPLIES: lambda: self._proxy(kind, DROP, stop),
            DELAYED_REPLIES: lambda: self._proxy(kind, DELAY, stop),
            STORE_ERRORS: lambda: self._store_errors(stop),
            PAUSE_NODE: lambda: self._pause_node(kind, stop),
            KILL_NODE: lambda: self._kill_node(stop),
            STOP_DC: lambda: self._stop_dc(stop),
            PAUSE_DC: lambda: self._pause_dc(stop),
        }[kind]
        handler()

    def _record(self, kind: str, target: str, **more: Any) -> Any:
        self.faults += 1
        self.echo(f"nemesis: {kind} {target}")
        return self.history.invoke(NEMESIS, NEMESIS, {"fault": kind, "target": target, **more})

    # ---- faults -----------------------------------------------------------------
    def _kill(self, procs: list[Proc], kind: str, stop: threading.Event) -> None:
        if not procs:
            return
        p = self.rng.choice(procs)
        op = self._record(kind, p.name, pid=p.pid)
        p.kill()
        self._hold(stop, 0.5, 2.0)
        p.start()
        p.wait_ready(self.ready_timeout)
        self.history.ok(op, restarted_pid=p.pid)

    def _proxy(self, kind: str, mode: str, stop: threading.Event) -> None:
        if not self.t.proxies:
            return
        proxy = self.rng.choice(self.t.proxies)
        delay = self.rng.uniform(1.0, 4.0) if mode == DELAY else 0.0
        op = self._record(kind, f"proxy:{proxy.port}", delay=round(delay, 2))
        before = (proxy.dropped, proxy.delayed)
        proxy.set_mode(mode, delay)
        try:
            self._hold(stop, 3.0, 8.0)
        finally:
            proxy.set_mode(PASS)
        self.history.ok(op, dropped=proxy.dropped - before[0], delayed=proxy.delayed - before[1])

    def _store_errors(self, stop: threading.Event) -> None:
        if self.t.sqlite_path is not None:
            hold = self.t.busy_timeout + 1.0
            op = self._record(STORE_ERRORS, "sqlite write lock", seconds=hold)
            child = subprocess.Popen(
                [sys.executable, "-c", _HOLD_LOCK, self.t.sqlite_path, str(hold)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                child.wait(timeout=hold + 30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            self.history.ok(op, rc=child.returncode)
        elif self.t.cluster is not None:
            self._pause_node(STORE_ERRORS, stop)

    def _node(self) -> Any:
        up = [n for n in self.t.cluster.status() if n.pid]
        return self.rng.choice(up) if up else None

    def _pause_node(self, kind: str, stop: threading.Event) -> None:
        node = self._node()
        if node is None:
            return
        op = self._record(kind, f"node{node.index} ({node.address})", pid=node.pid)
        os.kill(node.pid, signal.SIGSTOP)
        self._paused.add(node.pid)
        try:
            self._hold(stop, 3.0, 8.0)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(node.pid, signal.SIGCONT)
            self._paused.discard(node.pid)
        self.history.ok(op)

    def _kill_node(self, stop: threading.Event) -> None:
        node = self._node()
        if node is None:
            return
        op = self._record(KILL_NODE, f"node{node.index} ({node.address})", pid=node.pid)
        os.kill(node.pid, signal.SIGKILL)
        self._hold(stop, 2.0, 5.0)
        self.t.cluster.start(node.index, timeout=self.node_start_timeout)
        self.history.ok(op)

    def _dc(self) -> tuple[str, list[Any]] | None:
        """A data centre chosen at random, and its nodes (``NodeStatus``)."""
        nodes = self.t.cluster.status()
        dcs = sorted({n.dc for n in nodes})
        if len(dcs) < 2:
            return None
        dc = self.rng.choice(dcs)
        return dc, [n for n in nodes if n.dc == dc]

    @staticmethod
    def _describe(dc: str, nodes: list[Any]) -> str:
        return f"{dc} ({', '.join(n.address for n in nodes)})"

    def _stop_dc(self, stop: threading.Event) -> None:
        chosen = self._dc()
        if chosen is None:
            return
        dc, nodes = chosen
        op = self._record(STOP_DC, self._describe(dc, nodes), dc=dc, nodes=[n.index for n in nodes])
        # SIGTERM (the launcher's stop): the nodes announce their shutdown, so
        # the other DC marks them down at once instead of after gossip's timeout.
        outcome = self.t.cluster.stop(dc=dc, timeout=60)
        self._hold(stop, 5.0, 15.0)
        began = time.monotonic()
        self.t.cluster.start(dc=dc, timeout=self.node_start_timeout)
        self.history.ok(op, stopped=outcome, restart_seconds=round(time.monotonic() - began, 1))

    def _pause_dc(self, stop: threading.Event) -> None:
        chosen = self._dc()
        if chosen is None:
            return
        dc, nodes = chosen
        live = [n for n in nodes if n.pid]
        if not live:
            return
        op = self._record(PAUSE_DC, self._describe(dc, live), dc=dc, pids=[n.pid for n in live])
        try:
            for n in live:
                os.kill(n.pid, signal.SIGSTOP)
                self._paused.add(n.pid)
            self._hold(stop, 3.0, 10.0)
        finally:
            for n in live:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(n.pid, signal.SIGCONT)
                self._paused.discard(n.pid)
        self.history.ok(op)

    def heal(self) -> None:
        """Undo whatever is still injected (called when the run ends; idempotent)."""
        for proxy in self.t.proxies:
            proxy.set_mode(PASS)
        for pid in list(self._paused):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self._paused.clear()
