"""Plugins: filters, weighers, agent drivers and stores, found one way.

Every plugin, claimant's own included, is an entry point in its kind's group
(``claimant.filters``, ``claimant.weighers``, ``claimant.drivers``,
``claimant.stores``); pyproject.toml lists the built-in ones, and a package of
yours adds its own the same way (docs/plugins.md). A ``PluginGroup`` finds
them by name, imports one only when asked, and builds it from its options:

- an unknown name is ``UnknownPlugin`` (``unknown_plugin``), listing the known
  names;
- a plugin that fails to import, is not what its group needs, or is
  registered twice under one name is ``PluginUnavailable``
  (``plugin_unavailable``), saying which and why;
- options that its ``Options`` model refuses are ``InvalidPluginOptions``
  (``invalid_plugin_options``), naming each bad field.

All three are ``InvalidInput``: a config error, found when the scheduler,
agent or store is built, never a traceback on the first request.

Imports nothing of ours but the model's errors.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, TypeVar, cast

from pydantic import BaseModel, ConfigDict, ValidationError

from claimant.model.errors import (
    INVALID_PLUGIN_OPTIONS,
    PLUGIN_UNAVAILABLE,
    UNKNOWN_PLUGIN,
    InvalidInput,
)

__all__ = [
    "InvalidPluginOptions",
    "NoOptions",
    "PluginGroup",
    "PluginOptions",
    "PluginUnavailable",
    "UnknownPlugin",
    "refresh",
    "subclass_of",
]


class PluginOptions(BaseModel):
    """Base of a plugin's options: unknown keys and loosely typed values are
    refused (strict: ``"3"`` is not 3, ``true`` is not 1)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class NoOptions(PluginOptions):
    """A plugin that takes no options."""


class UnknownPlugin(InvalidInput):
    code = UNKNOWN_PLUGIN


class PluginUnavailable(InvalidInput):
    code = PLUGIN_UNAVAILABLE


class InvalidPluginOptions(InvalidInput):
    code = INVALID_PLUGIN_OPTIONS


T = TypeVar("T")

_GROUPS: list[PluginGroup[Any]] = []


def refresh() -> None:
    """Forget every group's entry points and loaded plugins (after a
    distribution was installed or removed in this process: tests)."""
    importlib.invalidate_caches()
    for group in list(_GROUPS):
        group.forget()


def subclass_of(base: type) -> Callable[[object], str]:
    """A group's check: the plugin is a class that subclasses ``base`` (the
    kind's Protocol, explicitly, which gives it the optional hooks' defaults)."""

    def check(obj: object) -> str:
        if isinstance(obj, type) and base in obj.__mro__:
            return ""
        return f"it is not a subclass of {base.__module__}.{base.__qualname__}"

    return check


class PluginGroup(Generic[T]):
    """The plugins of one entry-point group, by name."""

    def __init__(
        self, group: str, kind: str, check: Callable[[object], str], *, named: bool = False
    ) -> None:
        """``check`` says what is wrong with a loaded plugin ("" if nothing);
        ``named``: the plugin's ``NAME`` must be its entry point's name."""
        self.group = group
        self.kind = kind
        self._check = check
        self._named = named
        self._lock = threading.Lock()
        self._points: dict[str, list[EntryPoint]] | None = None
        self._loaded: dict[str, Any] = {}
        _GROUPS.append(self)

    def forget(self) -> None:
        with self._lock:
            self._points = None
            self._loaded.clear()

    def _entry_points(self) -> dict[str, list[EntryPoint]]:
        with self._lock:
            if self._points is None:
                points: dict[str, list[EntryPoint]] = {}
                for ep in entry_points(group=self.group):
                    same = points.setdefault(ep.name, [])
                    # One distribution found twice on sys.path lists the same value twice.
                    if all(other.value != ep.value for other in same):
                        same.append(ep)
                self._points = points
            return self._points

    def names(self) -> list[str]:
        return sorted(self._entry_points())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._entry_points()

    def load(self, name: str) -> Any:
        """The object a name's entry point names (a class, or a function)."""
        with self._lock:
            if name in self._loaded:
                return self._loaded[name]
        points = self._entry_points().get(name)
        if not points:
            known = self.names()
            if not known:
                raise UnknownPlugin(
                    f"unknown {self.kind} {name!r}: no {self.kind} is installed (entry point "
                    f"group {self.group}); is claimant's package metadata stale? "
                    "`pip install -e .` refreshes it",
                    field=name,
                )
            raise UnknownPlugin(
                f"unknown {self.kind} {name!r}; known: {', '.join(known)}", field=name, known=known
            )
        if len(points) > 1:
            raise PluginUnavailable(
                f"{self.kind} {name!r} is registered twice: "
                + ", ".join(f"{ep.value} ({_dist_of(ep)})" for ep in points),
                field=name,
            )
        (ep,) = points
        try:
            obj = ep.load()
        except Exception as exc:  # whatever the plugin's import raised: say which and why
            raise PluginUnavailable(
                f"{self.kind} {name!r} ({ep.value}, from {_dist_of(ep)}) failed to import: "
                f"{type(exc).__name__}: {exc}",
                field=name,
            ) from exc
        problem = self._check(obj)
        if not problem and self._named and getattr(obj, "NAME", None) != name:
            problem = f"its NAME is {getattr(obj, 'NAME', None)!r}, not {name!r}"
        if problem:
            raise PluginUnavailable(f"{self.kind} {name!r} ({ep.value}): {problem}", field=name)
        with self._lock:
            self._loaded[name] = obj
        return obj

    def build(self, name: str, options: Mapping[str, Any] | None = None) -> T:
        """An instance of a class plugin, from options its ``Options`` accepts
        (passed to its constructor as keyword arguments)."""
        cls = self.load(name)
        model: type[PluginOptions] = cls.Options  # declared by every class plugin's Protocol
        raw = dict(options or {})
        try:
            parsed = model.model_validate(raw)
        except ValidationError as exc:
            raise InvalidPluginOptions(
                f"{self.kind} {name}: bad options: {_problems(exc)}",
                field=name,
                options=sorted(model.model_fields),
            ) from None
        kwargs = {k: getattr(parsed, k) for k in type(parsed).model_fields}
        try:
            return cast(T, cls(**kwargs))
        except TypeError as exc:
            # Its Options and its constructor disagree: the plugin's bug, not the config's.
            raise PluginUnavailable(
                f"{self.kind} {name}: its Options do not fit its constructor: {exc}", field=name
            ) from exc


def _dist_of(ep: EntryPoint) -> str:
    dist = ep.dist
    return f"{dist.name} {dist.version}" if dist is not None else "an unknown distribution"


def _problems(exc: ValidationError) -> str:
    out = []
    for e in exc.errors(include_url=False):
        where = ".".join(str(x) for x in e.get("loc", ())) or "options"
        if e.get("type") == "extra_forbidden":
            out.append(f"{where}: not an option")
        else:
            out.append(f"{where}: {e.get('msg', '')} (got {e.get('input')!r})")
    return "; ".join(out)
