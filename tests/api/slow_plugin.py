"""A scheduler filter that is slow on purpose (issue 16's tests only).

``SlowFilter`` sleeps ``delay`` seconds per candidate of every instance from
``from_instance`` on, and counts its calls; it never rejects. Importing this
module registers it (an entry point of a distribution written to a temporary
directory on sys.path, as a package would); ``install_by_default`` also puts
it in the default filter list, for a ``claimant serve`` process started with
this module imported (``SERVE_WITH_SLOW_FILTER``)."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import ClassVar

from claimant.model import ProviderUsage
from claimant.plugins import PluginOptions
from claimant.scheduler import FILTERS, Filter, FilterResult, PlacementContext
from claimant.scheduler import config as scheduler_config
from tests.plugin_dist import add_to_path, write_dist

NAME = "SlowFilter"
ENV_DELAY = "CLAIMANT_TEST_SLOW_FILTER_DELAY"


class SlowFilter(Filter):
    NAME: ClassVar[str] = NAME
    calls: ClassVar[int] = 0

    class Options(PluginOptions):
        delay: float | None = None
        from_instance: int = 0

    def __init__(self, delay: float | None = None, from_instance: int = 0) -> None:
        self.delay = float(os.environ.get(ENV_DELAY, "0.05")) if delay is None else delay
        self.from_instance = from_instance

    def filter(self, candidate: ProviderUsage, ctx: PlacementContext) -> FilterResult:
        if ctx.instance_index >= self.from_instance:
            SlowFilter.calls += 1
            time.sleep(self.delay)
        return FilterResult.ok()


if NAME not in FILTERS:
    _root = Path(tempfile.mkdtemp(prefix="claimant-slow-filter-"))
    atexit.register(shutil.rmtree, _root, True)
    add_to_path(write_dist(_root, {"claimant.filters": {NAME: f"{__name__}:SlowFilter"}}, NAME))


def install_by_default() -> None:
    if NAME not in scheduler_config.DEFAULT_FILTERS:
        scheduler_config.DEFAULT_FILTERS = (*scheduler_config.DEFAULT_FILTERS, NAME)


# ``claimant serve`` with the slow filter in every scheduler it builds.
SERVE_WITH_SLOW_FILTER = [
    sys.executable,
    "-c",
    "import tests.api.slow_plugin as s; s.install_by_default(); "
    "from claimant.cli.main import main; main()",
]
