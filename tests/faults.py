"""Fault injection for tests: a real store whose chosen calls fail.

``FaultyStore(store, claim={2})`` behaves exactly like ``store`` except that
the second call of ``claim`` raises ``StoreUnavailable`` (calls count from 1).
A set of call numbers, ``ALWAYS``, or a predicate on the call number picks
the failing calls. The store behind it is real; only the outage is made up."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from typing import Any

from claimant.model import StoreUnavailable
from claimant.store import Store

Which = Collection[int] | Callable[[int], bool]


def ALWAYS(n: int) -> bool:
    return True


class FaultyStore:
    def __init__(self, store: Store, **faults: Which) -> None:
        self.inner = store
        self.faults = faults
        self.calls: dict[str, int] = {}
        self.failed: dict[str, int] = {}
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        which = self.faults.get(name)
        if which is None:
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                n = self.calls[name] = self.calls.get(name, 0) + 1
            if which(n) if callable(which) else n in which:
                with self._lock:
                    self.failed[name] = self.failed.get(name, 0) + 1
                raise StoreUnavailable(f"injected outage: {name} call {n}")
            return target(*args, **kwargs)

        return call
