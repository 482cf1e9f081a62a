"""claimant's exception tree and its stable error codes.

Rules for codes: a code never changes meaning and is never reused. Clients
(the CLI, Placement clients through the compatibility layer, operators'
scripts) match on ``code``, never on ``message``. What HTTP status an
error is belongs to the API layer (``claimant.api.errors.STATUS_BY_ERROR``).

    ClaimantError
    ├── InvalidInput              the request itself is wrong
    │   └── (claimant.plugins)    UnknownPlugin, PluginUnavailable, InvalidPluginOptions
    ├── NotFound                  a named thing does not exist
    ├── Conflict                  the request is valid but the state says no
    │   ├── AlreadyExists
    │   ├── GenerationConflict    compare-and-set lost: re-read and retry
    │   ├── ConsumerGenerationConflict
    │   ├── InsufficientCapacity  does not fit (reasons carry the numbers)
    │   ├── InUse                 cannot delete / shrink: something holds it
    │   ├── ClaimNotActive        confirm/release of an expired or released claim
    │   ├── NoValidHost           the scheduler found no provider for a request
    │   └── BuildFailed           placed, but its instances could not be built
    ├── StoreUnavailable          the backend could not be reached / timed out
    │   └── CellUnavailable       a cell (data centre) is cut off, nowhere else to go
    └── DeadlineExceeded          the request ran out of its time budget
"""

from __future__ import annotations

from typing import Any

# Stable codes, one place. Never change a value; add new ones at the end.
INVALID_INPUT = "invalid_input"
NOT_FOUND = "not_found"
ALREADY_EXISTS = "already_exists"
GENERATION_CONFLICT = "generation_conflict"
CONSUMER_GENERATION_CONFLICT = "consumer_generation_conflict"
INSUFFICIENT_CAPACITY = "insufficient_capacity"
IN_USE = "in_use"
CLAIM_NOT_ACTIVE = "claim_not_active"
NO_VALID_HOST = "no_valid_host"
STORE_UNAVAILABLE = "store_unavailable"
CONFLICT = "conflict"
AGENT_UNAVAILABLE = "agent_unavailable"
DEADLINE_EXCEEDED = "deadline_exceeded"
BUILD_FAILED = "build_failed"
# An aggregate named in a request that has no such name (claimant.api.aggregates).
UNKNOWN_AGGREGATE = "unknown_aggregate"
# A cell (data centre, docs/cells.md) the store has no replicas in.
UNKNOWN_CELL = "unknown_cell"
# The request could only be placed in cells that are unreachable.
CELL_UNAVAILABLE = "cell_unavailable"
# A write that would put one consumer in two cells.
CROSS_CELL = "cross_cell"
# Plugins (claimant.plugins): a name no entry point has; one that cannot be
# loaded (import error, wrong kind, registered twice); options it refuses.
UNKNOWN_PLUGIN = "unknown_plugin"
PLUGIN_UNAVAILABLE = "plugin_unavailable"
INVALID_PLUGIN_OPTIONS = "invalid_plugin_options"


class ClaimantError(Exception):
    """Base of every error claimant raises on purpose."""

    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            out["details"] = self.details
        return out


class InvalidInput(ClaimantError):
    code = INVALID_INPUT


class NotFound(ClaimantError):
    code = NOT_FOUND


class Conflict(ClaimantError):
    code = CONFLICT


class AlreadyExists(Conflict):
    code = ALREADY_EXISTS


class GenerationConflict(Conflict):
    """A compare-and-set on a provider generation lost."""

    code = GENERATION_CONFLICT


class ConsumerGenerationConflict(Conflict):
    code = CONSUMER_GENERATION_CONFLICT


class InsufficientCapacity(Conflict):
    code = INSUFFICIENT_CAPACITY


class InUse(Conflict):
    code = IN_USE


class ClaimNotActive(Conflict):
    code = CLAIM_NOT_ACTIVE


class NoValidHost(Conflict):
    code = NO_VALID_HOST


class BuildFailed(Conflict):
    """A request was placed but its instances could not be built; its record
    (status failed, the reason, the history) says why."""

    code = BUILD_FAILED


class StoreUnavailable(ClaimantError):
    code = STORE_UNAVAILABLE


class CellUnavailable(StoreUnavailable):
    """No coordinator of a cell answers: what is homed there can't be
    written. Its message names the cell and never quotes the driver."""

    code = CELL_UNAVAILABLE


class DeadlineExceeded(ClaimantError):
    """A request's deadline passed (or its client left) while it was working.

    Not a ``StoreUnavailable``: the store may be fine, and retrying the same
    request will usually take just as long.
    """

    code = DEADLINE_EXCEEDED


# Codes of the HTTP layer (claimant.api, the agents' gate): no domain
# exception carries them; they are here so that every code is in one list.
UNAUTHORIZED = "unauthorized"
FORBIDDEN = "forbidden"
METHOD_NOT_ALLOWED = "method_not_allowed"
PAYLOAD_TOO_LARGE = "payload_too_large"
INVALID_HOST = "invalid_host"
UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
INTERNAL_ERROR = "internal_error"
IDENTITY_UNAVAILABLE = "identity_unavailable"
