from __future__ import annotations

from claimant.api.schemas.common import Body, Generation, UuidStr


class ProviderAggregatesPut(Body):
    generation: Generation
    aggregates: list[UuidStr]
