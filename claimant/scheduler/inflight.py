"""Providers with a claim in flight in this process (issue 10).

Threads of one scheduler that read the same candidates at the same moment
(they woke from one SQLite group commit together) pick among the same best
hosts, and all but one of those on a host lose its compare-and-set. A
placement marks the providers it picked until its claims' outcome is known;
a pick skips providers another placement marked while a candidate without
any fits. Only a preference: a candidate whose providers are all marked is
still picked when nothing else fits (the last unit of a provider), and the
compare-and-set stays the arbiter.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import TypeVar

T = TypeVar("T")

# More marks than any process has placements in flight: past it a pick marks
# nothing (it is only a preference) rather than grow without bound.
MAX_MARKS = 4096


class InFlight:
    """A multiset of provider uuids, shared by the threads of one scheduler."""

    def __init__(self, limit: int = MAX_MARKS) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._held: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._held)

    def held(self) -> dict[str, int]:
        """Provider uuid -> placements that marked it (a copy)."""
        with self._lock:
            return dict(self._held)

    def pick(
        self,
        candidates: Iterable[T],
        providers: Callable[[T], Collection[str]],
        k: int,
        rng: random.Random,
        mine: Mapping[str, int] | None = None,
    ) -> tuple[T, list[str]] | None:
        """At random among the best ``k`` candidates none of whose providers
        another placement marked; if every candidate has one, among the best
        ``k``. The chosen one's providers are marked, in the same lock, so two
        picks never both see a provider free; the marks are returned, for
        ``release``. ``mine``: marks the caller holds itself (another group
        of the same instance), which do not count as in flight."""
        own = mine or {}
        with self._lock:
            held = self._held
            best: list[T] = []
            free: list[T] = []
            for cand in candidates:
                if len(best) < k:
                    best.append(cand)
                if not any(held.get(p, 0) > own.get(p, 0) for p in providers(cand)):
                    free.append(cand)
                    if len(free) >= k:
                        break
            pool = free or best
            if not pool:
                return None
            chosen = rng.choice(pool)
            marked: list[str] = []
            if len(held) < self.limit:
                for p in providers(chosen):
                    held[p] = held.get(p, 0) + 1
                    marked.append(p)
        return chosen, marked

    def release(self, marked: Iterable[str]) -> None:
        with self._lock:
            for p in marked:
                n = self._held.get(p, 0) - 1
                if n > 0:
                    self._held[p] = n
                else:
                    self._held.pop(p, None)
