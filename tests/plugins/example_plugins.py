"""Plugins of a test's own, registered through tests.plugin_dist."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from claimant.agent.driver import Driver
from claimant.model import ProviderUsage
from claimant.scheduler import Filter, FilterResult, PlacementContext, Weigher
from claimant.store import Store


class PassFilter(Filter):
    """Declares no hook: the Protocol's defaults apply."""

    NAME = "TestPassFilter"

    def filter(self, candidate: ProviderUsage, ctx: PlacementContext) -> FilterResult:
        return FilterResult.ok()


class Impostor(Filter):
    NAME = "AffinityFilter"

    def filter(self, candidate: ProviderUsage, ctx: PlacementContext) -> FilterResult:
        return FilterResult.ok()


class NotAFilter:
    """Has the method but does not subclass Filter."""

    NAME = "TestNotAFilter"

    def filter(self, candidate: ProviderUsage, ctx: PlacementContext) -> FilterResult:
        return FilterResult.ok()


class SmallWeigher(Weigher):
    """Prefers the host with less MEMORY_MB; declares no FOLLOWS_STRATEGY, so
    ``pack`` never flips it."""

    NAME = "TestSmallWeigher"

    def weigh(self, candidates: Sequence[ProviderUsage], ctx: PlacementContext) -> list[float]:
        return [-float(c.usages["MEMORY_MB"].capacity) for c in candidates]


class NullDriver(Driver):
    def discover(self) -> dict[str, Any]:
        return {}

    def build(self, consumer_uuid: str, amounts: dict[str, dict[str, int]]) -> None:
        pass

    def destroy(self, consumer_uuid: str) -> None:
        pass


def open_test_sqlite(url: str) -> Store:
    """``testsqlite:///path``: SQLite under a scheme of the test's own."""
    from claimant.store.sqlite import SQLiteStore

    return SQLiteStore(urlsplit(url).path, url=url)
