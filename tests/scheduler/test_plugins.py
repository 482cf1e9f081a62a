"""Config validation, the plugin registries, normalisation and weighing."""

from __future__ import annotations

from typing import Any

import pytest

from claimant.model import (
    GroupPolicyKind,
    Hints,
    InvalidInput,
    Provider,
    ProviderUsage,
    Strategy,
    Usage,
)
from claimant.scheduler import (
    WEIGHERS,
    FailureCounter,
    PlacementContext,
    RequestState,
    Scheduler,
    SchedulerConfig,
    combine,
    normalize,
)
from claimant.store import Store

from .builders import req


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("host_subset_size", 0, id="subset-zero"),
        pytest.param("host_subset_size", True, id="subset-bool"),
        pytest.param("candidate_limit", "50", id="limit-string"),
        pytest.param("max_claim_retries", -1, id="retries-negative"),
        pytest.param("claim_ttl", 0, id="ttl-zero"),
        pytest.param("claim_ttl", float("nan"), id="ttl-nan"),
        pytest.param("heartbeat_timeout", -5.0, id="heartbeat-negative"),
        pytest.param("filters", ["AffinityFilter", "AffinityFilter"], id="filter-twice"),
        pytest.param("filters", "AffinityFilter", id="filters-not-list"),
        pytest.param("weighers", {"RAMWeigher": "high"}, id="multiplier-string"),
        pytest.param("weighers", {"RAMWeigher": float("inf")}, id="multiplier-inf"),
        pytest.param("options", {"RAMWeigher": 3}, id="options-not-mapping"),
    ],
)
def test_config_rejects_bad_values(field: str, value: Any) -> None:
    with pytest.raises(InvalidInput) as err:
        SchedulerConfig(**{field: value})
    assert err.value.code == "invalid_input"


def test_config_accepts_defaults_and_none_heartbeat() -> None:
    cfg = SchedulerConfig(heartbeat_timeout=None, max_claim_retries=0)
    assert cfg.host_subset_size == 5
    assert "AntiAffinityFilter" in cfg.filters


@pytest.mark.parametrize(
    ("config", "message"),
    [
        pytest.param({"filters": ["NoSuchFilter"]}, "unknown filter", id="unknown-filter"),
        pytest.param({"weighers": {"NoSuchWeigher": 1.0}}, "unknown weigher", id="unknown-weigher"),
        pytest.param(
            {"options": {"MaxClaimsPerProviderFilter": {"max_claims": 2}}},
            "not configured",
            id="options-for-unconfigured-plugin",
        ),
        pytest.param(
            {
                "filters": ["MaxClaimsPerProviderFilter"],
                "options": {"MaxClaimsPerProviderFilter": {"max_claims": 0}},
            },
            "max_claims: Input should be greater than or equal to 1",
            id="bad-plugin-option",
        ),
        pytest.param(
            {
                "filters": ["MaxClaimsPerProviderFilter"],
                "options": {"MaxClaimsPerProviderFilter": {"limit": 3}},
            },
            "bad options",
            id="unknown-plugin-option",
        ),
        pytest.param(
            {"options": {"BuildFailureWeigher": {"half_life": -1}}},
            "half_life",
            id="bad-weigher-option",
        ),
    ],
)
def test_scheduler_build_validates_plugins(
    store: Store, config: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        Scheduler(store, SchedulerConfig(**config))


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        pytest.param([], [], id="empty"),
        pytest.param([5.0], [0.0], id="single"),
        pytest.param([3.0, 3.0, 3.0], [0.0, 0.0, 0.0], id="all-equal"),
        pytest.param([0.0, 5.0, 10.0], [0.0, 0.5, 1.0], id="spread"),
        pytest.param([-4.0, -2.0, 0.0], [0.0, 0.5, 1.0], id="negative"),
    ],
)
def test_normalize(weights: list[float], expected: list[float]) -> None:
    assert normalize(weights) == pytest.approx(expected)


def _cand(name: str, vcpu_free: int, mem_free: int, root: str | None = None) -> ProviderUsage:
    uuid = f"00000000-0000-0000-0000-{name.rjust(12, '0')}"
    return ProviderUsage(
        Provider(uuid=uuid, name=name, root_uuid=root or uuid),
        {
            "VCPU": Usage("VCPU", 16, 16 - vcpu_free),
            "MEMORY_MB": Usage("MEMORY_MB", 16384, 16384 - mem_free),
        },
    )


def _ctx(store: Store, hints: Hints) -> PlacementContext:
    request = req(hints=hints)
    state = RequestState(store, request, FailureCounter(clock=store.clock))
    return PlacementContext(state, request.groups[0], 0, "consumer")


@pytest.mark.parametrize(
    ("strategy", "weighers", "best"),
    [
        pytest.param(Strategy.SPREAD, {"RAMWeigher": 1.0}, "1", id="spread-ram"),
        pytest.param(Strategy.PACK, {"RAMWeigher": 1.0}, "3", id="pack-ram"),
        pytest.param(Strategy.SPREAD, {"CPUWeigher": 1.0}, "3", id="spread-cpu"),
        pytest.param(Strategy.SPREAD, {"RAMWeigher": -1.0}, "3", id="negative-multiplier-packs"),
        # RAM counts twice as much as CPU: host 1 (most RAM) wins over host 3 (most CPU).
        pytest.param(Strategy.SPREAD, {"RAMWeigher": 2.0, "CPUWeigher": 1.0}, "1", id="mixed"),
    ],
)
def test_combine_ranks_by_multiplied_normalised_weights(
    store: Store, strategy: Strategy, weighers: dict[str, float], best: str
) -> None:
    cands = [_cand("1", 2, 12000), _cand("2", 8, 8000), _cand("3", 14, 1000)]
    built = [(WEIGHERS.build(n), m) for n, m in weighers.items()]
    totals = combine(cands, built, _ctx(store, Hints(strategy=strategy)))
    assert cands[totals.index(max(totals))].provider.name == best


@pytest.mark.parametrize(
    ("policy", "best"),
    [
        pytest.param(GroupPolicyKind.SOFT_AFFINITY, "2", id="soft-affinity-prefers-members"),
        pytest.param(GroupPolicyKind.SOFT_ANTI_AFFINITY, "1", id="soft-anti-prefers-empty"),
    ],
)
def test_soft_server_group_weighers(store: Store, policy: GroupPolicyKind, best: str) -> None:
    cands = [_cand("1", 8, 8000), _cand("2", 8, 8000)]
    ctx = _ctx(store, Hints(group="web", group_policy=policy))
    ctx.state.placed_roots.append(cands[1].provider.uuid)
    built = [(WEIGHERS.build(n), 1.0) for n in WEIGHERS.names()]
    totals = combine(cands, built, ctx)
    assert cands[totals.index(max(totals))].provider.name == best


def test_failure_counter_decays_by_half_life() -> None:
    now = [1000.0]
    counter = FailureCounter(half_life=10.0, clock=lambda: now[0])
    assert counter.record("p") == 1.0
    assert counter.record("p") == 2.0
    now[0] += 10.0
    assert counter.get("p") == pytest.approx(1.0)
    now[0] += 100.0
    assert counter.get("p") == 0.0
    counter.record("q")
    counter.reset("q")
    assert counter.get("q") == 0.0
