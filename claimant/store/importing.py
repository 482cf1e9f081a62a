"""What both backends' bulk import (``import_providers``,
``import_allocations``) share."""

from __future__ import annotations

import uuid as uuidlib
from typing import Final

from claimant.model import InvalidInput

# Ledger entries of imported allocations get derived uuids, so that a resumed
# import recognises what it already wrote (the Cassandra backend needs that:
# it writes a consumer's entries before its record; SQLite uses the same ids).
_IMPORT_NS: Final = uuidlib.UUID("0b8a3c52-9a8e-4f0e-8d4f-6a1c2e7d9b31")


def imported_entry_uuid(provider_uuid: str, consumer_uuid: str) -> str:
    return str(uuidlib.uuid5(_IMPORT_NS, f"{provider_uuid}/{consumer_uuid}"))


def check_amounts(consumer_uuid: str, provider_uuid: str, amounts: dict[str, int]) -> None:
    for rc, amount in amounts.items():
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
            raise InvalidInput(
                f"consumer {consumer_uuid} on provider {provider_uuid}: {rc} amount must be a"
                f" positive integer, got {amount!r}",
                field=rc,
            )
