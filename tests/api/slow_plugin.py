"""A scheduler filter that is slow on purpose (issue 16's tests only).

``SlowFilter`` sleeps ``delay`` seconds per candidate of every instance from
``from_instance`` on, and counts its calls; it never rejects. Importing this
module registers it; ``install_by_default`` also puts it in the default filter
list, for a ``claimant serve`` process started with this module imported
(``SERVE_WITH_SLOW_FILTER``)."""

from __future__ import annotations

import os
import sys
import time
from typing import ClassVar

from claimant.model import ProviderUsage
from claimant.scheduler import FILTERS, FilterResult, PlacementContext
from claimant.scheduler import config as scheduler_config

NAME = "SlowFilter"
ENV_DELAY = "CLAIMANT_TEST_SLOW_FILTER_DELAY"


class SlowFilter:
    NAME: ClassVar[str] = NAME
    calls: ClassVar[int] = 0

    def __init__(self, delay: float | None = None, from_instance: int = 0) -> None:
        self.delay = float(os.environ.get(ENV_DELAY, "0.05")) if delay is None else delay
        self.from_instance = from_instance

    def filter(self, candidate: ProviderUsage, ctx: PlacementContext) -> FilterResult:
        if ctx.instance_index >= self.from_instance:
            SlowFilter.calls += 1
            time.sleep(self.delay)
        return FilterResult.ok()


if NAME not in FILTERS:
    FILTERS.register(SlowFilter)


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
