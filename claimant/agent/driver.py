"""Drivers: what actually builds an instance on a host.

A driver is a class that subclasses ``Driver``, registered as an entry point
in the ``claimant.drivers`` group (``fake`` is claimant's own; docs/plugins.md).
``load_driver`` finds one by name and builds it from the ``[driver]`` table of
the agent's config, validated by its ``Options`` model."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Protocol

from pydantic import Field

from claimant.plugins import NoOptions, PluginGroup, PluginOptions, subclass_of


class BuildError(Exception):
    """The driver could not build the instance (not a claimant error: the
    agent turns it into a failed build reply)."""


class Driver(Protocol):
    """What a driver is. Subclass it."""

    Options: ClassVar[type[PluginOptions]] = NoOptions

    def discover(self) -> dict[str, Any]:
        """What the host has, merged over the config's ``[provider]`` table:
        any of ``inventories``, ``traits``, ``attributes`` (may be empty)."""
        ...

    def build(self, consumer_uuid: str, amounts: dict[str, dict[str, int]]) -> None:
        """Build; ``amounts`` is provider uuid -> class -> amount. Raise BuildError."""
        ...

    def destroy(self, consumer_uuid: str) -> None: ...


class FakeDriver(Driver):
    """Builds nothing: sleeps ``build_time`` seconds and fails with probability
    ``failure_rate``. ``inventories`` (optional) is what it "discovers"."""

    class Options(PluginOptions):
        build_time: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
        failure_rate: Annotated[float, Field(ge=0, le=1)] = 0.0
        seed: int | None = None
        inventories: dict[str, Any] | None = None

    def __init__(
        self,
        build_time: float = 0.0,
        failure_rate: float = 0.0,
        seed: int | None = None,
        inventories: dict[str, Any] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.build_time = float(build_time)
        self.failure_rate = float(failure_rate)
        self.inventories = dict(inventories or {})
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._sleep = sleep
        self.instances: set[str] = set()

    def discover(self) -> dict[str, Any]:
        return {"inventories": dict(self.inventories)} if self.inventories else {}

    def build(self, consumer_uuid: str, amounts: dict[str, dict[str, int]]) -> None:
        if self.build_time:
            self._sleep(self.build_time)
        with self._lock:
            fail = self.failure_rate > 0 and self._rng.random() < self.failure_rate
            if not fail:
                self.instances.add(consumer_uuid)
        if fail:
            raise BuildError(f"fake driver: injected failure building {consumer_uuid}")

    def destroy(self, consumer_uuid: str) -> None:
        with self._lock:
            self.instances.discard(consumer_uuid)


DRIVERS: PluginGroup[Driver] = PluginGroup("claimant.drivers", "driver", subclass_of(Driver))


def load_driver(name: str, options: dict[str, Any] | None = None) -> Driver:
    return DRIVERS.build(name, options)
