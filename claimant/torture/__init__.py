"""``claimant torture``: a Jepsen-style fault-injection harness (docs/torture.md).

Real processes (``claimant serve``, ``claimant conductor serve``, ``claimant
agent run``), a workload of HTTP clients recorded in a history, a nemesis
injecting faults from outside, and a checker reading the store afterwards."""

from claimant.torture.runner import SetupError, TortureConfig, run_torture

__all__ = ["SetupError", "TortureConfig", "run_torture"]
