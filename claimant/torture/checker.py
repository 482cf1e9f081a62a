"""The checker: reads a history and a snapshot of the store, reports anomalies.

Each anomaly is a ``Violation`` with the operations behind it (every op of
the history that touched the same consumer, claim or request, and the faults
injected meanwhile), so a reader can replay what happened.

Rules (docs/torture.md has the argument for each):

- ``over_capacity``: a provider's usage, or the sum of its live ledger
  entries, exceeds its capacity for some class.
- ``usage_mismatch``: a provider's usage is not the sum of its live entries
  (checked only on a quiet store: the two are separate reads).
- ``lost_write`` / ``resurrected_delete``: a consumer's allocations are not
  what some possible order of the acknowledged and unknown writes leaves.
  A write can be the last one unless an acknowledged write began after it
  was acknowledged; unknown writes may land at any time, so they always can.
- ``mixed_writes``: a consumer holds parts of two different writes (or
  half of one).
- ``lost_confirm`` / ``resurrected_release``: an acknowledged confirm whose
  allocation is gone, or an acknowledged release whose claim is still live.
- ``lost_build`` / ``resurrected_destroy``: the same for conductor builds.
- ``leaked_after_ttl``: an unconfirmed claim still live after every claim
  the run made has passed its TTL.
- ``request_mismatch``: a request record that disagrees with the ledger
  (a failed or deleted request holding entries, an active one missing its
  allocations, an entry naming a request that does not list it).
- ``instance_without_allocation`` / ``instance_twice``: what agents run
  against the ledger.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from claimant.torture.history import Op, Outcome
from claimant.torture.snapshot import Entry, Snapshot

Alloc = dict[str, dict[str, int]]  # provider uuid -> class -> amount

LOST_KINDS = frozenset(
    {
        "lost_write",
        "resurrected_delete",
        "lost_confirm",
        "resurrected_release",
        "lost_build",
        "resurrected_destroy",
    }
)

# Operation names the workload records (workload.py).
ALLOC_PUT = "alloc-put"
ALLOC_POST = "alloc-post"
ALLOC_DELETE = "alloc-delete"
REQUEST = "request"
CONFIRM = "confirm"
RELEASE = "release"
BUILD = "build"
DESTROY = "destroy"
NEMESIS = "nemesis"


@dataclass
class Violation:
    kind: str
    subject: str
    message: str
    ops: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "message": self.message,
            "ops": self.ops,
        }


@dataclass
class Report:
    violations: list[Violation] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=list)

    def count(self, *kinds: str) -> int:
        return sum(1 for v in self.violations if v.kind in kinds)

    @property
    def lost_acked(self) -> int:
        return self.count(*LOST_KINDS)

    @property
    def over_capacity(self) -> int:
        return self.count("over_capacity")

    @property
    def leaked_after_ttl(self) -> int:
        return self.count("leaked_after_ttl")

    def add(self, v: Violation) -> None:
        # A sample and the final check may both see the same anomaly.
        if not any(
            (w.kind, w.subject, w.message) == (v.kind, v.subject, v.message)
            for w in self.violations
        ):
            self.violations.append(v)


# ---- helpers ------------------------------------------------------------------


def _amounts_by_provider(entries: Iterable[Entry]) -> Alloc:
    out: Alloc = {}
    for e in entries:
        row = out.setdefault(e.provider_uuid, {})
        for rc, n in e.amounts.items():
            row[rc] = row.get(rc, 0) + n
    return {p: {rc: n for rc, n in row.items() if n} for p, row in out.items()}


def _norm(alloc: Alloc) -> Alloc:
    out = {p: {rc: n for rc, n in row.items() if n} for p, row in alloc.items()}
    return {p: row for p, row in out.items() if row}


def _faults_during(ops: list[Op], start: float, end: float | None) -> list[Op]:
    return [
        o
        for o in ops
        if o.process == NEMESIS
        and o.invoked <= (end if end is not None else float("inf"))
        and (o.completed is None or o.completed >= start)
    ]


# A consumer moved all run long has thousands of ops; its end state is
# decided by the last few, so a violation shows those.
STORY_OPS = 40


def _story(all_ops: list[Op], mine: list[Op]) -> list[dict[str, Any]]:
    """The last ops behind a violation, with the faults that overlapped them."""
    mine = sorted(mine, key=lambda o: o.index)[-STORY_OPS:]
    if not mine:
        return []
    start = min(o.invoked for o in mine)
    ends = [o.completed for o in mine]
    end = None if any(e is None for e in ends) else max(e for e in ends if e is not None)
    chosen = {o.index: o for o in mine}
    for o in _faults_during(all_ops, start, end):
        chosen[o.index] = o
    return [chosen[i].to_dict() for i in sorted(chosen)]


# ---- the checks -----------------------------------------------------------------


def check_capacity(snap: Snapshot, report: Report) -> None:
    by_provider: dict[str, list[Entry]] = defaultdict(list)
    for e in snap.entries:
        by_provider[e.provider_uuid].append(e)
    for puuid, p in sorted(snap.providers.items()):
        held = _amounts_by_provider(by_provider.get(puuid, [])).get(puuid, {})
        for rc in sorted(set(p.capacity) | set(held) | set(p.used)):
            cap = p.capacity.get(rc, 0)
            used = p.used.get(rc, 0)
            sum_entries = held.get(rc, 0)
            if used > cap or sum_entries > cap:
                report.add(
                    Violation(
                        "over_capacity",
                        puuid,
                        f"provider {p.name} ({puuid}) {rc}: capacity {cap}, "
                        f"usage {used}, live entries sum to {sum_entries}",
                    )
                )


def check_usage(snap: Snapshot, report: Report) -> None:
    by_provider: dict[str, list[Entry]] = defaultdict(list)
    for e in snap.entries:
        by_provider[e.provider_uuid].append(e)
    for puuid, p in sorted(snap.providers.items()):
        held = _amounts_by_provider(by_provider.get(puuid, [])).get(puuid, {})
        used = {rc: n for rc, n in p.used.items() if n}
        if used != held:
            report.add(
                Violation(
                    "usage_mismatch",
                    puuid,
                    f"provider {p.name} ({puuid}): usage {used} but live entries sum to {held}",
                )
            )


def _writes_by_consumer(ops: list[Op]) -> dict[str, list[tuple[Op, Alloc]]]:
    out: dict[str, list[tuple[Op, Alloc]]] = defaultdict(list)
    for o in ops:
        if o.f in (ALLOC_PUT, ALLOC_DELETE):
            out[o.value["consumer"]].append((o, _norm(o.value.get("allocations") or {})))
        elif o.f == ALLOC_POST:
            for c, alloc in o.value["writes"].items():
                out[c].append((o, _norm(alloc)))
    return out


def possible_finals(writes: list[tuple[Op, Alloc]]) -> list[Alloc]:
    """Every value a consumer may hold once all these writes are done.

    A failed write changed nothing. An acknowledged write ``w`` can be last
    unless another acknowledged write was invoked after ``w`` completed (that
    one is ordered after it). An unknown write may land any time after its
    invocation, so it can always be last. With no acknowledged write, the
    consumer's state before the run (nothing) is possible too."""
    acked = [(o, a) for o, a in writes if o.outcome == Outcome.OK]
    finals: list[Alloc] = []
    for o, a in acked:
        done = o.completed if o.completed is not None else float("inf")
        if not any(o2.invoked > done for o2, _ in acked):
            finals.append(a)
    finals.extend(a for o, a in writes if o.outcome in (Outcome.INFO, None))
    if not acked:
        finals.append({})
    return finals


