"""Issue 10: candidate_trees reads each tree in one read (schema V9's index
on the static ``root_uuid``), not a level at a time through
``provider_children``: before, a root with 8 children cost 1 + 1 + 8
statements over three round trips; now one per root, in one round."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from claimant.model import Inventory, Provider, new_uuid
from claimant.model.resources import ResourceClass
from claimant.store import TreeQuery
from claimant.store.cassandra import CassandraStore
from claimant.store.cassandra import queries as q
from claimant.store.cassandra.schema import TREE_INDEX, TREE_INDEX_SINCE

pytestmark = pytest.mark.cassandra


def _provider(st: CassandraStore, inventories: dict[str, int], parent: str | None) -> Provider:
    return st.create_provider(
        Provider(
            uuid=new_uuid(),
            name=f"t-{new_uuid()[:8]}",
            parent_uuid=parent,
            inventories={rc: Inventory(rc, n) for rc, n in inventories.items()},
        )
    )


@pytest.fixture
def statements(cstore: CassandraStore) -> Iterator[list[str]]:
    """The CQL of every statement the store sends, in order."""
    session = cstore._use_keyspace()
    sent: list[str] = []
    real = session.execute_async

    def counting(query: Any, *args: Any, **kw: Any) -> Any:
        prepared = getattr(query, "prepared_statement", None)
        sent.append(prepared.query_string if prepared is not None else str(query))
        return real(query, *args, **kw)

    session.execute_async = counting  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        del session.execute_async


def _tree(st: CassandraStore) -> tuple[Provider, list[Provider]]:
    """A compute, a NUMA node without inventory, and 8 VF children under it."""
    st.create_resource_class(ResourceClass("CUSTOM_VF"))
    root = _provider(st, {"VCPU": 8}, None)
    numa = _provider(st, {}, root.uuid)
    pfs = [_provider(st, {"CUSTOM_VF": 1}, numa.uuid) for _ in range(8)]
    return root, [numa, *pfs]


def test_one_read_per_tree_whatever_its_depth(
    cstore: CassandraStore, statements: list[str]
) -> None:
    root, members = _tree(cstore)
    statements.clear()
    page = cstore.candidate_trees(TreeQuery({"VCPU": 1, "CUSTOM_VF": 1}))
    assert page.roots == [root.uuid]
    assert {pu.provider.uuid for pu in page.providers} == {root.uuid} | {m.uuid for m in members}
    assert statements.count(q.TREE) == 1
    assert q.CHILDREN not in statements
    assert q.READ_STATE not in statements  # the NUMA node came with its tree


def test_a_subtree_moved_to_another_root_is_read_with_its_new_tree(
    cstore: CassandraStore,
) -> None:
    _, members = _tree(cstore)
    numa = members[0]
    other = _provider(cstore, {"VCPU": 8}, None)
    cstore.update_provider(numa.uuid, None, parent_uuid=other.uuid)
    page = cstore.candidate_trees(TreeQuery({"VCPU": 1, "CUSTOM_VF": 1}))
    assert page.roots == [other.uuid]
    by_uuid = {pu.provider.uuid: pu.provider for pu in page.providers}
    assert set(by_uuid) == {other.uuid} | {m.uuid for m in members}
    assert all(by_uuid[m.uuid].root_uuid == other.uuid for m in members)


def test_a_keyspace_without_the_index_is_walked_until_migrated(
    cstore: CassandraStore, statements: list[str]
) -> None:
    root, members = _tree(cstore)
    # As a keyspace made before V9 would be.
    cstore._ddl(f"DROP INDEX IF EXISTS {cstore.keyspace}.{TREE_INDEX}")
    cstore._run(q.SET_META, ["schema_version", str(TREE_INDEX_SINCE - 1)])
    try:
        assert not cstore._has_tree_index()
        statements.clear()
        page = cstore.candidate_trees(TreeQuery({"VCPU": 1, "CUSTOM_VF": 1}))
        assert {pu.provider.uuid for pu in page.providers} == {root.uuid} | {
            m.uuid for m in members
        }
        assert q.TREE not in statements
    finally:
        cstore.migrate()
    assert cstore._has_tree_index()
