"""One plugin mechanism (issue 13): filters, weighers, drivers and stores are
entry points, claimant's own included; the loader's errors are config errors
with stable codes; options are typed; optional hooks come from the Protocols.
Plugins of the tests' own are registered as a package registers them
(tests.plugin_dist), never by patching the loader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from claimant.agent.driver import DRIVERS, FakeDriver, load_driver
from claimant.model import Hints, InvalidInput, Strategy
from claimant.plugins import PluginUnavailable, UnknownPlugin
from claimant.scheduler import (
    DEFAULT_FILTERS,
    DEFAULT_WEIGHERS,
    FILTERS,
    WEIGHERS,
    Filter,
    Scheduler,
    SchedulerConfig,
)
from claimant.store import STORES, Store, open_store
from tests.plugin_dist import plugin_dist, write_dist
from tests.scheduler.builders import host, req

EX = "tests.plugins.example_plugins"


def test_the_built_in_plugins_are_entry_points_of_the_installed_package() -> None:
    assert set(DEFAULT_FILTERS) | {"MaxClaimsPerProviderFilter"} <= set(FILTERS.names())
    assert set(DEFAULT_WEIGHERS) | {"DiskWeigher"} <= set(WEIGHERS.names())
    assert "fake" in DRIVERS.names()
    assert {"sqlite", "cassandra"} <= set(STORES.names())
    for name in FILTERS.names():
        assert name == FILTERS.build(name).NAME
    for name in WEIGHERS.names():
        assert name == WEIGHERS.build(name).NAME


@pytest.mark.parametrize(
    ("case", "load"),
    [
        ("filter", lambda: FILTERS.build("NoSuchFilter")),
        ("weigher", lambda: WEIGHERS.build("NoSuchWeigher")),
        ("driver", lambda: load_driver("nope", {})),
        ("store", lambda: open_store("nope:///x.db")),
        ("store without scheme", lambda: open_store("just-a-path.db")),
    ],
)
def test_an_unknown_name_lists_the_known_ones(case: str, load: Any) -> None:
    with pytest.raises(UnknownPlugin) as err:
        load()
    assert err.value.code == "unknown_plugin", case
    known = err.value.details["known"]
    assert known and all(k in err.value.message for k in known), case


def test_an_unknown_filter_in_the_config_is_a_config_error(store: Store) -> None:
    with pytest.raises(InvalidInput) as err:
        Scheduler(store, SchedulerConfig(filters=["NoSuchFilter"]))
    assert err.value.code == "unknown_plugin"
    assert "AffinityFilter" in err.value.message


@pytest.mark.parametrize(
    ("case", "target", "says"),
    [
        (
            "import raises",
            "tests.plugins.broken:Thing",
            "(tests.plugins.broken:Thing, from claimant-test-plugins-",
        ),
        ("import raises: why", "tests.plugins.broken:Thing", "RuntimeError: the GPU library"),
        ("no such module", "claimant_nowhere.mod:Thing", "ModuleNotFoundError"),
        ("no such attribute", f"{EX}:Nothing", "AttributeError"),
        ("not a subclass", f"{EX}:NotAFilter", "not a subclass of claimant.scheduler"),
        ("NAME differs", f"{EX}:PassFilter", "its NAME is 'TestPassFilter'"),
    ],
)
def test_a_plugin_that_cannot_load_says_which_and_why(
    tmp_path: Path, case: str, target: str, says: str
) -> None:
    with plugin_dist(tmp_path, {"claimant.filters": {"TestBroken": target}}):
        with pytest.raises(PluginUnavailable) as err:
            Scheduler(open_store("sqlite:///" + str(tmp_path / "s.db")), _filters("TestBroken"))
        assert err.value.code == "plugin_unavailable", case
        assert "filter 'TestBroken'" in err.value.message, case
        assert says in err.value.message, (case, err.value.message)


def test_a_name_registered_twice_is_refused(tmp_path: Path) -> None:
    write_dist(tmp_path, {"claimant.filters": {"AffinityFilter": f"{EX}:Impostor"}}, "other-pkg")
    with plugin_dist(tmp_path, {}):
        with pytest.raises(PluginUnavailable, match="registered twice") as err:
            FILTERS.load("AffinityFilter")
        assert "claimant.scheduler.filters:AffinityFilter" in err.value.message
        assert f"{EX}:Impostor (other-pkg 0.0.0)" in err.value.message
    assert FILTERS.load("AffinityFilter").__module__ == "claimant.scheduler.filters"


@pytest.mark.parametrize(
    ("case", "group", "name", "options", "says"),
    [
        (
            "string for int",
            FILTERS,
            "MaxClaimsPerProviderFilter",
            {"max_claims": "3"},
            "max_claims",
        ),
        ("bool for int", FILTERS, "MaxClaimsPerProviderFilter", {"max_claims": True}, "max_claims"),
        ("unknown option", FILTERS, "MaxClaimsPerProviderFilter", {"limit": 3}, "not an option"),
        ("options to a plugin without", FILTERS, "AffinityFilter", {"x": 1}, "x: not an option"),
        ("infinite half-life", WEIGHERS, "BuildFailureWeigher", {"half_life": 1e999}, "half_life"),
        ("bool build time", DRIVERS, "fake", {"build_time": True}, "build_time"),
        ("string seed", DRIVERS, "fake", {"seed": "x"}, "seed"),
        ("rate above 1", DRIVERS, "fake", {"failure_rate": 2}, "failure_rate"),
        ("inventories not a table", DRIVERS, "fake", {"inventories": 3}, "inventories"),
    ],
)
def test_bad_options_are_a_clear_error(
    case: str, group: Any, name: str, options: dict[str, Any], says: str
) -> None:
    with pytest.raises(InvalidInput) as err:
        group.build(name, options)
    assert err.value.code == "invalid_plugin_options", case
    assert f"{name}: bad options: " in err.value.message and says in err.value.message, case


def test_good_options_are_typed() -> None:
    driver = load_driver("fake", {"build_time": 1, "failure_rate": 0.5, "seed": 7})
    assert isinstance(driver, FakeDriver)
    assert driver.build_time == 1.0 and driver.failure_rate == 0.5


def test_a_plugin_without_the_optional_hooks_gets_the_protocol_defaults(
    store: Store, tmp_path: Path
) -> None:
    points = {
        "claimant.filters": {"TestPassFilter": f"{EX}:PassFilter"},
        "claimant.weighers": {"TestSmallWeigher": f"{EX}:SmallWeigher"},
    }
    with plugin_dist(tmp_path, points):
        small = host(store, "small", memory_mb=4096)
        host(store, "big", memory_mb=8192)
        cfg = SchedulerConfig(
            filters=["TestPassFilter", "AntiAffinityFilter"],
            weighers={"TestSmallWeigher": 1.0},
            host_subset_size=1,
        )
        sched = Scheduler(store, cfg)
        flt, anti = sched.filters
        ((weigher, _),) = sched.weighers
        assert flt.applies.__func__ is Filter.applies  # type: ignore[attr-defined]
        assert not flt.ENFORCES_SERVER_GROUP and anti.ENFORCES_SERVER_GROUP
        assert not weigher.FOLLOWS_STRATEGY and weigher.failure_half_life() is None
        # Pack flips only weighers that follow the strategy: this one still
        # prefers the smaller host.
        result = sched.schedule(req(hints=Hints(strategy=Strategy.PACK)))
        assert result.placements[0].providers == [small.uuid]


def test_a_driver_and_a_store_of_a_package(tmp_path: Path) -> None:
    points = {
        "claimant.drivers": {"null": f"{EX}:NullDriver"},
        "claimant.stores": {"testsqlite": f"{EX}:open_test_sqlite"},
    }
    with plugin_dist(tmp_path / "site", points):
        assert load_driver("null").discover() == {}
        store = open_store("testsqlite://" + str(tmp_path / "t.db"))
        store.migrate()
        assert store.list_providers() == []
        store.close()
    with pytest.raises(UnknownPlugin, match="use cassandra:// or sqlite://"):
        open_store("testsqlite://" + str(tmp_path / "t.db"))


def _filters(*names: str) -> SchedulerConfig:
    return SchedulerConfig(filters=list(names), weighers={})