def _is_mix(observed: Alloc, candidates: list[Alloc]) -> bool:
    """Each provider's part comes from some write, but no write is held whole:
    parts of two writes, or half of one."""
    if not observed or any(observed == c for c in candidates):
        return False
    return all(any(c.get(p) == row for c in candidates) for p, row in observed.items())


def check_allocations(ops: list[Op], snap: Snapshot, report: Report) -> None:
    confirmed = [e for e in snap.entries if e.confirmed]
    by_consumer: dict[str, list[Entry]] = defaultdict(list)
    for e in confirmed:
        by_consumer[e.consumer_uuid].append(e)
    for consumer, writes in sorted(_writes_by_consumer(ops).items()):
        observed = _amounts_by_provider(by_consumer.get(consumer, []))
        finals = possible_finals(writes)
        if any(observed == f for f in finals):
            continue
        all_values = [a for o, a in writes if o.outcome != Outcome.FAIL]
        story = _story(ops, [o for o, _ in writes])
        if _is_mix(observed, all_values):
            kind = "mixed_writes"
            what = "holds parts of writes, not one whole write"
        elif observed:
            kind = "resurrected_delete" if all(not f for f in finals) else "lost_write"
            what = "holds what no acknowledged write left"
        else:
            kind = "lost_write"
            what = "holds nothing, though an acknowledged write gave it allocations"
        report.add(
            Violation(
                kind,
                consumer,
                f"consumer {consumer} {what}: holds {observed}, possible {finals}",
                story,
            )
        )


