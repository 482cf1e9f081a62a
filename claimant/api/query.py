"""The one parser of ``required`` (traits) and ``member_of`` (aggregates)
query values, shared by the native API (GET /v1/providers) and the Placement
API (its microversions decide what a ``Dialect`` allows).

Syntax:

- ``required``: ``A,!B`` (A required, B forbidden) or ``in:A,B`` (any of);
- ``member_of``: ``A`` or ``in:A,B`` (any of), ``!A`` or ``!in:A,B`` (none of).

Only syntax is checked here; each API says what an aggregate reference is
(Placement: a uuid; native: a uuid or a name) and words each ``Problem`` its
own way (Placement keeps Placement's messages).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Problem(StrEnum):
    EMPTY_NAME = "empty_name"  # ``A,,B``, ``!``, ``in:``
    FORBIDDEN_IN_ANY_OF = "forbidden_in_any_of"  # ``in:A,!B``
    ANY_OF_UNSUPPORTED = "any_of_unsupported"  # ``in:`` where the dialect has none
    FORBIDDEN_UNSUPPORTED = "forbidden_unsupported"  # ``!A`` where the dialect has none
    LIST_WITHOUT_IN = "list_without_in"  # ``member_of=A,B`` where ``in:`` is required


class QuerySyntaxError(ValueError):
    def __init__(self, problem: Problem, value: str) -> None:
        super().__init__(f"{problem}: {value!r}")
        self.problem = problem
        self.value = value


@dataclass(frozen=True, slots=True)
class Dialect:
    """What one API (at one microversion) accepts."""

    forbidden: bool = True
    any_of: bool = True
    # ``member_of=A,B`` means any of A and B (without ``in:``).
    bare_list: bool = True


NATIVE = Dialect()


@dataclass(frozen=True, slots=True)
class Traits:
    """One ``required`` value: every set must meet the provider's traits (a
    set of one is a plain required trait), and no forbidden trait may."""

    required: tuple[frozenset[str], ...]
    forbidden: frozenset[str]


@dataclass(frozen=True, slots=True)
class MemberOf:
    """One ``member_of`` value: ``any_of`` (None when it forbids) or ``none_of``."""

    any_of: frozenset[str] | None
    none_of: frozenset[str]


def parse_traits(value: str, dialect: Dialect = NATIVE) -> Traits:
    """Trait names are stripped of surrounding blanks."""
    if value.startswith("in:"):
        if not dialect.any_of:
            raise QuerySyntaxError(Problem.ANY_OF_UNSUPPORTED, value)
        names = {t.strip() for t in value[3:].split(",")}
        if not all(names):
            raise QuerySyntaxError(Problem.EMPTY_NAME, value)
        if any(t.startswith("!") for t in names):
            raise QuerySyntaxError(Problem.FORBIDDEN_IN_ANY_OF, value)
        return Traits((frozenset(names),), frozenset())
    names_list = [t.strip() for t in value.split(",")]
    # lstrip, as Placement does: "!!A" forbids A.
    forbidden = {t.lstrip("!") for t in names_list if t.startswith("!")}
    if not all(names_list) or not all(forbidden):
        raise QuerySyntaxError(Problem.EMPTY_NAME, value)
    if forbidden and not dialect.forbidden:
        raise QuerySyntaxError(Problem.FORBIDDEN_UNSUPPORTED, value)
    required = tuple(frozenset({t}) for t in names_list if not t.startswith("!"))
    return Traits(required, frozenset(forbidden))


def parse_member_of(value: str, dialect: Dialect = NATIVE) -> MemberOf:
    """References are kept as written (not stripped): what a valid one is
    belongs to the API. An empty one is still a syntax error."""
    negated = value.startswith("!")
    body = value[1:] if negated else value
    prefixed = body.startswith("in:")
    if prefixed:
        body = body[3:]
    elif "," in body and not dialect.bare_list:
        raise QuerySyntaxError(Problem.LIST_WITHOUT_IN, value)
    refs = frozenset(body.split(","))
    if "" in refs:
        raise QuerySyntaxError(Problem.EMPTY_NAME, value)
    if negated:
        if not dialect.forbidden:
            raise QuerySyntaxError(Problem.FORBIDDEN_UNSUPPORTED, value)
        return MemberOf(None, refs)
    return MemberOf(refs, frozenset())
