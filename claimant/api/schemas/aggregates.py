from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StrictStr

from claimant.api.schemas.common import Body, Generation, UuidStr
from claimant.store.base import AggregateName

# An aggregate's uuid or its name (resolved by claimant.api.aggregates).
AggregateRef = Annotated[StrictStr, Field(min_length=1, max_length=255)]


class ProviderAggregatesPut(Body):
    generation: Generation
    aggregates: list[AggregateRef]


class AggregateCreate(Body):
    name: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    uuid: UuidStr | None = None


def aggregate_to_dict(a: AggregateName) -> dict[str, Any]:
    return {"name": a.name, "uuid": a.uuid, "created_at": a.created_at}
