"""docs/plugins.md's example, run as written: its module and its entry point
are read from the page, registered as a package would register them, and
used by a scheduler on a real store."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from claimant.cli.tunables import from_file, scheduler_config
from claimant.model import InvalidInput, NoValidHost
from claimant.scheduler import Scheduler, SchedulerConfig
from claimant.store import Store
from tests.plugin_dist import plugin_dist
from tests.scheduler.builders import host, req

PAGE = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", PAGE.read_text(), re.S)


def _tomls(key: str) -> list[dict[str, Any]]:
    """The page's TOML blocks that have a ``key`` table."""
    return [t for t in map(tomllib.loads, _blocks("toml")) if key in t]


def _from_claimant_toml(tables: dict[str, Any]) -> SchedulerConfig:
    """What `claimant serve` and `conductor serve` build from the file."""
    d = from_file(tables, scheduler=True)
    config: SchedulerConfig = scheduler_config(
        claim_ttl=300.0,
        host_subset_size=5,
        heartbeat_timeout=60.0,
        weigher=d.get("weigher", ()),
        filter_=d.get("filter_", ()),
        plugin_option=d.get("plugin_option", ()),
    )
    return config


def test_the_documented_filter_plugin_works(store: Store, tmp_path: Path) -> None:
    module, config = _blocks("python")
    (tmp_path / "zone_filter.py").write_text(module)
    (project,) = _tomls("project")
    points = project["project"]["entry-points"]
    assert points == {"claimant.filters": {"ZoneFilter": "zone_filter:ZoneFilter"}}
    host(store, "z1", attributes={"availability_zone": "z1"})
    z2 = host(store, "z2", attributes={"availability_zone": "z2"})
    try:
        with plugin_dist(tmp_path, points):
            cfg = eval(config, {"SchedulerConfig": SchedulerConfig})
            result = Scheduler(store, cfg).schedule(req())
            assert result.placements[0].providers == [z2.uuid]
            cfg.options["ZoneFilter"] = {"zone": "z9"}
            with pytest.raises(NoValidHost, match="zone is 'z1', want 'z9'"):
                Scheduler(store, cfg).schedule(req())
            cfg.options["ZoneFilter"] = {"zone": 2}
            with pytest.raises(InvalidInput, match="ZoneFilter: bad options: zone"):
                Scheduler(store, cfg)
    finally:
        sys.modules.pop("zone_filter", None)


def test_the_documented_claimant_toml_sets_the_options(store: Store, tmp_path: Path) -> None:
    # Issue 13: before, claimant.toml had no table for a plugin's options.
    module = _blocks("python")[0]
    (tmp_path / "zone_filter.py").write_text(module)
    (project,) = _tomls("project")
    options_example, zone_example = _tomls("scheduler")
    assert _from_claimant_toml(options_example).options == {
        "MaxClaimsPerProviderFilter": {"max_claims": 4},
        "BuildFailureWeigher": {"half_life": 300.0},
    }
    host(store, "z1", attributes={"availability_zone": "z1"})
    z2 = host(store, "z2", attributes={"availability_zone": "z2"})
    try:
        with plugin_dist(tmp_path, project["project"]["entry-points"]):
            # ZoneFilter's zone has no default: it is built with the file's.
            cfg = _from_claimant_toml(zone_example)
            result = Scheduler(store, cfg).schedule(req())
            assert result.placements[0].providers == [z2.uuid]
    finally:
        sys.modules.pop("zone_filter", None)
