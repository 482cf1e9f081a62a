"""``claimant import placement``: copy a Placement database into a claimant
store. Order: custom resource classes and traits, providers (parents before
children, in batches), then consumers with their allocations (in batches).
Every store write skips what is already there, so an interrupted import is
resumed by running it again with ``resume=True``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Final

from claimant.importer.source import Counts, PlacementSource
from claimant.model import AlreadyExists, ClaimantError, ResourceClass
from claimant.model.names import default_discrete
from claimant.store import Store

PROVIDER_BATCH: Final = 500
CONSUMER_BATCH: Final = 1000

# (phase, items done in this step); phases: "providers", "consumers".
Progress = Callable[[str, int], None]


class ImportFailed(Exception):
    """A write to the target failed part-way; what was written stays, and
    running the import again with ``resume=True`` carries on."""


class ImportRefused(Exception):
    """The target store is not empty, or the source holds names this claimant
    cannot take; nothing was written."""


@dataclass(slots=True)
class ImportReport:
    counts: Counts
    resource_classes: int = 0
    traits: int = 0
    providers: int = 0
    consumers: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def providers_per_second(self) -> float:
        took = self.seconds.get("providers", 0.0)
        return self.counts.providers / took if took else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "source": {
                "providers": self.counts.providers,
                "inventories": self.counts.inventories,
                "consumers": self.counts.consumers,
                "allocations": self.counts.allocations,
                "custom_resource_classes": self.counts.resource_classes,
                "custom_traits": self.counts.traits,
            },
            "written": {
                "custom_resource_classes": self.resource_classes,
                "custom_traits": self.traits,
                "providers": self.providers,
                "consumers": self.consumers,
            },
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "providers_per_second": round(self.providers_per_second, 1),
        }


def check_target(store: Store, *, resume: bool) -> int:
    """How many providers the target holds; refuses a non-empty one unless
    the import is being resumed."""
    held = len(store.list_providers())
    if held and not resume:
        raise ImportRefused(
            f"the target store already holds {held} provider(s): pass --resume to continue"
            " an interrupted import into it, or --force to erase it first"
        )
    return held


def import_placement(
    source: PlacementSource,
    store: Store,
    *,
    resume: bool = False,
    provider_batch: int = PROVIDER_BATCH,
    consumer_batch: int = CONSUMER_BATCH,
    progress: Progress | None = None,
    counts: Counts | None = None,
) -> ImportReport:
    tick = progress or (lambda phase, n: None)
    check_target(store, resume=resume)
    unknown = source.unknown_names()
    if unknown:
        raise ImportRefused(
            "the source uses standard names this claimant does not know (upgrade"
            f" os-resource-classes / os-traits first): {', '.join(unknown)}"
        )
    report = ImportReport(counts=counts or source.counts())

    start = time.monotonic()
    for name in source.custom_resource_classes():
        try:
            store.create_resource_class(ResourceClass(name, discrete=default_discrete(name)))
            report.resource_classes += 1
        except AlreadyExists:
            pass
    for name in source.custom_traits():
        report.traits += int(store.create_trait(name))
    report.seconds["catalogue"] = time.monotonic() - start

    start = time.monotonic()
    for providers in source.provider_batches(provider_batch):
        report.providers += _write(partial(store.import_providers, providers), "providers")
        tick("providers", len(providers))
    report.seconds["providers"] = time.monotonic() - start

    start = time.monotonic()
    for consumers in source.consumer_batches(consumer_batch):
        report.consumers += _write(partial(store.import_allocations, consumers), "consumers")
        tick("consumers", len(consumers))
    report.seconds["consumers"] = time.monotonic() - start
    return report


def _write(call: Callable[[], int], what: str) -> int:
    try:
        return call()
    except ClaimantError as exc:
        # Name the phase: "provider X not found" alone reads like a bug in the tool.
        raise ImportFailed(f"importing {what} failed: {exc.code}: {exc.message}") from exc
