"""The agent: registers its provider, heartbeats, builds on claims, frees on destroy."""

from claimant.agent.agent import Agent
from claimant.agent.config import AgentConfig, ProviderSpec, provider_spec, provider_uuid_for
from claimant.agent.driver import BuildError, Driver, FakeDriver, load_driver
from claimant.agent.messages import (
    BuildMessage,
    BuildRecord,
    BuildReply,
    BuildStatus,
    DestroyMessage,
    DestroyReply,
    Failure,
)

__all__ = [
    "Agent",
    "AgentConfig",
    "BuildError",
    "BuildMessage",
    "BuildRecord",
    "BuildReply",
    "BuildStatus",
    "DestroyMessage",
    "DestroyReply",
    "Driver",
    "Failure",
    "FakeDriver",
    "ProviderSpec",
    "load_driver",
    "provider_spec",
    "provider_uuid_for",
]
