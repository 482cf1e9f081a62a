"""Home cells on a store of one cell (issue 12, docs/cells.md): every backend
names its one cell, homes providers there, and refuses any other by the
stable code ``unknown_cell``. The several-cell behaviour runs on real data
centres in tests/cluster/test_live_cells.py."""

from __future__ import annotations

import pytest

from claimant.model import InvalidInput, Provider, Request, new_uuid
from claimant.model.errors import UNKNOWN_CELL
from claimant.store import ProviderFilter, Store

from .builders import group


def test_one_cell_named_and_local(store: Store) -> None:
    cells = store.cells()
    assert len(cells) == 1 and cells[0]
    assert store.local_cell() == cells[0]


@pytest.mark.parametrize("asked", [None, "local", "own"], ids=["none", "local", "own-name"])
def test_provider_homed_in_the_store_cell(store: Store, asked: str | None) -> None:
    (own,) = store.cells()
    cell = own if asked == "own" else asked
    p = store.create_provider(
        Provider(uuid=new_uuid(), name=f"c-{new_uuid()[:8]}", cell=cell, inventories={})
    )
    assert p.cell == own
    assert store.get_provider(p.uuid).cell == own
    (listed,) = store.list_providers(ProviderFilter(uuid=p.uuid))
    assert listed.cell == own


def test_unknown_cell_is_refused_with_a_stable_code(store: Store) -> None:
    with pytest.raises(InvalidInput) as err:
        store.create_provider(
            Provider(uuid=new_uuid(), name="elsewhere", cell="no-such-dc", inventories={})
        )
    assert err.value.code == UNKNOWN_CELL
    assert err.value.details["cell"] == "no-such-dc"
    assert not store.list_providers(ProviderFilter(name="elsewhere"))


def test_request_keeps_its_cell(store: Store) -> None:
    (own,) = store.cells()
    r = store.create_request(
        Request(uuid=new_uuid(), groups=(group(resources={"VCPU": 1}),), cell=own)
    )
    assert store.get_request(r.uuid).cell == own
    assert r.groups[0].resources == {"VCPU": 1}
