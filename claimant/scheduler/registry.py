"""Plugins registered by name. A registry refuses a second plugin under a taken
name, and builds plugins from their options, so a bad option fails when the
scheduler is built rather than on the first request."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from claimant.model.errors import AlreadyExists, InvalidInput

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._plugins: dict[str, type[T]] = {}

    def register(self, cls: type[T]) -> type[T]:
        """Register ``cls`` under its ``NAME``; usable as a class decorator."""
        name = getattr(cls, "NAME", "")
        if not isinstance(name, str) or not name:
            raise InvalidInput(f"{self.kind} {cls.__qualname__} has no NAME")
        if name in self._plugins:
            raise AlreadyExists(
                f"a {self.kind} named {name!r} is already registered "
                f"({self._plugins[name].__module__}.{self._plugins[name].__qualname__})"
            )
        self._plugins[name] = cls
        return cls

    def unregister(self, name: str) -> None:
        self._plugins.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._plugins)

    def __contains__(self, name: object) -> bool:
        return name in self._plugins

    def build(self, name: str, options: Mapping[str, Any] | None = None) -> T:
        cls = self._plugins.get(name)
        if cls is None:
            raise InvalidInput(
                f"unknown {self.kind} {name!r}; registered: {', '.join(self.names())}",
                field=name,
            )
        try:
            return cls(**dict(options or {}))
        except TypeError as exc:
            # Unknown or missing keyword arguments: the operator's config is wrong.
            raise InvalidInput(f"{self.kind} {name}: bad options: {exc}", field=name) from exc
