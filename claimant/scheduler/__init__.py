"""The scheduler: request -> store query -> filters -> weighers -> pick -> claim.

Filters and weighers are plugins (entry points, ``claimant.plugins``) found
by name through ``FILTERS`` and ``WEIGHERS``; see docs/plugins.md.
"""

from claimant.scheduler import lifecycle
from claimant.scheduler.config import DEFAULT_FILTERS, DEFAULT_WEIGHERS, SchedulerConfig
from claimant.scheduler.context import FailureCounter, PlacementContext, RequestState
from claimant.scheduler.filters import FILTERS, Filter, FilterResult
from claimant.scheduler.scheduler import (
    InstancePlacement,
    Scheduler,
    ScheduleResult,
    ScheduleStats,
)
from claimant.scheduler.weighers import WEIGHERS, Weigher, combine, normalize

__all__ = [
    "DEFAULT_FILTERS",
    "DEFAULT_WEIGHERS",
    "FILTERS",
    "WEIGHERS",
    "FailureCounter",
    "Filter",
    "FilterResult",
    "InstancePlacement",
    "PlacementContext",
    "RequestState",
    "ScheduleResult",
    "ScheduleStats",
    "Scheduler",
    "SchedulerConfig",
    "Weigher",
    "combine",
    "lifecycle",
    "normalize",
]
