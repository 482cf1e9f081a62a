"""Pieces several Placement handlers share: query-string parsing (resources,
required traits, member_of, in_tree), provider look-ups and links."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from claimant.api import query
from claimant.api.bounds import (
    MAX_CLASSES_PER_GROUP,
    MAX_INT64,
    MAX_MEMBER_OF,
    check_count,
    check_lists,
)
from claimant.api.placement.errors import PlacementError, bad_request, not_found
from claimant.api.placement.framework import Req, is_uuid
from claimant.model import NotFound, Provider
from claimant.model.names import STANDARD_RESOURCE_CLASSES

RC_PATTERN = "^[A-Z0-9_]+$"
CUSTOM_PATTERN = "^CUSTOM_[A-Z0-9_]+$"
UUID_PATTERN = "^[0-9a-fA-F-]{36}$"
MAX_INT = 2**31 - 1
# Placement stores allocation_ratio as a MySQL single-precision float.
SQL_SP_FLOAT_MAX = 3.40282e38
INCOMPLETE_PROJECT = "00000000-0000-0000-0000-000000000000"
INCOMPLETE_USER = "00000000-0000-0000-0000-000000000000"


def class_order(names: Iterable[str]) -> list[str]:
    """Placement lists classes in id order: the standard ones as
    os-resource-classes orders them, then custom ones."""
    rank = {n: i for i, n in enumerate(STANDARD_RESOURCE_CLASSES)}
    return sorted(names, key=lambda n: (rank.get(n, len(rank)), n))


def trait_order(names: Iterable[str]) -> list[str]:
    """Placement lists traits in id order: standard ones, then custom ones."""
    return sorted(names, key=lambda n: (n.startswith("CUSTOM_"), n))


def get_provider(req: Req, uuid: str, context: str = "") -> Provider:
    """The provider, or Placement's 404: its handlers put their own sentence
    (``context``) before the lookup's, as in ``<context>: <not found>``."""
    try:
        return req.store.get_provider(uuid)
    except NotFound:
        raise not_found(f"{context}No resource provider with uuid {uuid} found") from None


def provider_url(uuid: str) -> str:
    return f"/resource_providers/{uuid}"


def parse_resources(qs: str) -> dict[str, int]:
    form = "?resources=VCPU:2,MEMORY_MB:1024"
    if qs.strip() == "":
        raise bad_request(
            "Badly formed resources parameter. Expected resources query string "
            f"parameter in form: {form}. Got: empty string."
        )
    out: dict[str, int] = {}
    for part in qs.split(","):
        try:
            rc, amount_s = part.split(":")
        except ValueError:
            raise bad_request(
                "Badly formed resources parameter. Expected resources query string "
                f"parameter in form: {form}. Got: {part}."
            ) from None
        try:
            amount = int(amount_s)
        except ValueError:
            raise bad_request(
                f"Requested resource {rc} expected positive integer amount. Got: {amount_s}."
            ) from None
        if amount < 1:
            raise bad_request(f"Requested resource {rc} requires amount >= 1. Got: {amount}.")
        if amount > MAX_INT64:
            raise bad_request(f"Requested resource {rc} amount must be at most {MAX_INT64}.")
        out[rc] = amount
    return out


def parse_traits_value(
    val: str, allow_forbidden: bool, allow_any: bool
) -> tuple[list[frozenset[str]], set[str]]:
    """``required`` value -> (AND of OR-sets, forbidden)."""
    try:
        traits = query.parse_traits(val, query.Dialect(forbidden=allow_forbidden, any_of=allow_any))
    except query.QuerySyntaxError as exc:
        raise bad_request(_traits_message(exc, allow_forbidden)) from None
    return list(traits.required), set(traits.forbidden)


def _traits_message(exc: query.QuerySyntaxError, allow_forbidden: bool) -> str:
    val = exc.value
    if exc.problem is query.Problem.ANY_OF_UNSUPPORTED:
        return (
            "Invalid query string parameters: The format 'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' "
            f"only supported since microversion 1.39. Got: {val}"
        )
    if exc.problem is query.Problem.FORBIDDEN_IN_ANY_OF:
        return (
            "Invalid query string parameters: The format 'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' "
            f"does not support forbidden traits. Got: {val}"
        )
    if exc.problem is query.Problem.EMPTY_NAME:
        if val.startswith("in:"):
            form = "in:HW_CPU_X86_VMX,CUSTOM_MAGIC"
        else:
            form = (
                "HW_CPU_X86_VMX,!CUSTOM_MAGIC" if allow_forbidden else "HW_CPU_X86_VMX,CUSTOM_MAGIC"
            )
        return (
            "Invalid query string parameters: Expected 'required' parameter value of the "
            f"form: {form}. Got an empty trait in: {val}"
        )
    return (  # FORBIDDEN_UNSUPPORTED
        "Invalid query string parameters: Expected 'required' parameter value of the "
        f"form: HW_CPU_X86_VMX,CUSTOM_MAGIC. Got: {val}"
    )


