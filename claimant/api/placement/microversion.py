"""Placement microversions: one list, a line per version, and the
``OpenStack-API-Version`` negotiation."""

from __future__ import annotations

import re
from dataclasses import dataclass

from claimant.api.placement.errors import PlacementError

SERVICE = "placement"
HEADER = "openstack-api-version"

VERSIONS: tuple[str, ...] = (
    "1.0",
    "1.1",  # provider aggregates
    "1.2",  # /resource_classes
    "1.3",  # member_of on GET /resource_providers
    "1.4",  # resources on GET /resource_providers
    "1.5",  # DELETE /resource_providers/{uuid}/inventories
    "1.6",  # /traits and provider traits
    "1.7",  # PUT /resource_classes/{name} is a bodiless create
    "1.8",  # project_id and user_id required in PUT /allocations
    "1.9",  # GET /usages
    "1.10",  # GET /allocation_candidates
    "1.11",  # 'allocations' link on providers
    "1.12",  # dict-style PUT /allocations; project/user in GET /allocations
    "1.13",  # POST /allocations for many consumers
    "1.14",  # parent and root provider uuids (nested providers)
    "1.15",  # last-modified and cache-control headers
    "1.16",  # limit on GET /allocation_candidates
    "1.17",  # required traits on GET /allocation_candidates
    "1.18",  # required traits on GET /resource_providers
    "1.19",  # generation and conflict detection on provider aggregates
    "1.20",  # POST /resource_providers returns the provider (200)
    "1.21",  # member_of=in: on GET /allocation_candidates
    "1.22",  # forbidden traits (!TRAIT)
    "1.23",  # error codes in error bodies
    "1.24",  # repeated member_of on GET /resource_providers
    "1.25",  # granular (numbered) request groups and group_policy
    "1.26",  # inventory reserved may equal total
    "1.27",  # every inventoried class in provider_summaries
    "1.28",  # consumer generations
    "1.29",  # nested providers in allocation candidates
    "1.30",  # POST /reshaper
    "1.31",  # in_tree on GET /allocation_candidates
    "1.32",  # forbidden aggregates (member_of=!)
    "1.33",  # request group suffixes are strings
    "1.34",  # mappings in allocation requests
    "1.35",  # root_required
    "1.36",  # same_subtree
    "1.37",  # re-parenting and un-parenting providers
    "1.38",  # consumer types
    "1.39",  # required=in: (any-of traits)
)

_VERSION_RE = re.compile(r"^([1-9]\d*|0)\.([1-9]\d*|0)$")


@dataclass(frozen=True, order=True, slots=True)
class Version:
    major: int
    minor: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    def at_least(self, minor: int) -> bool:
        # No tuples: a candidates response asks this once per provider and class.
        return self.major > 1 or (self.major == 1 and self.minor >= minor)

    @classmethod
    def parse(cls, text: str) -> Version:
        m = _VERSION_RE.match(text.strip())
        if not m:
            raise ValueError(text)
        return cls(int(m.group(1)), int(m.group(2)))


MIN_VERSION = Version.parse(VERSIONS[0])
MAX_VERSION = Version.parse(VERSIONS[-1])


def negotiate(header_values: list[str]) -> Version:
    """The version a request asks for (1.0 when it names none).

    Errors carry no version yet, so their bodies name the min and max."""
    wanted = None
    for value in header_values:
        for part in value.split(","):
            service, _, ver = part.strip().partition(" ")
            if service.lower() == SERVICE:
                wanted = ver.strip()
    if wanted is None:
        return MIN_VERSION
    if wanted == "latest":
        return MAX_VERSION
    try:
        version = Version.parse(wanted)
    except ValueError:
        raise PlacementError(400, f"invalid version string: {wanted}") from None
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise PlacementError(406, f"Unacceptable version header: {wanted}")
    return version
