"""The checker on hand-made histories and snapshots (issue 8: the harness must
detect a lost ack, an over-capacity, a mix of two writes, an instance without
allocation, a leaked claim ...). Each case names what it pins."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from claimant.torture import checker
from claimant.torture.checker import Report, check_final, check_sample, possible_finals
from claimant.torture.history import History, Op, Outcome
from claimant.torture.snapshot import Entry, Instance, ProviderState, RequestState, Snapshot

P1 = "11111111-1111-1111-1111-111111111111"
P2 = "22222222-2222-2222-2222-222222222222"
P3 = "33333333-3333-3333-3333-333333333333"
C1 = "c1c1c1c1-0000-0000-0000-000000000001"
C2 = "c2c2c2c2-0000-0000-0000-000000000002"
R1 = "aaaaaaaa-0000-0000-0000-000000000001"


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@dataclass
class Builder:
    """A history whose clock the test moves by hand."""

    clock: Clock = field(default_factory=Clock)
    history: History = field(init=False)

    def __post_init__(self) -> None:
        self.history = History(clock=self.clock)

    def op(
        self, f: str, value: dict[str, Any], outcome: Outcome | None, at: float, took: float = 0.1
    ) -> Op:
        self.clock.t = at
        op = self.history.invoke(checker.NEMESIS if f == checker.NEMESIS else "c0", f, value)
        if outcome is not None:
            self.clock.t = at + took
            self.history.complete(op, outcome)
        return op

    def put(
        self, consumer: str, alloc: dict[str, dict[str, int]], outcome: Outcome, at: float
    ) -> Op:
        return self.op(checker.ALLOC_PUT, {"consumer": consumer, "allocations": alloc}, outcome, at)

    def ops(self) -> list[Op]:
        return self.history.ops()


def entry(uuid: str, provider: str, consumer: str, vcpu: int, *, confirmed: bool = True,
          request: str | None = None) -> Entry:  # fmt: skip
    return Entry(uuid, provider, consumer, {"VCPU": vcpu}, confirmed, request)


def snap(
    entries: list[Entry], used: dict[str, int] | None = None, cap: int = 8, **kw: Any
) -> Snapshot:
    """Providers P1..P3 with ``cap`` VCPU; usage = the entries' sum unless given."""
    sums: dict[str, int] = {}
    for e in entries:
        sums[e.provider_uuid] = sums.get(e.provider_uuid, 0) + e.amounts["VCPU"]
    used = {**sums, **(used or {})}
    providers = {
        p: ProviderState(p, f"cn-{p[0]}", {"VCPU": cap}, {"VCPU": used.get(p, 0)})
        for p in (P1, P2, P3)
    }
    return Snapshot(at=1000.0, providers=providers, entries=entries, instances=[], **kw)


def kinds(report: Report) -> list[str]:
    return sorted(v.kind for v in report.violations)


def final(ops: list[Op], s: Snapshot, *, after_ttl: bool = True) -> Report:
    report = Report()
    check_final(ops, s, report, after_ttl=after_ttl)
    return report


# ---- allocation writes ---------------------------------------------------------

MOVE_A = {P1: {"VCPU": 1}, P2: {"VCPU": 1}}
MOVE_B = {P2: {"VCPU": 2}, P3: {"VCPU": 2}}


def _history(*steps: tuple[dict[str, dict[str, int]], Outcome, float]) -> list[Op]:
    b = Builder()
    for alloc, outcome, at in steps:
        b.put(C1, alloc, outcome, at)
    return b.ops()


