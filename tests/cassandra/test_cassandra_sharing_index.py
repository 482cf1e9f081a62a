"""The index of sharing providers (issue 10): a keyspace made
before it gets it filled by ``migrate()``."""

from __future__ import annotations

import pytest

from claimant.model import Inventory, Provider, new_uuid
from claimant.store.cassandra import CassandraStore
from claimant.store.cassandra import queries as q
from claimant.store.cassandra.schema import SHARING_SINCE

pytestmark = pytest.mark.cassandra

SHARES = "MISC_SHARES_VIA_AGGREGATE"


def test_migrating_past_the_index_fills_it_with_the_providers_that_already_share(
    cstore: CassandraStore,
) -> None:
    ss = cstore.create_provider(
        Provider(
            uuid=new_uuid(),
            name=f"ss-{new_uuid()[:8]}",
            inventories={"DISK_GB": Inventory("DISK_GB", 1000)},
            traits=frozenset({SHARES}),
        )
    )
    assert cstore.has_sharing_providers()
    # As a keyspace made before the index would be: the table there but empty.
    cstore._run(q.DROP_SHARING, [ss.uuid])
    cstore._run(q.SET_META, ["schema_version", str(SHARING_SINCE - 1)])
    assert not cstore.has_sharing_providers()
    cstore.migrate()
    assert cstore.has_sharing_providers()
    assert not cstore.flat_cloud()
