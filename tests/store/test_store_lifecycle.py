"""Schema and lifecycle: migrate, reset, and several store objects on one store."""

from __future__ import annotations

from claimant.model import Request, RequestGroup, ResourceClass, new_uuid
from claimant.store import Store, open_store

from .builders import make_provider, take, used


def test_migrate_is_idempotent(store: Store) -> None:
    version = store.migrate()
    assert isinstance(version, int)
    assert version >= 1
    assert store.migrate() == version


def test_reset_keeps_the_schema_and_standard_names(store: Store) -> None:
    store.create_resource_class(ResourceClass("CUSTOM_GONE"))
    p = make_provider(store, traits=("CUSTOM_GONE_TOO",))
    take(store, p)
    store.save_request(Request(uuid=new_uuid(), groups=(RequestGroup(resources={"VCPU": 1}),)))

    store.reset()

    assert store.list_providers() == []
    assert store.list_claims() == []
    assert store.list_requests() == []
    assert "CUSTOM_GONE_TOO" not in store.list_traits()
    assert "HW_CPU_X86_AVX2" in store.list_traits()
    names = {rc.name for rc in store.list_resource_classes()}
    assert "CUSTOM_GONE" not in names
    assert "VCPU" in names
    assert {"compute", "baremetal"} <= {t.name for t in store.list_resource_types()}
    # and it is usable straight away
    q = make_provider(store)
    take(store, q)
    assert used(store, q.uuid) == 1


def test_two_store_objects_share_one_store(store: Store) -> None:
    other = open_store(store.url)
    try:
        p = make_provider(store, vcpu=2)
        assert other.get_provider(p.uuid).name == p.name
        take(other, p.uuid, {"VCPU": 2})
        assert used(store, p.uuid) == 2
    finally:
        other.close()
