"""One policy for both APIs: named rules, each a check string in
oslo.policy's language, with defaults built from claimant's role table.

Every route of the native API and of the Placement API names one rule
(``claimant:<handler>`` and Placement's own ``placement:...`` names). A rule's
default is one of four base rules:

========================  =====================================================
``admin_api``             catalogue changes (resource classes, traits, types,
                          aggregate names) and provider deletion
``service_api``           writes: providers, inventories, claims, allocations
``reader_api``            reads
``project_reader_api``    a reader of the project named in the target (usages)
========================  =====================================================

An operator overrides any rule with a policy file in Placement's format (JSON
or YAML mapping a rule name to a check string), e.g.
``"placement:resource_providers:delete": "role:admin"``.

The check-string language is oslo.policy's: ``role:NAME``, ``rule:NAME``,
``ATTR:VALUE`` against the caller (``project_id:%(project_id)s`` substitutes
the target), ``@`` (always), ``!`` (never), ``and``, ``or``, ``not`` and
parentheses; ``and`` binds tighter than ``or``. A rule that is not defined
refuses, as in oslo.policy.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from claimant.api.auth import read_mapping_file
from claimant.model.errors import InvalidInput

ADMIN_API = "rule:admin_api"
SERVICE_API = "rule:service_api"
READER_API = "rule:reader_api"
PROJECT_READER_API = "rule:project_reader_api"

BASE_RULES: dict[str, str] = {
    "admin_api": "role:admin",
    "service_api": "role:admin or role:service",
    "reader_api": "role:admin or role:service or role:reader",
    "project_reader_api": "rule:service_api or (role:reader and project_id:%(project_id)s)",
}


class Creds(Protocol):
    @property
    def roles(self) -> frozenset[str]: ...
    @property
    def project_id(self) -> str: ...
    @property
    def user_id(self) -> str: ...
    @property
    def system_scope(self) -> bool: ...


Target = Mapping[str, Any]
# check(creds, target, policy) -> allowed
Check = Callable[[Creds, Target, "Policy"], bool]


def _always(creds: Creds, target: Target, policy: Policy) -> bool:
    return True


def _never(creds: Creds, target: Target, policy: Policy) -> bool:
    return False


_SUBST = re.compile(r"%\((\w+)\)s")


def _leaf(token: str) -> Check:
    if token == "@":
        return _always
    if token == "!":
        return _never
    kind, sep, match = token.partition(":")
    if not sep or not kind or not match:
        raise ValueError(f"not a check: {token!r}")
    if kind == "role":
        role = match.lower()
        return lambda creds, target, policy: role in creds.roles
    if kind == "rule":
        return lambda creds, target, policy: policy.check(match, creds, target)

    def generic(creds: Creds, target: Target, policy: Policy) -> bool:
        try:
            wanted = _SUBST.sub(lambda m: str(target[m.group(1)]), match)
        except KeyError:
            return False
        value = getattr(creds, kind, None)
        if value is None or value == "":
            return False
        if isinstance(value, bool):
            return str(value).lower() == wanted.lower()
        return str(value) == wanted.strip("'\"")

    return generic


def _tokens(check: str) -> list[str]:
    """oslo.policy's tokenizer: split on spaces, then peel parentheses off the
    ends (``%(project_id)s`` keeps its own)."""
    out: list[str] = []
    for word in check.split():
        clean = word.lstrip("(")
        out += ["("] * (len(word) - len(clean))
        if not clean:
            continue
        stripped = clean.rstrip(")")
        trail = len(clean) - len(stripped)
        if stripped:
            out.append(stripped)
        out += [")"] * trail
    return out


def parse(check: str) -> Check:
    """A check string, parsed once. An empty string allows anyone, as in
    oslo.policy."""
    tokens = _tokens(check)
    if not tokens:
        return _always
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise ValueError("unexpected end")
        pos += 1
        return tokens[pos - 1]

    def expr() -> Check:
        parts = [term()]
        while peek() == "or":
            take()
            parts.append(term())
        if len(parts) == 1:
            return parts[0]
        return lambda c, t, p: any(x(c, t, p) for x in parts)

    def term() -> Check:
        parts = [factor()]
        while peek() == "and":
            take()
            parts.append(factor())
        if len(parts) == 1:
            return parts[0]
        return lambda c, t, p: all(x(c, t, p) for x in parts)

    def factor() -> Check:
        token = take()
        if token == "not":
            inner = factor()
            return lambda c, t, p: not inner(c, t, p)
        if token == "(":
            inner = expr()
            if take() != ")":
                raise ValueError("missing )")
            return inner
        if token in (")", "and", "or"):
            raise ValueError(f"unexpected {token!r}")
        return _leaf(token)

    result = expr()
    if pos != len(tokens):
        raise ValueError(f"unexpected {tokens[pos]!r}")
    return result


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    default: str
    description: str = ""


class Policy:
    """Rules by name. ``enforce_scope``: refuse system-scoped callers (every
    rule is project-scoped, as Placement's are)."""

    def __init__(
        self,
        rules: Mapping[str, str],
        *,
        enforce_scope: bool = True,
    ) -> None:
        self.text: dict[str, str] = dict(rules)
        self.enforce_scope = enforce_scope
        self._checks: dict[str, Check] = {}
        for name, check in self.text.items():
            if not isinstance(check, str):
                raise InvalidInput(f"policy rule {name!r}: the check must be a string")
            try:
                self._checks[name] = parse(check)
            except ValueError as exc:
                raise InvalidInput(f"policy rule {name!r}: {exc} in {check!r}") from None
        _refuse_cycles(self.text)

    def check(self, name: str, creds: Creds, target: Target) -> bool:
        check = self._checks.get(name)
        return check is not None and check(creds, target, self)

    def allowed(self, name: str, creds: Creds, target: Target | None = None) -> bool:
        if self.enforce_scope and creds.system_scope:
            return False
        return self.check(name, creds, target or {})

    def override(self, rules: Mapping[str, str]) -> Policy:
        return Policy({**self.text, **rules}, enforce_scope=self.enforce_scope)


_RULE_REF = re.compile(r"rule:([^\s()]+)")


def _refuse_cycles(text: Mapping[str, str]) -> None:
    """``rule:a`` naming ``rule:b`` naming ``rule:a`` would recurse forever."""
    refs = {name: set(_RULE_REF.findall(check)) for name, check in text.items()}
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            raise InvalidInput(f"policy rules refer to each other: {' -> '.join((*path, name))}")
        if name in done:
            return
        for ref in refs.get(name, ()):
            visit(ref, (*path, name))
        done.add(name)

    for name in refs:
        visit(name, ())


def default_rules() -> list[Rule]:
    """Every rule both APIs use, with its default."""
    from claimant.api.placement.routes import placement_rules
    from claimant.api.routes import native_rules

    rules = [Rule(name, check, "base rule") for name, check in BASE_RULES.items()]
    rules += native_rules()
    rules += placement_rules()
    seen: dict[str, str] = {}
    for r in rules:
        if seen.setdefault(r.name, r.default) != r.default:
            raise RuntimeError(f"policy rule {r.name} has two defaults")
    return rules


def default_policy() -> Policy:
    return Policy({r.name: r.default for r in default_rules()})


def read_policy_file(path: str | Path) -> dict[str, str]:
    p = Path(path)
    data = read_mapping_file(p, "policy file")
    if data is None:
        data = {}
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise InvalidInput(f"policy file {p} must map rule names to check strings")
    return data


def load_policy(path: str | Path | None) -> Policy:
    """The default policy, overridden by a policy file if given."""
    policy = default_policy()
    if path is None:
        return policy
    overrides = read_policy_file(path)
    known = {r.name for r in default_rules()}
    unknown = sorted(set(overrides) - known)
    merged = policy.override(overrides)
    # A misspelt rule name would silently change nothing: refuse it unless
    # another rule refers to it (operators may define helper rules).
    referenced = {m for v in merged.text.values() for m in _RULE_REF.findall(v)}
    stray = [n for n in unknown if n not in referenced]
    if stray:
        raise InvalidInput(f"policy file {path}: unknown rule(s) {', '.join(stray)}")
    return merged
