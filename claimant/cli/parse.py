"""Command-line values, one syntax everywhere: resources ``CLASS=N`` (or
Placement's ``CLASS:N``), comma lists, attribute constraints ``NAME OP VALUE``
and ``NAME in [a, b]``, and multi-group specs for ``request create --group``.
Anything else is refused with the form to use (exit 2), never sent on to
silently match nothing."""

from __future__ import annotations

import json
import re
from typing import Any

import click

_AMOUNT = re.compile(r"^\s*([A-Za-z0-9_]+)\s*[=:]\s*(-?\d+)\s*$")


def resources(values: tuple[str, ...] | list[str], what: str = "--resources") -> dict[str, int]:
    """``VCPU=2,MEMORY_MB=2048`` or ``VCPU:2`` (repeatable) -> {"VCPU": 2, ...}."""
    out: dict[str, int] = {}
    for value in values:
        for part in value.split(","):
            if not part.strip():
                continue
            m = _AMOUNT.match(part)
            if not m:
                raise click.BadParameter(
                    f"{part.strip()!r}: use CLASS=N, e.g. VCPU=2,MEMORY_MB=2048", param_hint=what
                )
            out[m.group(1)] = int(m.group(2))
    return out


def pairs(values: tuple[str, ...], what: str, cast: Any = int) -> dict[str, Any]:
    """``KEY=VALUE,KEY=VALUE`` (repeatable), values through ``cast``."""
    out: dict[str, Any] = {}
    for value in values:
        for part in value.split(","):
            key, sep, raw = part.partition("=")
            if not sep or not key.strip():
                raise click.BadParameter(f"{part!r}: use NAME=VALUE", param_hint=what)
            try:
                out[key.strip()] = cast(raw.strip())
            except ValueError:
                raise click.BadParameter(f"{part!r}: bad value", param_hint=what) from None
    return out


def names(values: tuple[str, ...] | list[str]) -> list[str]:
    return [n.strip() for v in values for n in v.split(",") if n.strip()]


def scalar(raw: str) -> Any:
    """A value from the command line: a JSON scalar (2, 1.5, true), else a string."""
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return value if isinstance(value, str | int | float | bool) else raw


_IN = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s+in\s+(.*)$", re.IGNORECASE)
_OP = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*(==|!=|<=|>=|<|>|=)\s*(.*?)\s*$")
FORMS = "NAME==VALUE, NAME!=VALUE, NAME>=N (< <= > >=) or 'NAME in [a, b]'"


def constraint(text: str, what: str = "--attribute") -> dict[str, Any]:
    """``ram_gb>=256``, ``cpu_arch==x86_64`` (``=`` too), ``cpu_arch in [a, b]``
    (brackets, parentheses or none) -> an attribute constraint body."""
    m = _IN.match(text)
    if m:
        raw = m.group(2).strip()
        opened, closed = raw[:1] in ("[", "("), raw[-1:] in ("]", ")")
        if opened != closed:
            raise click.BadParameter(f"{text!r}: unbalanced brackets; use {FORMS}", param_hint=what)
        if opened:
            raw = raw[1:-1]
        values = [scalar(v) for v in raw.split(",") if v.strip()]
        if not values:
            raise click.BadParameter(
                f"{text!r}: 'in' needs values, e.g. 'cpu_arch in [a, b]'", param_hint=what
            )
        return {"name": m.group(1), "op": "in", "value": values}
    m = _OP.match(text)
    if m and m.group(3):
        value = m.group(3)
        if value[:1] in "[(":
            raise click.BadParameter(f"{text!r}: a list needs 'NAME in [a, b]'", param_hint=what)
        op = "==" if m.group(2) == "=" else m.group(2)
        return {"name": m.group(1), "op": op, "value": scalar(value)}
    raise click.BadParameter(f"{text!r}: use {FORMS}", param_hint=what)


GROUP_KEYS = ("name", "required", "forbidden", "member_of", "in_tree", "type", "span")
GROUP_FORM = (
    "'name=gpu; VGPU=1; required=CUSTOM_GPU_A100; forbidden=T; member_of=AGG1,AGG2; "
    "in_tree=NAME; type=T; span=tree; cpu_arch in [a, b]' (clauses separated by ';')"
)


def group(text: str) -> dict[str, Any]:
    """One ``--group`` spec -> a request group body (``in_tree`` still a name
    or uuid: the caller resolves it)."""
    out: dict[str, Any] = {}
    for clause in (c.strip() for c in text.split(";")):
        if not clause:
            continue
        key, sep, value = clause.partition("=")
        key = key.strip()
        if sep and key in GROUP_KEYS and not value.startswith("="):
            value = value.strip()
            if key == "name":
                out["name"] = value
            elif key in ("required", "forbidden"):
                out.setdefault(f"{key}_traits", []).extend(names([value]))
            elif key == "member_of":
                out.setdefault("member_of", []).append(names([value]))
            elif key == "type":
                out["provider_type"] = value
            elif key == "span":
                if value not in ("provider", "tree"):
                    raise click.BadParameter(
                        f"span={value}: provider or tree", param_hint="--group"
                    )
                out["span"] = value
            else:
                out[key] = value
            continue
        if all(_AMOUNT.match(p) for p in clause.split(",") if p.strip()):
            out.setdefault("resources", {}).update(resources([clause], "--group"))
            continue
        try:
            out.setdefault("attributes", []).append(constraint(clause, "--group"))
        except click.BadParameter:
            raise click.BadParameter(
                f"{clause!r} in {text!r}: use {GROUP_FORM}", param_hint="--group"
            ) from None
    if not out.get("resources"):
        raise click.BadParameter(
            f"{text!r} asks for no resources: use {GROUP_FORM}", param_hint="--group"
        )
    return out
