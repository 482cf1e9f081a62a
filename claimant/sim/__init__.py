"""``claimant sim``: Nova's FilterScheduler against claimant's pipeline."""

from claimant.sim.runner import MODES, SimConfig, SimResult, overcommitted, run

__all__ = ["MODES", "SimConfig", "SimResult", "overcommitted", "run"]
