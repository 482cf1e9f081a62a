"""``claimant sim``: Nova's FilterScheduler against claimant's pipeline."""

from claimant.sim.cells import CellResult, CellsResult, DcStop, run_cells
from claimant.sim.runner import MODES, SimConfig, SimResult, overcommitted, run

__all__ = [
    "MODES",
    "CellResult",
    "CellsResult",
    "DcStop",
    "SimConfig",
    "SimResult",
    "overcommitted",
    "run",
    "run_cells",
]