ALLOCATION_CASES = [
    # (name, writes (alloc, outcome, time), entries held at the end, expected kinds)
    ("acked write present", [(MOVE_A, Outcome.OK, 1)],
     [entry("e1", P1, C1, 1), entry("e2", P2, C1, 1)], []),
    ("acked write lost: consumer holds nothing", [(MOVE_A, Outcome.OK, 1)], [], ["lost_write"]),
    ("later acked write wins over the earlier one",
     [(MOVE_A, Outcome.OK, 1), (MOVE_B, Outcome.OK, 2)],
     [entry("e1", P2, C1, 2), entry("e2", P3, C1, 2)], []),
    ("earlier value after a later acked write: lost",
     [(MOVE_A, Outcome.OK, 1), (MOVE_B, Outcome.OK, 2)],
     [entry("e1", P1, C1, 1), entry("e2", P2, C1, 1)], ["lost_write"]),
    ("a failed write changes nothing", [(MOVE_A, Outcome.OK, 1), (MOVE_B, Outcome.FAIL, 2)],
     [entry("e1", P1, C1, 1), entry("e2", P2, C1, 1)], []),
    ("a failed write that landed anyway is a lost write",
     [(MOVE_A, Outcome.OK, 1), (MOVE_B, Outcome.FAIL, 2)],
     [entry("e1", P2, C1, 2), entry("e2", P3, C1, 2)], ["lost_write"]),
    ("an unknown write may have landed", [(MOVE_A, Outcome.OK, 1), (MOVE_B, Outcome.INFO, 2)],
     [entry("e1", P2, C1, 2), entry("e2", P3, C1, 2)], []),
    ("an unknown write may not have landed", [(MOVE_A, Outcome.OK, 1), (MOVE_B, Outcome.INFO, 2)],
     [entry("e1", P1, C1, 1), entry("e2", P2, C1, 1)], []),
    ("acked delete resurrected", [(MOVE_A, Outcome.OK, 1), ({}, Outcome.OK, 2)],
     [entry("e1", P1, C1, 1), entry("e2", P2, C1, 1)], ["resurrected_delete"]),
    ("half of a write", [(MOVE_A, Outcome.OK, 1)], [entry("e1", P1, C1, 1)], ["mixed_writes"]),
    ("a mix of two writes", [(MOVE_A, Outcome.OK, 1), (MOVE_B, Outcome.OK, 2)],
     [entry("e1", P1, C1, 1), entry("e2", P3, C1, 2)], ["mixed_writes"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("writes", "entries", "expected"),
    [pytest.param(w, e, k, id=name) for name, w, e, k in ALLOCATION_CASES],
)
def test_allocation_writes(
    writes: list[tuple[dict[str, dict[str, int]], Outcome, float]],
    entries: list[Entry],
    expected: list[str],
) -> None:
    report = final(_history(*writes), snap(entries))
    assert kinds(report) == expected
    for v in report.violations:
        assert v.ops, "a violation carries the operations behind it"


def test_concurrent_acked_writes_may_end_either_way() -> None:
    b = Builder()
    b.op(checker.ALLOC_PUT, {"consumer": C1, "allocations": MOVE_A}, Outcome.OK, at=1, took=2)
    b.op(checker.ALLOC_PUT, {"consumer": C1, "allocations": MOVE_B}, Outcome.OK, at=2, took=2)
    finals = possible_finals(checker._writes_by_consumer(b.ops())[C1])
    assert MOVE_A in finals and MOVE_B in finals


def test_post_moves_several_consumers_at_once() -> None:
    b = Builder()
    b.op(checker.ALLOC_POST, {"writes": {C1: MOVE_A, C2: MOVE_B}}, Outcome.OK, at=1)
    held = [entry("e1", P1, C1, 1), entry("e2", P2, C1, 1)]  # C2's part is missing
    report = final(b.ops(), snap(held))
    assert kinds(report) == ["lost_write"]
    assert report.violations[0].subject == C2
    assert report.lost_acked == 1


# ---- capacity and usage -----------------------------------------------------------


def test_over_capacity_by_usage() -> None:
    report = Report()
    check_sample(snap([entry("e1", P1, C1, 4)], used={P1: 9}), report)
    assert kinds(report) == ["over_capacity"]
    assert report.over_capacity == 1


def test_over_capacity_by_entries() -> None:
    report = Report()
    check_sample(snap([entry("e1", P1, C1, 5), entry("e2", P1, C2, 5)], used={P1: 8}), report)
    assert kinds(report) == ["over_capacity"]


def test_usage_must_equal_live_entries() -> None:
    report = final([], snap([], used={P2: 3}))
    assert kinds(report) == ["usage_mismatch"]


def test_a_sample_does_not_repeat_a_known_violation() -> None:
    report = Report()
    s = snap([], used={P1: 9})
    check_sample(s, report)
    check_sample(s, report)
    assert report.over_capacity == 1


# ---- native claims, builds, requests --------------------------------------------


def test_lost_confirm_and_resurrected_release() -> None:
    b = Builder()
    b.op(checker.CONFIRM, {"claim": "k1", "request_uuid": R1}, Outcome.OK, at=1)
    b.op(checker.CONFIRM, {"claim": "k2", "request_uuid": R1}, Outcome.OK, at=1)
    b.op(checker.RELEASE, {"claim": "k2", "request_uuid": R1}, Outcome.OK, at=2)
    report = final(b.ops(), snap([entry("k2", P1, C1, 1, request=R1)]))
    assert kinds(report) == ["lost_confirm", "resurrected_release"]
    assert report.lost_acked == 2


def test_unknown_release_may_go_either_way() -> None:
    b = Builder()
    b.op(checker.CONFIRM, {"claim": "k1", "request_uuid": R1}, Outcome.OK, at=1)
    b.op(checker.RELEASE, {"claim": "k1", "request_uuid": R1}, Outcome.INFO, at=2)
    assert kinds(final(b.ops(), snap([entry("k1", P1, C1, 1, request=R1)]))) == []
    assert kinds(final(b.ops(), snap([]))) == []


def test_lost_build() -> None:
    b = Builder()
    op = b.op(checker.BUILD, {"request_uuid": R1, "consumer": C1}, None, at=1)
    b.history.ok(op, build_status="active", claims=["k1"])
    report = final(b.ops(), snap([], requests={R1: RequestState(R1, "active", ("k1",))}))
    assert "lost_build" in kinds(report)


def test_failed_request_holding_an_allocation() -> None:
    held = [entry("k1", P1, C1, 1, request=R1)]
    report = final([], snap(held, requests={R1: RequestState(R1, "failed", ())}))
    assert kinds(report) == ["request_mismatch"]


def test_entry_its_request_does_not_list() -> None:
    held = [entry("k9", P1, C1, 1, request=R1)]
    report = final([], snap(held, requests={R1: RequestState(R1, "scheduled", ("k1",))}))
    assert kinds(report) == ["request_mismatch"]


def test_leaked_claim_after_ttl() -> None:
    held = [entry("k1", P1, C1, 1, confirmed=False, request=R1)]
    assert kinds(final([], snap(held), after_ttl=True)) == ["leaked_after_ttl"]
    report = final([], snap(held), after_ttl=False)
    assert kinds(report) == []
    assert report.not_checked


# ---- what agents run --------------------------------------------------------------


def test_instance_without_allocation() -> None:
    s = snap([entry("k1", P1, C1, 1)])
    s.instances = [Instance("b1", P1, C1, {"VCPU": 1}), Instance("b2", P2, C2, {"VCPU": 1})]
    report = final([], s)
    assert kinds(report) == ["instance_without_allocation"]
    assert report.violations[0].subject == C2


def test_instance_using_more_than_its_allocation() -> None:
    s = snap([entry("k1", P1, C1, 1)])
    s.instances = [Instance("b1", P1, C1, {"VCPU": 2})]
    assert kinds(final([], s)) == ["instance_without_allocation"]


def test_one_consumer_running_on_two_hosts() -> None:
    s = snap([entry("k1", P1, C1, 1), entry("k2", P2, C1, 1)])
    s.instances = [Instance("b1", P1, C1, {"VCPU": 1}), Instance("b2", P2, C1, {"VCPU": 1})]
    assert kinds(final([], s)) == ["instance_twice"]


def test_instances_not_read_is_said_not_checked() -> None:
    s = snap([])
    s.instances = None
    s.instances_note = "not checked: agent has no /v1/instances"
    report = final([], s)
    assert "not checked: agent has no /v1/instances" in report.not_checked


def test_faults_during_a_violation_are_in_its_story() -> None:
    b = Builder()
    b.put(C1, MOVE_A, Outcome.OK, at=1)
    b.op(checker.NEMESIS, {"fault": "kill-service", "target": "service-1"}, Outcome.OK, at=1.05)
    b.op(checker.NEMESIS, {"fault": "kill-agent", "target": "b1"}, Outcome.OK, at=50)
    report = final(b.ops(), snap([]))
    story = report.violations[0].ops
    assert [o["f"] for o in story] == [checker.ALLOC_PUT, checker.NEMESIS]
    assert story[1]["value"]["fault"] == "kill-service"
