"""Resource classes (what is counted) and inventories (how much a provider has)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from claimant.model.errors import InvalidInput
from claimant.model.names import default_discrete

# Placement's own bound on integer fields; kept so both APIs agree.
MAX_INT = 2**31 - 1


@dataclass(frozen=True, slots=True)
class ResourceClass:
    """A kind of countable thing. ``discrete`` classes are whole units that are
    never overcommitted (a bare-metal machine, a GPU); the rest are pools."""

    name: str
    discrete: bool = False
    standard: bool = False

    @classmethod
    def standard_class(cls, name: str) -> ResourceClass:
        return cls(name=name, discrete=default_discrete(name), standard=True)


def standard_resource_classes() -> list[ResourceClass]:
    from claimant.model.names import STANDARD_RESOURCE_CLASSES

    return [ResourceClass.standard_class(n) for n in STANDARD_RESOURCE_CLASSES]


@dataclass(frozen=True, slots=True)
class Inventory:
    """What a provider has of one class. ``capacity`` is what may be claimed."""

    resource_class: str
    total: int
    reserved: int = 0
    min_unit: int = 1
    max_unit: int = MAX_INT
    step_size: int = 1
    allocation_ratio: float = 1.0

    @property
    def capacity(self) -> int:
        # floor, as placement does: a ratio never creates a fractional unit.
        return max(0, math.floor((self.total - self.reserved) * self.allocation_ratio))

    def validate(self, *, discrete: bool = False) -> Inventory:
        rc = self.resource_class
        for name, value, low in (
            ("total", self.total, 1),
            ("reserved", self.reserved, 0),
            ("min_unit", self.min_unit, 1),
            ("max_unit", self.max_unit, 1),
            ("step_size", self.step_size, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidInput(f"{rc}: {name} must be an integer", field=name)
            if value < low or value > MAX_INT:
                raise InvalidInput(
                    f"{rc}: {name} must be between {low} and {MAX_INT}, got {value}", field=name
                )
        if not isinstance(self.allocation_ratio, int | float) or isinstance(
            self.allocation_ratio, bool
        ):
            raise InvalidInput(f"{rc}: allocation_ratio must be a number", field="allocation_ratio")
        if not (0 < self.allocation_ratio <= 3.40282e38):
            raise InvalidInput(
                f"{rc}: allocation_ratio must be greater than 0", field="allocation_ratio"
            )
        if self.reserved > self.total:
            raise InvalidInput(
                f"{rc}: reserved ({self.reserved}) exceeds total ({self.total})", field="reserved"
            )
        if self.min_unit > self.max_unit:
            raise InvalidInput(
                f"{rc}: min_unit ({self.min_unit}) exceeds max_unit ({self.max_unit})",
                field="min_unit",
            )
        if discrete and self.allocation_ratio != 1.0:
            raise InvalidInput(
                f"{rc} is a discrete class: whole units are never overcommitted, "
                f"so allocation_ratio must be 1.0",
                field="allocation_ratio",
            )
        return self

    def amount_problems(self, amount: int) -> list[str]:
        """Why ``amount`` can never be taken from this inventory, whatever is free."""
        problems = []
        if amount < self.min_unit:
            problems.append(f"{self.resource_class}: {amount} is below min_unit {self.min_unit}")
        if amount > self.max_unit:
            problems.append(f"{self.resource_class}: {amount} is above max_unit {self.max_unit}")
        if amount % self.step_size:
            problems.append(
                f"{self.resource_class}: {amount} is not a multiple of step_size {self.step_size}"
            )
        return problems


@dataclass(frozen=True, slots=True)
class Usage:
    """Capacity, and what claims plus allocations hold, of one class on one provider.
    ``used`` is positive; in the ledger the same amounts are stored negative."""

    resource_class: str
    capacity: int
    used: int

    @property
    def free(self) -> int:
        return self.capacity - self.used


@dataclass(slots=True)
class FitReport:
    """Why a set of amounts does or does not fit a provider, with the numbers
    (operators debug schedulers by reading these)."""

    reasons: list[str] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        return not self.reasons


def check_fit(
    inventories: dict[str, Inventory], used: dict[str, int], amounts: dict[str, int]
) -> FitReport:
    report = FitReport()
    for rc, amount in sorted(amounts.items()):
        inv = inventories.get(rc)
        if inv is None:
            report.reasons.append(f"{rc}: provider has no inventory of this class")
            continue
        report.reasons.extend(inv.amount_problems(amount))
        have = used.get(rc, 0)
        if have + amount > inv.capacity:
            report.reasons.append(
                f"{rc}: requested {amount}, used {have}, capacity {inv.capacity} "
                f"(free {inv.capacity - have})"
            )
    return report


def validate_amounts(amounts: dict[str, int], *, allow_zero: bool = False) -> dict[str, int]:
    if not isinstance(amounts, dict):
        raise InvalidInput("resources must be a mapping of resource class to amount")
    for rc, amount in amounts.items():
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise InvalidInput(f"{rc}: amount must be an integer, got {amount!r}", field=rc)
        low = 0 if allow_zero else 1
        if amount < low or amount > MAX_INT:
            raise InvalidInput(
                f"{rc}: amount must be between {low} and {MAX_INT}, got {amount}", field=rc
            )
    return amounts