def parse_required(req: Req, suffix: str = "") -> tuple[list[frozenset[str]], set[str]]:
    values = req.params("required" + suffix)
    if not req.want(39):
        values = values[-1:]
    required: list[frozenset[str]] = []
    forbidden: set[str] = set()
    for value in values:
        r, f = parse_traits_value(value, req.want(22), req.want(39))
        required += r
        forbidden |= f
    return required, forbidden


# Forbidden aggregates are checked after the uuids, as Placement does.
_MEMBER_OF = query.Dialect(bare_list=False)


def parse_member_of(req: Req, suffix: str = "") -> tuple[list[frozenset[str]], set[str]]:
    values = req.params("member_of" + suffix)
    if not req.want(24) and len(values) > 1:
        raise bad_request(f"Multiple member_of{suffix} parameters are not supported")
    required: list[frozenset[str]] = []
    forbidden: set[str] = set()
    for value in values:
        try:
            term = query.parse_member_of(value, _MEMBER_OF)
        except query.QuerySyntaxError as exc:
            if exc.problem is query.Problem.LIST_WITHOUT_IN:
                raise bad_request(
                    "Multiple values for 'member_of' must be prefixed with the 'in:' or '!in:' "
                    f"keyword using the valid microversion. Got: {value}"
                ) from None
            raise _not_uuid("") from None  # EMPTY_NAME: an empty uuid
        for agg in (term.any_of or frozenset()) | term.none_of:
            if not is_uuid(agg):
                raise _not_uuid(agg)
        if term.any_of:
            required.append(term.any_of)
        if term.none_of:
            if not req.want(32):
                raise bad_request(
                    f"Forbidden member_of{suffix} parameters are not supported in the "
                    "specified microversion"
                )
            forbidden |= term.none_of
    return required, forbidden


def _not_uuid(agg: str) -> PlacementError:
    return bad_request(
        "Invalid query string parameters: Expected 'member_of' parameter to "
        f"contain valid UUID(s). Got: {agg}"
    )


def parse_in_tree(value: str) -> str:
    ret = value.strip()
    if not is_uuid(ret):
        raise bad_request(
            "Invalid query string parameters: Expected 'in_tree' parameter to be a format "
            f"of uuid. Got: {value}"
        )
    return ret


@dataclass
class Filters:
    """One request group's conditions, as Placement spells them."""

    resources: dict[str, int] = field(default_factory=dict)
    required: list[frozenset[str]] = field(default_factory=list)
    forbidden: set[str] = field(default_factory=set)
    member_of: list[frozenset[str]] = field(default_factory=list)
    forbidden_aggs: set[str] = field(default_factory=set)
    in_tree: str | None = None

    def traits_ok(self, traits: frozenset[str]) -> bool:
        return all(s & traits for s in self.required) and not (self.forbidden & traits)

    def aggs_ok(self, aggs: frozenset[str]) -> bool:
        return all(s & aggs for s in self.member_of) and not (self.forbidden_aggs & aggs)

    def check_bounds(self, suffix: str = "") -> None:
        """Issue 9: 70 classes or thousands of member_of sets made a query
        SQLite refuses (a 503 that clients retry); now a 400 that says why."""
        check_count(f"resource classes in resources{suffix}", self.resources, MAX_CLASSES_PER_GROUP)
        check_count(f"member_of{suffix} sets", self.member_of, MAX_MEMBER_OF)
        check_lists(f"aggregates in member_of{suffix}", [*self.member_of, self.forbidden_aggs])
        check_lists(f"traits in required{suffix}", [self.required, self.forbidden])
        check_lists(f"traits in one any-of set of required{suffix}", self.required)

    def trait_names(self) -> set[str]:
        names = set(self.forbidden)
        for s in self.required:
            names |= s
        return names


def check_traits_exist(req: Req, names: set[str], what: str) -> None:
    if not names:
        return
    known = set(req.store.list_traits())
    missing = sorted(names - known)
    if missing:
        raise bad_request(f"{what}No such trait(s): {', '.join(missing)}.")


def check_classes_exist(req: Req, names: set[str], what: str) -> None:
    known = {rc.name for rc in req.store.list_resource_classes()}
    for name in sorted(names):
        if name not in known:
            raise bad_request(f"{what}No such resource class {name}.")
