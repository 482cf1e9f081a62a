"""docs/plugins.md's example, run as written: its module and its entry point
are read from the page, registered as a package would register them, and
used by a scheduler on a real store."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest

from claimant.model import InvalidInput, NoValidHost
from claimant.scheduler import Scheduler, SchedulerConfig
from claimant.store import Store
from tests.plugin_dist import plugin_dist
from tests.scheduler.builders import host, req

PAGE = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", PAGE.read_text(), re.S)


def test_the_documented_filter_plugin_works(store: Store, tmp_path: Path) -> None:
    module, config = _blocks("python")
    (tmp_path / "zone_filter.py").write_text(module)
    points = tomllib.loads(_blocks("toml")[0])["project"]["entry-points"]
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
