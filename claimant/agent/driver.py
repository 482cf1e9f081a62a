"""Drivers: what actually builds an instance on a host.

A driver is any object with the ``Driver`` methods. ``load_driver`` finds one
by a built-in name (``fake``), an entry point in the ``claimant.drivers``
group, or a dotted path ``package.module:Class``; it is built with the
``[driver]`` table of the agent's config as keyword arguments."""

from __future__ import annotations

import importlib
import random
import threading
import time
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

from claimant.model.errors import InvalidInput

ENTRY_POINT_GROUP = "claimant.drivers"


class BuildError(Exception):
    """The driver could not build the instance (not a claimant error: the
    agent turns it into a failed build reply)."""


@runtime_checkable
class Driver(Protocol):
    def discover(self) -> dict[str, Any]:
        """What the host has, merged over the config's ``[provider]`` table:
        any of ``inventories``, ``traits``, ``attributes`` (may be empty)."""
        ...

    def build(self, consumer_uuid: str, amounts: dict[str, dict[str, int]]) -> None:
        """Build; ``amounts`` is provider uuid -> class -> amount. Raise BuildError."""
        ...

    def destroy(self, consumer_uuid: str) -> None: ...


class FakeDriver:
    """Builds nothing: sleeps ``build_time`` seconds and fails with probability
    ``failure_rate``. ``inventories`` (optional) is what it "discovers"."""

    def __init__(
        self,
        build_time: float = 0.0,
        failure_rate: float = 0.0,
        seed: int | None = None,
        inventories: dict[str, Any] | None = None,
        sleep: Any = time.sleep,
    ) -> None:
        if not isinstance(build_time, int | float) or build_time < 0:
            raise InvalidInput("fake driver: build_time must be >= 0 seconds", field="build_time")
        if not isinstance(failure_rate, int | float) or not 0 <= failure_rate <= 1:
            raise InvalidInput(
                "fake driver: failure_rate must be between 0 and 1", field="failure_rate"
            )
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


BUILTIN_DRIVERS: dict[str, type] = {"fake": FakeDriver}


def _resolve(name: str) -> Any:
    if name in BUILTIN_DRIVERS:
        return BUILTIN_DRIVERS[name]
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            return getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise InvalidInput(f"driver {name!r} cannot be loaded: {exc}", field="driver") from exc
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return ep.load()
    raise InvalidInput(
        f"unknown driver {name!r}: use one of {', '.join(sorted(BUILTIN_DRIVERS))}, an entry "
        f"point in {ENTRY_POINT_GROUP}, or package.module:Class",
        field="driver",
    )


def load_driver(name: str, options: dict[str, Any] | None = None) -> Driver:
    factory = _resolve(name)
    try:
        driver = factory(**(options or {}))
    except TypeError as exc:
        raise InvalidInput(f"driver {name!r}: bad options: {exc}", field="driver") from exc
    if not isinstance(driver, Driver):
        raise InvalidInput(f"driver {name!r} lacks discover/build/destroy", field="driver")
    return driver
