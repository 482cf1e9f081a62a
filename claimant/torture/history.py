"""The history of a torture run, as Jepsen keeps one.

Every client operation is recorded twice: when it is *invoked* and when it
*completes*, with one of three outcomes:

- ``ok``: the system acknowledged it (a 2xx);
- ``fail``: the system definitely did not do it (a 4xx such as a 409);
- ``info``: the outcome is unknown (a timeout, a lost connection, a 5xx).
  An unknown operation may take effect at any time after its invocation, or
  never; the checker must accept both, and never counts it as a failure.

Faults the nemesis injects are recorded in the same history (process
``nemesis``), so a violation can be shown next to the faults around it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    OK = "ok"
    FAIL = "fail"
    INFO = "info"


@dataclass
class Op:
    """One operation: what a client asked, when, and how it ended.

    ``value`` is what the operation asked for (for an allocation write: the
    consumer -> provider -> class -> amount it sets); ``result`` what came
    back (status code, claim uuids, an error code)."""

    index: int
    process: str
    f: str
    value: dict[str, Any]
    invoked: float
    completed: float | None = None
    outcome: Outcome | None = None
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def pending(self) -> bool:
        return self.outcome is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "process": self.process,
            "f": self.f,
            "value": self.value,
            "invoked": round(self.invoked, 4),
            "completed": None if self.completed is None else round(self.completed, 4),
            "type": self.outcome.value if self.outcome else "invoke",
            "result": self.result,
        }


class History:
    """Thread-safe, append-only. Times are seconds since the run started."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._t0 = clock()
        self._lock = threading.Lock()
        self._ops: list[Op] = []

    def now(self) -> float:
        return float(self._clock() - self._t0)

    def invoke(self, process: str, f: str, value: dict[str, Any]) -> Op:
        with self._lock:
            op = Op(len(self._ops), process, f, value, self.now())
            self._ops.append(op)
            return op

    def complete(self, op: Op, outcome: Outcome, **result: Any) -> Op:
        with self._lock:
            if op.outcome is not None:
                raise ValueError(f"operation {op.index} already completed ({op.outcome})")
            op.completed = self.now()
            op.outcome = outcome
            op.result = result
            return op

    def ok(self, op: Op, **result: Any) -> Op:
        return self.complete(op, Outcome.OK, **result)

    def fail(self, op: Op, **result: Any) -> Op:
        return self.complete(op, Outcome.FAIL, **result)

    def info(self, op: Op, **result: Any) -> Op:
        return self.complete(op, Outcome.INFO, **result)

    def ops(self) -> list[Op]:
        with self._lock:
            return list(self._ops)

    def close_pending(self) -> int:
        """At the end: an operation that never completed is unknown."""
        n = 0
        with self._lock:
            for op in self._ops:
                if op.outcome is None:
                    op.outcome = Outcome.INFO
                    op.completed = None
                    op.result = {"error": "never completed"}
                    n += 1
        return n
