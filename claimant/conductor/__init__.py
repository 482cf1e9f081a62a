"""The conductor: hands a scheduled request to the agents and sees it built."""

from claimant.conductor.conductor import (
    AgentClient,
    AgentDirectory,
    BuildResult,
    Conductor,
    InstanceOutcome,
)

__all__ = ["AgentClient", "AgentDirectory", "BuildResult", "Conductor", "InstanceOutcome"]
