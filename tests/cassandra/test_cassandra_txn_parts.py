"""The pure parts of a Cassandra transaction (no node needed): what a pending
part reserves, and that parts and plans survive their JSON form."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from claimant.model import Inventory
from claimant.store.cassandra.txn import (
    ConsumerPlan,
    Pending,
    Plan,
    entry_uuid,
    is_fast,
    new_txn_id,
    pending_from_text,
    pending_to_text,
    txn_cell,
)


@pytest.mark.parametrize(
    ("add", "old", "reserved"),
    [
        pytest.param({"c": {"VCPU": 2}}, {}, {"VCPU": 2}, id="new-consumer-holds-all-of-it"),
        pytest.param(
            {"c": {"VCPU": 2}}, {"e": ("c", {"VCPU": 3})}, {}, id="shrinking-holds-nothing-more"
        ),
        pytest.param(
            {"c": {"VCPU": 4, "MEMORY_MB": 512}},
            {"e": ("c", {"VCPU": 3})},
            {"VCPU": 1, "MEMORY_MB": 512},
            id="growing-holds-the-difference-per-class",
        ),
        pytest.param({}, {"e": ("c", {"VCPU": 3})}, {}, id="a-delete-holds-nothing-more"),
        pytest.param(
            {"c": {"VCPU": 2}, "d": {"VCPU": 1}},
            {"e": ("d", {"VCPU": 5})},
            {"VCPU": 2},
            id="one-consumer-never-offsets-another",
        ),
    ],
)
def test_a_pending_part_reserves_the_larger_of_old_and_new(
    add: dict[str, dict[str, int]],
    old: dict[str, tuple[str, dict[str, int]]],
    reserved: dict[str, int],
) -> None:
    part = Pending(
        txn="t",
        deadline=1.0,
        bump=True,
        add={c: ("p", "u", a) for c, a in add.items()},
        old=old,
    )
    assert part.reserve() == reserved


def test_parts_and_plans_survive_json() -> None:
    part = Pending(
        txn="t",
        deadline=12.5,
        bump=False,
        add={"c": ("p", "u", {"VCPU": 1})},
        old={"e": ("c", {"VCPU": 2})},
        inventories={"VCPU": Inventory("VCPU", 8, reserved=1, allocation_ratio=2.0)},
        consumers=("c", "d"),
    )
    assert pending_from_text(pending_to_text((part,))) == (part,)
    # A part written before parts named their consumers reads as naming none.
    older = json.dumps([part.to_json()[:6]])
    assert pending_from_text(older) == (replace(part, consumers=()),)
    assert pending_to_text(()) is None and pending_from_text(None) == ()
    plan = Plan(("p1", "p2"), {"c": ConsumerPlan("p", "u", None, 3, True)})
    assert Plan.from_text(plan.to_text()) == plan


def test_entry_uuids_are_derived() -> None:
    assert entry_uuid("t", "p", "c") == entry_uuid("t", "p", "c")
    assert entry_uuid("t", "p", "c") != entry_uuid("t", "p", "d")


@pytest.mark.parametrize(
    ("cell", "fast"),
    [
        pytest.param(None, False, id="global"),
        pytest.param(None, True, id="global-fast"),
        pytest.param("dc1", False, id="homed"),
        pytest.param("eu-west.2_b", True, id="homed-fast-dotted-cell"),
    ],
)
def test_a_transaction_id_carries_its_home_cell(cell: str | None, fast: bool) -> None:
    """Issue 12: whoever meets a transaction id knows where it is decided."""
    txn = new_txn_id(cell, fast=fast)
    assert txn_cell(txn) == cell
    assert is_fast(txn) == fast
    assert txn != new_txn_id(cell, fast=fast)


def test_ids_made_before_homes_are_global() -> None:
    assert txn_cell("6f1d7b1e-35a4-4b8e-9a51-2b8f0e3c7d10") is None
    assert txn_cell("fast-6f1d7b1e-35a4-4b8e-9a51-2b8f0e3c7d10") is None