def check_claims(ops: list[Op], snap: Snapshot, report: Report) -> None:
    """Native requests: acknowledged confirms stay, acknowledged releases go."""
    live = {e.uuid: e for e in snap.entries}
    by_claim: dict[str, list[Op]] = defaultdict(list)
    for o in ops:
        if o.f in (CONFIRM, RELEASE):
            by_claim[o.value["claim"]].append(o)
    for claim, mine in sorted(by_claim.items()):
        released = [o for o in mine if o.f == RELEASE and o.outcome != Outcome.FAIL]
        confirmed_ok = [o for o in mine if o.f == CONFIRM and o.outcome == Outcome.OK]
        e = live.get(claim)
        if any(o.outcome == Outcome.OK for o in released) and e is not None:
            report.add(
                Violation(
                    "resurrected_release",
                    claim,
                    f"claim {claim} was released (acknowledged) but is live on {e.provider_uuid}",
                    _story(ops, mine),
                )
            )
        elif confirmed_ok and not released and (e is None or not e.confirmed):
            state = "gone" if e is None else "not confirmed"
            report.add(
                Violation(
                    "lost_confirm",
                    claim,
                    f"claim {claim} was confirmed (acknowledged) but is {state}",
                    _story(ops, mine),
                )
            )


def check_builds(ops: list[Op], snap: Snapshot, report: Report) -> None:
    """Conductor builds: an active build keeps its allocations until destroyed."""
    by_request: dict[str, list[Op]] = defaultdict(list)
    for o in ops:
        if o.f in (BUILD, DESTROY):
            by_request[o.value["request_uuid"]].append(o)
    live_by_request: dict[str, list[Entry]] = defaultdict(list)
    for e in snap.entries:
        if e.request_uuid:
            live_by_request[e.request_uuid].append(e)
    for ruuid, mine in sorted(by_request.items()):
        destroys = [o for o in mine if o.f == DESTROY and o.outcome != Outcome.FAIL]
        built = [
            o
            for o in mine
            if o.f == BUILD and o.outcome == Outcome.OK and o.result.get("build_status") == "active"
        ]
        held = live_by_request.get(ruuid, [])
        if any(o.outcome == Outcome.OK for o in destroys) and held:
            report.add(
                Violation(
                    "resurrected_destroy",
                    ruuid,
                    f"build {ruuid} was destroyed (acknowledged) but holds "
                    f"{len(held)} live entr{'y' if len(held) == 1 else 'ies'}",
                    _story(ops, mine),
                )
            )
        elif built and not destroys:
            want = set(built[-1].result.get("claims", []))
            have = {e.uuid for e in held if e.confirmed}
            if want - have:
                report.add(
                    Violation(
                        "lost_build",
                        ruuid,
                        f"build {ruuid} was active (acknowledged) but claims "
                        f"{sorted(want - have)} are not live allocations",
                        _story(ops, mine),
                    )
                )


