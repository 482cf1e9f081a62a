"""What only the Cassandra backend has: URL options, driver-error translation,
CAS writes whose outcome is unknown, claim TTLs and the candidate index."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from cassandra import OperationTimedOut, WriteTimeout, WriteType
from cassandra.query import BatchStatement

from claimant.model import (
    ClaimStatus,
    InvalidInput,
    Inventory,
    Provider,
    RequestGroup,
    StoreUnavailable,
    new_uuid,
)
from claimant.store import CandidateQuery, ClaimSpec, open_store
from claimant.store.cassandra import CassandraStore, OutcomeUnknown

# -- URL options and errors (no node needed) ----------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("cassandra://h/ks?bogus=1", id="unknown-option"),
        pytest.param("cassandra://h/ks?rf=x", id="rf-not-a-number"),
        pytest.param("cassandra://h/ks?rf=0", id="rf-zero"),
        pytest.param("cassandra://h/ks?serial=QUORUM", id="serial-not-serial"),
        pytest.param("cassandra://h/ks?consistency=MOST", id="unknown-consistency"),
        pytest.param("cassandra://h/bad-name", id="keyspace-with-dash"),
        pytest.param("cassandra://h/ks?port=70000", id="port-out-of-range"),
        # dc is pasted into CREATE KEYSPACE's replication map: never a quote.
        pytest.param("cassandra://h/ks?dc=x':1,'y", id="dc-with-quote"),
        pytest.param("cassandra://h/ks?dc=DC%201", id="dc-with-space"),
        pytest.param("cassandra://h/k%C3%A9s", id="keyspace-not-ascii"),
    ],
)
def test_bad_url_is_invalid_input(url: str) -> None:
    with pytest.raises(InvalidInput) as err:
        open_store(url)
    assert err.value.code == "invalid_input"


@pytest.mark.parametrize(
    ("url", "serial", "consistency"),
    [
        pytest.param("cassandra://h/ks", "SERIAL", "QUORUM", id="defaults"),
        # SERIAL whatever dc says (issue 12: one Paxos group per partition).
        pytest.param("cassandra://h/ks?dc=DC1", "SERIAL", "LOCAL_QUORUM", id="local-dc"),
        pytest.param(
            "cassandra://h/ks?dc=us-east-1.a_b", "SERIAL", "LOCAL_QUORUM", id="dc-punctuated"
        ),
        pytest.param(
            "cassandra://h/ks?serial=local_serial&consistency=ONE",
            "LOCAL_SERIAL",
            "ONE",
            id="explicit",
        ),
    ],
)
def test_url_options_pick_consistency(url: str, serial: str, consistency: str) -> None:
    from cassandra import ConsistencyLevel

    st = open_store(url)
    assert isinstance(st, CassandraStore)
    assert ConsistencyLevel.value_to_name[st.serial] == serial
    assert ConsistencyLevel.value_to_name[st.consistency] == consistency


def test_unreachable_cluster_is_store_unavailable() -> None:
    # Nothing listens on port 9 of 127.0.0.9: the driver's NoHostAvailable
    # must come out as claimant's StoreUnavailable.
    st = open_store("cassandra://127.0.0.9/claimant?port=9&timeout=2")
    with pytest.raises(StoreUnavailable) as err:
        st.get_provider(new_uuid())
    assert err.value.code == "store_unavailable"
    st.close()


# -- helpers --------------------------------------------------------------------------


def provider(st: CassandraStore, vcpu: int = 4) -> Provider:
    return st.create_provider(
        Provider(
            uuid=new_uuid(),
            name=f"p-{new_uuid()[:8]}",
            inventories={"VCPU": Inventory("VCPU", vcpu)},
        )
    )


def claim(st: CassandraStore, p: Provider, n: int = 1, ttl: float = 300.0) -> Any:
    return st.claim(
        ClaimSpec(
            provider_uuid=p.uuid,
            expected_generation=st.get_provider(p.uuid).generation,
            amounts={"VCPU": n},
            consumer_uuid=new_uuid(),
            ttl=ttl,
        )
    )


def used(st: CassandraStore, uuid: str) -> int:
    return st.get_usage(uuid).usages["VCPU"].used


def index_row(st: CassandraStore, uuid: str) -> Any:
    rows = st._run(
        "SELECT free, free_base, holds_until FROM providers WHERE provider_uuid = ? AND ckey = ?",
        [uuid, "i:VCPU"],
    )
    return rows[0]


class Faults:
    """Breaks the next conditional batch the way a lost Paxos reply does."""

    def __init__(self, st: CassandraStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.session = st._use_keyspace()
        self.real: Callable[..., Any] = self.session.execute
        self.batch_mode: str | None = None
        self.fail_reads = False
        monkeypatch.setattr(self.session, "execute", self.execute)

    def execute(self, stmt: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(stmt, BatchStatement) and self.batch_mode is not None:
            mode, self.batch_mode = self.batch_mode, None
            if mode == "applied":
                self.real(stmt, *args, **kwargs)
            raise WriteTimeout("injected: CAS reply lost", write_type=WriteType.CAS)
        if self.fail_reads and not isinstance(stmt, BatchStatement):
            raise OperationTimedOut("injected: read timed out")
        return self.real(stmt, *args, **kwargs)


# -- unknown outcomes ------------------------------------------------------------------


@pytest.mark.cassandra
@pytest.mark.parametrize("mode", ["applied", "not-applied"])
def test_claim_with_lost_reply_is_resolved_once(
    cstore: CassandraStore, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    p = provider(cstore, vcpu=4)
    faults = Faults(cstore, monkeypatch)
    before = cstore.stats["unknown"]
    faults.batch_mode = mode

    c = claim(cstore, p, 3)

    assert cstore.stats["unknown"] == before + 1
    # Exactly one claim, whichever way the lost write went: never two, never none.
    claims = cstore.list_claims(provider_uuid=p.uuid)
    assert [x.uuid for x in claims] == [c.uuid]
    assert used(cstore, p.uuid) == 3
    assert cstore.get_provider(p.uuid).generation == 1
    assert cstore.get_claim(c.uuid).status == ClaimStatus.CLAIMED


@pytest.mark.cassandra
def test_lost_reply_and_failed_reread_is_outcome_unknown(
    cstore: CassandraStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = provider(cstore, vcpu=4)
    cstore.get_provider(p.uuid)
    faults = Faults(cstore, monkeypatch)
    faults.batch_mode = "not-applied"
    faults.fail_reads = True
    with pytest.raises(StoreUnavailable) as err:
        claim_direct(cstore, p)
    assert isinstance(err.value, OutcomeUnknown)
    faults.fail_reads = False
    assert cstore.list_claims(provider_uuid=p.uuid) == []
    assert used(cstore, p.uuid) == 0


def claim_direct(st: CassandraStore, p: Provider) -> Any:
    # The generation the store already saw: the claim goes straight to the CAS.
    return st.claim(
        ClaimSpec(
            provider_uuid=p.uuid,
            expected_generation=p.generation,
            amounts={"VCPU": 1},
            consumer_uuid=new_uuid(),
        )
    )


@pytest.mark.cassandra
@pytest.mark.parametrize("applied", [True, False], ids=["row-there", "row-absent"])
def test_resolve_reads_the_claim_row(cstore: CassandraStore, applied: bool) -> None:
    p = provider(cstore)
    c = claim(cstore, p) if applied else None
    state = cstore._read_state(p.uuid, serial=True)
    key = "l:" + (c.uuid if c else new_uuid())
    assert cstore._resolve(state, key) is applied


@pytest.mark.cassandra
def test_resolve_by_version_for_other_writes(cstore: CassandraStore) -> None:
    p = provider(cstore)
    written = cstore._read_state(p.uuid, serial=True)
    assert cstore._resolve(written, None) is True
    # A version that was never written: not applied, the partition is elsewhere.
    from dataclasses import replace

    ghost = replace(written, version=new_uuid())
    with pytest.raises(OutcomeUnknown):
        cstore._resolve(ghost, None)


# -- claim expiry (TTL) and the candidate index -----------------------------------------


@pytest.mark.cassandra
def test_claim_row_has_a_ttl_and_an_allocation_has_none(cstore: CassandraStore) -> None:
    p = provider(cstore)
    c = claim(cstore, p, ttl=120)
    key = ["l:" + c.uuid]

    def ttl() -> Any:
        return cstore._run(
            "SELECT TTL(status) AS t FROM providers WHERE provider_uuid = ? AND ckey = ?",
            [p.uuid, *key],
        )[0].t

    assert 120 < ttl() <= 120 + 61
    cstore.confirm_claim(c.uuid)
    assert ttl() is None


@pytest.mark.cassandra
def test_expired_claim_frees_capacity_before_and_after_the_sweep(
    cstore: CassandraStore, clock: Any
) -> None:
    p = provider(cstore, vcpu=4)
    claim(cstore, p, 4, ttl=60)
    group = RequestGroup(resources={"VCPU": 2})
    assert cstore.find_candidates(CandidateQuery(group=group)) == []
    # The index is conservative: it still counts the claim it was written with.
    assert index_row(cstore, p.uuid).free == 0

    clock.advance(61)

    found = cstore.find_candidates(CandidateQuery(group=group))
    assert [u.provider.uuid for u in found] == [p.uuid]
    assert found[0].usages["VCPU"].used == 0
    assert used(cstore, p.uuid) == 0
    assert cstore.list_claims(provider_uuid=p.uuid) == []
    generation = cstore.get_provider(p.uuid).generation

    assert cstore.expire_claims() == 1
    row = index_row(cstore, p.uuid)
    assert (row.free, row.free_base, row.holds_until) == (4, 4, None)
    assert cstore.get_provider(p.uuid).generation == generation
    assert cstore.expire_claims() == 0


@pytest.mark.cassandra
def test_index_finds_the_one_provider_with_room_among_full_ones(cstore: CassandraStore) -> None:
    full = [provider(cstore, vcpu=2) for _ in range(8)]
    for p in full:
        claim(cstore, p, 2)
    roomy = provider(cstore, vcpu=2)
    found = cstore.find_candidates(
        CandidateQuery(group=RequestGroup(resources={"VCPU": 1}), limit=1)
    )
    assert [u.provider.uuid for u in found] == [roomy.uuid]


@pytest.mark.cassandra
def test_claim_from_a_stale_snapshot_is_a_conflict(cstore: CassandraStore) -> None:
    p = provider(cstore, vcpu=4)
    other = open_store(cstore.url)
    try:
        other.clock = cstore.clock
        seen = other.get_provider(p.uuid)
        claim(cstore, p, 1)
        from claimant.model import GenerationConflict

        with pytest.raises(GenerationConflict):
            other.claim(
                ClaimSpec(
                    provider_uuid=p.uuid,
                    expected_generation=seen.generation,
                    amounts={"VCPU": 1},
                    consumer_uuid=new_uuid(),
                )
            )
    finally:
        other.close()
    assert used(cstore, p.uuid) == 1
