"""Scheduler configuration, validated when it is built."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from claimant.model.errors import InvalidInput

DEFAULT_FILTERS: tuple[str, ...] = (
    "AffinityFilter",
    "AntiAffinityFilter",
    "SameHostFilter",
    "DifferentHostFilter",
)

# Nova's defaults: every resource weigher at 1.0, build failures at 1e6 so a
# host that keeps failing sinks below any difference in free capacity.
DEFAULT_WEIGHERS: dict[str, float] = {
    "RAMWeigher": 1.0,
    "CPUWeigher": 1.0,
    "DiskWeigher": 1.0,
    "ServerGroupSoftAffinityWeigher": 1.0,
    "ServerGroupSoftAntiAffinityWeigher": 1.0,
    "BuildFailureWeigher": 1000000.0,
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(slots=True)
class SchedulerConfig:
    """How a ``Scheduler`` chooses. Plugin names are checked against the
    registries when the ``Scheduler`` is built; values here are checked now."""

    # Measured on 10k providers, 8 threads (bench/bench_scheduler.py): k=3 and
    # 50 candidates cost 3.5 ms CPU per placement with 39% lost claims; k=5 and
    # 20 cost 2.0 ms with 20%. Loading candidates is most of a placement's
    # work, and weighing 20 of the emptiest hosts picks as well as 50.
    host_subset_size: int = 5
    candidate_limit: int = 20
    max_claim_retries: int = 5
    claim_ttl: float = 300.0
    filters: list[str] = field(default_factory=lambda: list(DEFAULT_FILTERS))
    weighers: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHERS))
    heartbeat_timeout: float | None = 60.0
    # Plugin name -> keyword arguments for its constructor.
    options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, value, low, high in (
            ("host_subset_size", self.host_subset_size, 1, 1000),
            ("candidate_limit", self.candidate_limit, 1, 10000),
            ("max_claim_retries", self.max_claim_retries, 0, 1000),
        ):
            if not _is_int(value) or not low <= value <= high:
                raise InvalidInput(
                    f"scheduler {name} must be an integer between {low} and {high}, got {value!r}",
                    field=name,
                )
        if not _is_number(self.claim_ttl) or self.claim_ttl <= 0:
            raise InvalidInput(
                f"scheduler claim_ttl must be a positive number of seconds, got {self.claim_ttl!r}",
                field="claim_ttl",
            )
        if self.heartbeat_timeout is not None and (
            not _is_number(self.heartbeat_timeout) or self.heartbeat_timeout <= 0
        ):
            raise InvalidInput(
                "scheduler heartbeat_timeout must be a positive number of seconds or None, "
                f"got {self.heartbeat_timeout!r}",
                field="heartbeat_timeout",
            )
        if not isinstance(self.filters, list | tuple) or not all(
            isinstance(n, str) for n in self.filters
        ):
            raise InvalidInput("scheduler filters must be a list of filter names", field="filters")
        if len(set(self.filters)) != len(self.filters):
            raise InvalidInput("scheduler filters lists a filter twice", field="filters")
        self.filters = list(self.filters)
        if not isinstance(self.weighers, dict):
            raise InvalidInput(
                "scheduler weighers must map weigher names to multipliers", field="weighers"
            )
        for name, mult in self.weighers.items():
            if not isinstance(name, str) or not _is_number(mult):
                raise InvalidInput(
                    f"scheduler weigher {name!r}: multiplier must be a finite number, got {mult!r}",
                    field="weighers",
                )
        if not isinstance(self.options, dict) or not all(
            isinstance(k, str) and isinstance(v, dict) for k, v in self.options.items()
        ):
            raise InvalidInput(
                "scheduler options must map plugin names to keyword arguments", field="options"
            )