def check_requests(ops: list[Op], snap: Snapshot, report: Report) -> None:
    """Every request record agrees with the ledger."""
    mine: dict[str, list[Op]] = defaultdict(list)
    for o in ops:
        r = o.value.get("request_uuid")
        if r:
            mine[r].append(o)
    live_by_request: dict[str, list[Entry]] = defaultdict(list)
    for e in snap.entries:
        if e.request_uuid:
            live_by_request[e.request_uuid].append(e)
    for ruuid, req in sorted(snap.requests.items()):
        held = live_by_request.get(ruuid, [])
        if req.status in ("failed", "deleted") and held:
            report.add(
                Violation(
                    "request_mismatch",
                    ruuid,
                    f"request {ruuid} is {req.status} but holds live entries "
                    f"{sorted(e.uuid for e in held)}",
                    _story(ops, mine.get(ruuid, [])),
                )
            )
            continue
        stray = sorted(e.uuid for e in held if e.uuid not in req.claims)
        if stray:
            report.add(
                Violation(
                    "request_mismatch",
                    ruuid,
                    f"request {ruuid} ({req.status}) does not list its live entries {stray}",
                    _story(ops, mine.get(ruuid, [])),
                )
            )
        if req.status == "active":
            gone_on_purpose = {
                o.value["claim"]
                for o in mine.get(ruuid, [])
                if o.f == RELEASE and o.outcome != Outcome.FAIL
            }
            if any(o.f == DESTROY for o in mine.get(ruuid, [])):
                continue
            have = {e.uuid for e in held if e.confirmed}
            missing = sorted(set(req.claims) - have - gone_on_purpose)
            if missing:
                report.add(
                    Violation(
                        "request_mismatch",
                        ruuid,
                        f"request {ruuid} is active but its claims {missing} are not "
                        "live allocations",
                        _story(ops, mine.get(ruuid, [])),
                    )
                )


def check_leaks(ops: list[Op], snap: Snapshot, report: Report) -> None:
    """Called once every claim of the run is past its TTL: none may be live."""
    for e in snap.entries:
        if e.confirmed:
            continue
        mine = [
            o
            for o in ops
            if o.value.get("request_uuid") == e.request_uuid and e.request_uuid is not None
        ]
        report.add(
            Violation(
                "leaked_after_ttl",
                e.uuid,
                f"claim {e.uuid} of request {e.request_uuid} on {e.provider_uuid} is still "
                f"live past its TTL (expires_at {e.expires_at}, read at {snap.at:.1f})",
                _story(ops, mine),
            )
        )


def check_instances(ops: list[Op], snap: Snapshot, report: Report) -> None:
    if snap.instances is None:
        report.not_checked.append(snap.instances_note or "instances: not read")
        return
    if snap.instances_note:
        report.not_checked.append(snap.instances_note)
    held: dict[tuple[str, str], dict[str, int]] = {}
    for e in snap.entries:
        row = held.setdefault((e.consumer_uuid, e.provider_uuid), {})
        for rc, n in e.amounts.items():
            row[rc] = row.get(rc, 0) + n
    where: dict[str, list[str]] = defaultdict(list)
    for i in snap.instances:
        where[i.consumer_uuid].append(i.agent)
        have = held.get((i.consumer_uuid, i.provider_uuid), {})
        short = {rc: n for rc, n in i.resources.items() if have.get(rc, 0) < n}
        # An agent that does not say what an instance uses: it must hold something.
        if short or not have:
            mine = [o for o in ops if o.value.get("consumer") == i.consumer_uuid]
            requests = {o.value.get("request_uuid") for o in mine} | {i.request_uuid}
            requests.discard(None)
            mine += [o for o in ops if o not in mine and o.value.get("request_uuid") in requests]
            report.add(
                Violation(
                    "instance_without_allocation",
                    i.consumer_uuid,
                    f"agent {i.agent} runs {i.consumer_uuid} ({i.resources}) but the ledger "
                    f"of {i.provider_uuid} holds {have or 'nothing'} for it",
                    _story(ops, mine),
                )
            )
    for consumer, agents in sorted(where.items()):
        if len(agents) > 1:
            report.add(
                Violation(
                    "instance_twice",
                    consumer,
                    f"consumer {consumer} runs on {len(agents)} agents: {sorted(agents)}",
                )
            )


def check_sample(snap: Snapshot, report: Report) -> None:
    """During the run: only what a moving store cannot excuse."""
    check_capacity(snap, report)


def check_final(ops: list[Op], snap: Snapshot, report: Report, *, after_ttl: bool) -> None:
    """On a quiet store, every rule; the leak rule only once claims are past TTL."""
    check_capacity(snap, report)
    check_usage(snap, report)
    check_allocations(ops, snap, report)
    check_claims(ops, snap, report)
    check_builds(ops, snap, report)
    check_requests(ops, snap, report)
    check_instances(ops, snap, report)
    if after_ttl:
        check_leaks(ops, snap, report)
    else:
        report.not_checked.append("leaked claims: the run did not wait for the claim TTL")
