"""The agent: the compute-node side of the loop.

It keeps no copy of its resources (no resource tracker): the store's ledger is
the truth, and the agent asks the store whenever it needs to know.

- start-up: make the store's provider match what the config and the driver
  say (``sync``), then heartbeat; a background thread heartbeats every
  ``heartbeat_interval`` and resyncs every ``resync_interval``. Drift between
  what the host reports and what the store records is logged and fixed.
- announce: after start-up and with every heartbeat the agent tells the
  conductor where it listens (``announce``; idempotent there). The conductor
  keeps registrations in memory only, so a restarted one knows every live
  agent again within one heartbeat.
- build: find the claims the scheduler wrote, build through the driver, then
  confirm each claim into an allocation (a store outage is retried until the
  claim expires; an instance not confirmed in time is destroyed). A failed
  build releases the claims and says why (the conductor feeds that to the
  build-failure weigher). Builds are idempotent per consumer: every build is
  recorded (in ``state_file`` too, if configured) and a repeated message gets
  the recorded answer, so the conductor may resend one whose reply it lost.
- destroy: free every allocation of the consumer.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from claimant.agent.config import AgentConfig, ProviderSpec, provider_spec
from claimant.agent.driver import BuildError, Driver, load_driver
from claimant.agent.messages import (
    BuildMessage,
    BuildRecord,
    BuildReply,
    BuildStatus,
    DestroyMessage,
    DestroyReply,
    Failure,
)
from claimant.model import (
    Claim,
    ClaimantError,
    ClaimNotActive,
    ClaimStatus,
    GenerationConflict,
    InUse,
    NotFound,
    Provider,
    StoreUnavailable,
)
from claimant.store.base import Store

log = logging.getLogger("claimant.agent")

# Writes lost to a concurrent claim (the generation moved) are retried this often.
_SYNC_ATTEMPTS = 10
# Confirm retries after a store error: the first pause, doubling up to the last.
_CONFIRM_PAUSE = (0.05, 2.0)
# Failed builds are remembered this long (a resent message gets the same answer).
_KEEP_FAILED_S = 86400.0


class Agent:
    def __init__(
        self,
        store: Store,
        config: AgentConfig,
        driver: Driver | None = None,
        *,
        after_sync: Callable[[], None] | None = None,
        announce: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.driver = (
            driver if driver is not None else load_driver(config.driver, config.driver_options)
        )
        self.after_sync = after_sync
        self.announce = announce
        first = self.spec()
        self.uuid = first.uuid
        self.name = first.name
        self._synced_spec: ProviderSpec | None = None
        self._sync_lock = threading.Lock()
        self._lock = threading.Lock()
        self._builds: dict[str, BuildRecord] = {}
        self._running: dict[str, threading.Event] = {}  # consumer -> its build finished
        self.sleep: Callable[[float], None] = time.sleep
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_sync: dict[str, Any] = {}
        self.builds = 0
        self.build_failures = 0
        # When this process last wrote a heartbeat (its /metrics shows the age).
        self.last_heartbeat: float | None = None

    def spec(self) -> ProviderSpec:
        return provider_spec(self.config.provider, self.driver.discover())

    # -- lifecycle ---------------------------------------------------------
    def start(self, *, background: bool = True) -> None:
        """Register (or resync) the provider, heartbeat, start the loop."""
        self.sync("start-up")
        self.heartbeat()
        self._announce()
        self._recover()
        if background:
            self._thread = threading.Thread(
                target=self._loop, name=f"agent-{self.name}", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        last_sync = time.monotonic()
        while not self._stop.wait(self.config.heartbeat_interval):
            try:
                self.heartbeat()
                self._announce()
                if time.monotonic() - last_sync >= self.config.resync_interval:
                    self.sync("periodic")
                    last_sync = time.monotonic()
            except Exception:  # the loop must outlive a store outage
                log.exception("agent %s: heartbeat/resync failed", self.name)

    def heartbeat(self) -> None:
        self.store.heartbeat(self.uuid)
        self.last_heartbeat = time.time()

    def _in_tree(self, provider_uuid: str) -> bool:
        """This host, or a provider under it (a request may span its tree)."""
        if provider_uuid == self.uuid:
            return True
        try:
            return self.store.get_provider(provider_uuid).root_uuid == self.uuid
        except (NotFound, StoreUnavailable):
            return False

    def _announce(self) -> None:
        if self.announce is None:
            return
        try:
            self.announce()
        except Exception as exc:  # the conductor may be down or restarting: next beat retries
            log.warning("agent %s: cannot announce to the conductor: %s", self.name, exc)

    def _recover(self) -> None:
        """After a restart: the builds recorded in the state file, then the
        instances this host holds according to the store."""
        for rec in self._load_state():
            if rec.status == BuildStatus.BUILDING:
                # We died mid-build: nobody will confirm its claims now, and
                # the half-built instance must not run without them.
                with contextlib.suppress(Exception):
                    self.driver.destroy(rec.consumer_uuid)
                self._release_quietly(rec.claims)
                rec.status = BuildStatus.FAILED
                rec.built_at = time.time()
                rec.reply = BuildReply(
                    rec.consumer_uuid,
                    False,
                    self.uuid,
                    failure=Failure.CLAIM,
                    message="the agent restarted during the build; the instance was destroyed",
                )
            self._builds[rec.consumer_uuid] = rec
        held: dict[str, list[Claim]] = {}
        for c in self.store.list_claims(provider_uuid=self.uuid, status=ClaimStatus.CONFIRMED):
            held.setdefault(c.consumer_uuid, []).append(c)
        with self._lock:
            for consumer, claims in held.items():
                known = self._builds.get(consumer)
                if known is not None and known.status == BuildStatus.BUILT:
                    continue
                uuids = tuple(c.uuid for c in claims)
                self._builds[consumer] = BuildRecord(
                    consumer_uuid=consumer,
                    provider_uuid=self.uuid,
                    status=BuildStatus.BUILT,
                    claims=uuids,
                    request_uuid=claims[0].request_uuid,
                    resources=_summed(claims),
                    confirmed=True,
                    built_at=claims[0].created_at,
                    reply=BuildReply(consumer, True, self.uuid, allocations=uuids),
                )
            self._save_state()

    def _load_state(self) -> list[BuildRecord]:
        path = self.config.state_file
        if not path or not os.path.exists(path):
            return []
        try:
            with open(path) as f:
                data = json.load(f)
            return [BuildRecord.from_dict(d) for d in data.get("builds", [])]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("agent %s: state file %s unreadable, ignored: %s", self.name, path, exc)
            return []

    def _save_state(self) -> None:
        """Write every build record (caller holds ``self._lock``); atomic, so
        a crash leaves the old file or the new one."""
        path = self.config.state_file
        now = time.time()
        for consumer, rec in list(self._builds.items()):
            done_at = rec.built_at or now
            if rec.status == BuildStatus.FAILED and now - done_at > _KEEP_FAILED_S:
                del self._builds[consumer]
        if not path:
            return
        tmp = f"{path}.tmp"
        try:
            with open(tmp, "w") as f:
                json.dump({"builds": [r.to_dict() for r in self._builds.values()]}, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            log.error("agent %s: cannot write state file %s: %s", self.name, path, exc)

    # -- state -------------------------------------------------------------
    def sync(self, reason: str = "resync") -> list[str]:
        """Make the store's provider match the host; returns the drift fixed."""
        spec = self.spec()
        with self._sync_lock:
            self._synced_spec = spec
            for _ in range(_SYNC_ATTEMPTS):
                try:
                    drift = self._sync_once(spec)
                except GenerationConflict:
                    continue  # a claim landed between our read and write: read again
                break
            else:
                drift = ["gave up: the provider kept changing under the resync"]
                log.warning("agent %s: %s", self.name, drift[0])
        for line in drift:
            log.warning("agent %s: drift (%s): %s", self.name, reason, line)
        self.last_sync = {"at": self.store.clock(), "reason": reason, "drift": drift}
        if self.after_sync is not None:
            try:
                self.after_sync()
            except Exception:  # announcing is best effort; the next resync retries
                log.exception("agent %s: after-sync hook failed", self.name)
        return drift

    def sync_if_changed(self) -> list[str]:
        """Resync now if the host reports something new (a significant change);
        costs nothing when it does not: the comparison is in memory."""
        if self.spec() == self._synced_spec:
            return []
        return self.sync("host changed")

    def _sync_once(self, spec: ProviderSpec) -> list[str]:
        try:
            current = self.store.get_provider(spec.uuid)
        except NotFound:
            self.store.create_provider(
                Provider(
                    uuid=spec.uuid,
                    name=spec.name,
                    type=spec.type,
                    parent_uuid=spec.parent_uuid,
                    attributes=dict(spec.attributes),
                    traits=spec.traits,
                    aggregates=spec.aggregates,
                    inventories=dict(spec.inventories),
                )
            )
            log.info("agent %s: registered provider %s", spec.name, spec.uuid)
            return []
        drift: list[str] = []
        gen = current.generation
        if current.type != spec.type:
            # The store cannot change a provider's type; an operator must.
            drift.append(f"type is {current.type} in the store, {spec.type} here (not fixed)")
        if (
            current.name != spec.name
            or current.attributes != spec.attributes
            or current.parent_uuid != spec.parent_uuid
        ):
            drift.append(
                f"name/attributes/parent: store {current.name} {current.attributes} "
                f"{current.parent_uuid}, host {spec.name} {spec.attributes} {spec.parent_uuid}"
            )
            gen = self.store.update_provider(
                spec.uuid,
                gen,
                name=spec.name,
                attributes=dict(spec.attributes),
                parent_uuid=spec.parent_uuid,
            ).generation
        if current.inventories != spec.inventories:
            drift.append(
                "inventories: store "
                f"{_totals(current.inventories)}, host {_totals(spec.inventories)}"
            )
            try:
                gen = self.store.set_inventories(spec.uuid, gen, dict(spec.inventories)).generation
            except InUse as exc:
                drift.append(f"inventories not fixed: {exc.message}")
        if current.traits != spec.traits:
            drift.append(f"traits: store {sorted(current.traits)}, host {sorted(spec.traits)}")
            gen = self.store.set_traits(spec.uuid, gen, spec.traits).generation
        if current.aggregates != spec.aggregates:
            drift.append(
                f"aggregates: store {sorted(current.aggregates)}, host {sorted(spec.aggregates)}"
            )
            gen = self.store.set_aggregates(spec.uuid, gen, spec.aggregates).generation
        return drift

    def instances(self) -> list[str]:
        with self._lock:
            return sorted(c for c, r in self._builds.items() if r.status == BuildStatus.BUILT)

    def running(self) -> list[dict[str, Any]]:
        """``GET /v1/instances``: every instance this agent runs."""
        with self._lock:
            recs = [r for r in self._builds.values() if r.status == BuildStatus.BUILT]
        return [r.instance() for r in sorted(recs, key=lambda r: r.consumer_uuid)]

    def build_record(self, consumer_uuid: str) -> BuildRecord:
        """``GET /v1/builds/{consumer_uuid}``: what this agent did with it."""
        with self._lock:
            rec = self._builds.get(consumer_uuid)
        if rec is None:
            raise NotFound(
                f"agent {self.name} has no build of {consumer_uuid}",
                kind="build",
                uuid=consumer_uuid,
            )
        return rec

    def state(self) -> dict[str, Any]:
        usage = self.store.get_usage(self.uuid)
        p = usage.provider
        return {
            "provider": {
                "uuid": p.uuid,
                "name": p.name,
                "type": p.type,
                "generation": p.generation,
                "heartbeat_at": p.heartbeat_at,
                "traits": sorted(p.traits),
                "aggregates": sorted(p.aggregates),
            },
            "usages": {
                rc: {"capacity": u.capacity, "used": u.used}
                for rc, u in sorted(usage.usages.items())
            },
            "instances": self.instances(),
            "builds": self.builds,
            "build_failures": self.build_failures,
            "last_sync": self.last_sync,
        }

    # -- build and destroy ---------------------------------------------------
    def _release_quietly(self, uuids: tuple[str, ...] | list[str]) -> None:
        for uuid in uuids:
            try:
                self.store.release_claim(uuid)
            except (NotFound, ClaimNotActive):
                pass  # gone already (expired, released): nothing is held either way
            except ClaimantError as exc:
                # Unconfirmed, it expires at its TTL; never confirmed by us now.
                log.warning("agent %s: could not release claim %s: %s", self.name, uuid, exc)

    def _fail(
        self, msg: BuildMessage, failure: Failure, message: str, claims: list[Claim], t0: float
    ) -> BuildReply:
        self._release_quietly([c.uuid for c in claims])
        with self._lock:
            self.build_failures += 1
        log.warning(
            "agent %s: build of %s failed (%s): %s",
            self.name,
            msg.consumer_uuid,
            failure,
            message,
            extra={"request_id": msg.request_uuid or None},
        )
        return BuildReply(
            consumer_uuid=msg.consumer_uuid,
            ok=False,
            provider_uuid=self.uuid,
            failure=failure,
            message=message,
            build_s=time.perf_counter() - t0,
        )

    def _claims_of(self, msg: BuildMessage) -> tuple[list[Claim], str]:
        """The message's claims as the store has them now, and what is wrong."""
        if not msg.claims:
            found = self.store.list_claims(
                provider_uuid=self.uuid, consumer_uuid=msg.consumer_uuid, status=ClaimStatus.CLAIMED
            )
            if not found:
                return [], f"no live claim of {msg.consumer_uuid} on this provider"
            return found, ""
        # Read every claim even after a problem: the consumer's live ones must
        # all be released when the build fails (a claim of another consumer
        # is never touched).
        claims: list[Claim] = []
        problem = ""
        now = self.store.clock()
        for uuid in msg.claims:
            try:
                c = self.store.get_claim(uuid)
            except NotFound:
                problem = problem or f"claim {uuid} does not exist (expired or released)"
                continue
            if c.consumer_uuid != msg.consumer_uuid:
                problem = problem or (
                    f"claim {uuid} belongs to {c.consumer_uuid}, not {msg.consumer_uuid}"
                )
                continue
            if not c.is_live(now):
                problem = problem or f"claim {uuid} expired"
            claims.append(c)
        return claims, problem

    def build(self, msg: BuildMessage) -> BuildReply:
        """Build once per consumer: a repeated message (the conductor lost our
        reply and resent it) waits for the build in flight or gets the
        recorded answer; it never builds a second time."""
        with self._lock:
            self.builds += 1
            rec = self._builds.get(msg.consumer_uuid)
            waiting = self._running.get(msg.consumer_uuid)
            if rec is not None and waiting is None and rec.reply is not None:
                same = not msg.claims or rec.claims == msg.claims
                if rec.status == BuildStatus.BUILT or same:
                    return rec.reply
            if waiting is None:
                # New, or a failed build retried with other claims: build it.
                self._running[msg.consumer_uuid] = threading.Event()
                self._builds[msg.consumer_uuid] = BuildRecord(
                    consumer_uuid=msg.consumer_uuid,
                    provider_uuid=self.uuid,
                    status=BuildStatus.BUILDING,
                    claims=msg.claims,
                    request_uuid=msg.request_uuid,
                )
                self._save_state()
        if waiting is not None:
            waiting.wait()
            with self._lock:
                rec = self._builds.get(msg.consumer_uuid)
            if rec is not None and rec.reply is not None:
                return rec.reply
            return BuildReply(
                msg.consumer_uuid,
                False,
                self.uuid,
                failure=Failure.CLAIM,
                message="the instance was destroyed while this message waited",
            )
        reply: BuildReply | None = None
        try:
            reply = self._build(msg)
        finally:
            with self._lock:
                rec = self._record_of(msg)
                if reply is None:
                    # An unexpected error: the driver may have half-built it.
                    with contextlib.suppress(Exception):
                        self.driver.destroy(msg.consumer_uuid)
                    reply = BuildReply(
                        msg.consumer_uuid,
                        False,
                        self.uuid,
                        failure=Failure.DRIVER,
                        message="the build raised an unexpected error",
                    )
                rec.reply = reply
                rec.status = BuildStatus.BUILT if reply.ok else BuildStatus.FAILED
                rec.confirmed = reply.ok
                rec.built_at = time.time()
                if reply.ok:
                    rec.claims = reply.allocations
                self._save_state()
                self._running.pop(msg.consumer_uuid).set()
        if reply.ok:
            self._after_change()
        return reply

    def _record_of(self, msg: BuildMessage) -> BuildRecord:
        """The record of a build in flight (caller holds ``self._lock``); a
        destroy that ran meanwhile dropped it, and what the build does next
        must still be on record."""
        return self._builds.setdefault(
            msg.consumer_uuid,
            BuildRecord(
                consumer_uuid=msg.consumer_uuid,
                provider_uuid=self.uuid,
                status=BuildStatus.BUILDING,
                claims=msg.claims,
                request_uuid=msg.request_uuid,
            ),
        )

    def _build(self, msg: BuildMessage) -> BuildReply:
        t0 = time.perf_counter()
        try:
            claims, problem = self._claims_of(msg)
        except ClaimantError as exc:
            # Nothing is built and we will never confirm these claims: they
            # are released if the store takes it, else they expire.
            self._release_quietly(msg.claims)
            with self._lock:
                self.build_failures += 1
            return BuildReply(
                msg.consumer_uuid,
                False,
                self.uuid,
                failure=Failure.STORE,
                message=f"could not read the claims: {exc.message}",
            )
        # The message's first claim is on the host that builds; if it is on
        # another provider the message was sent to the wrong agent.
        first = next((c for c in claims if not msg.claims or c.uuid == msg.claims[0]), None)
        if first is not None and not self._in_tree(first.provider_uuid):
            with self._lock:
                self.build_failures += 1
            return BuildReply(
                msg.consumer_uuid,
                False,
                self.uuid,
                failure=Failure.UNKNOWN_PROVIDER,
                message=f"the first claim is on {first.provider_uuid}, this agent is {self.uuid}",
            )
        if problem:
            return self._fail(msg, Failure.CLAIM, problem, claims, t0)
        amounts: dict[str, dict[str, int]] = {}
        for c in claims:
            for rc, n in c.amounts.items():
                amounts.setdefault(c.provider_uuid, {})[rc] = (
                    amounts.get(c.provider_uuid, {}).get(rc, 0) + n
                )
        with self._lock:
            rec = self._record_of(msg)
            if not msg.claims:
                # Kept as the message named them otherwise: a resend is
                # recognised by the same claims.
                rec.claims = tuple(c.uuid for c in claims)
            rec.resources = _summed(claims)
            rec.request_uuid = rec.request_uuid or claims[0].request_uuid
        try:
            self.driver.build(msg.consumer_uuid, amounts)
        except BuildError as exc:
            return self._fail(msg, Failure.DRIVER, str(exc), claims, t0)
        why = self._confirm(claims)
        if why:
            # Not confirmed before the claim expired: the resources may be
            # someone else's now, so the instance must go.
            with contextlib.suppress(Exception):
                self.driver.destroy(msg.consumer_uuid)
            return self._fail(msg, Failure.CLAIM, why, claims, t0)
        return BuildReply(
            consumer_uuid=msg.consumer_uuid,
            ok=True,
            provider_uuid=self.uuid,
            allocations=tuple(c.uuid for c in claims),
            build_s=time.perf_counter() - t0,
        )

    def _confirm(self, claims: list[Claim]) -> str:
        """Confirm every claim; a store error is retried with backoff until
        the claim expires. Returns why not, or "" when all are allocations."""
        for c in claims:
            pause, longest = _CONFIRM_PAUSE
            while True:
                try:
                    self.store.confirm_claim(c.uuid)
                    break
                except (ClaimNotActive, NotFound) as exc:
                    return exc.message
                except ClaimantError as exc:
                    left = (c.expires_at or 0.0) - self.store.clock()
                    if left <= 0:
                        return f"claim {c.uuid} could not be confirmed before it expired: {exc}"
                    log.warning(
                        "agent %s: confirm of %s failed (%s), retrying for %.0f s",
                        self.name,
                        c.uuid,
                        exc,
                        left,
                    )
                    self.sleep(min(pause, left))
                    pause = min(pause * 2, longest)
        return ""

    def destroy(self, msg: DestroyMessage) -> DestroyReply:
        with contextlib.suppress(Exception):
            self.driver.destroy(msg.consumer_uuid)
        freed = []
        for c in self.store.list_claims(consumer_uuid=msg.consumer_uuid):
            try:
                self.store.release_claim(c.uuid)
            except (NotFound, ClaimNotActive):
                continue
            freed.append(c.uuid)
        with self._lock:
            self._builds.pop(msg.consumer_uuid, None)
            self._save_state()
        self._after_change()
        return DestroyReply(msg.consumer_uuid, tuple(freed))

    def _after_change(self) -> None:
        try:
            self.sync_if_changed()
        except Exception:  # the build itself succeeded; the next resync retries
            log.exception("agent %s: resync after a change failed", self.name)


def _summed(claims: list[Claim]) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in claims:
        for rc, n in c.amounts.items():
            out[rc] = out.get(rc, 0) + n
    return out


def _totals(inventories: dict[str, Any]) -> dict[str, int]:
    return {rc: inv.total for rc, inv in sorted(inventories.items())}


__all__ = ["Agent"]
