"""How a ``claimant`` command fails: ``Error: CODE: MESSAGE`` (and the fix)
on stderr, or with ``--json`` / ``-o json|yaml`` one JSON line
``{"error": {...}}`` there; exit codes scripts can trust (docs/cli.md,
"Errors and exit codes"). Never a traceback, never a driver's text."""

from __future__ import annotations

import json
import logging
from typing import Any

import click

from claimant.model.errors import ClaimantError, StoreUnavailable

# Exit codes (docs/cli.md). Never change one: scripts test them.
EXIT_OK = 0
EXIT_ERROR = 1  # the server refused (bad input, forbidden) or failed
EXIT_USAGE = 2  # the command line is wrong (click's own code)
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4  # generation conflict, in use, already exists, claim not active
EXIT_NO_VALID_HOST = 5
EXIT_UNAVAILABLE = 6  # server unreachable, store unavailable, deadline exceeded

# The client commands' exit code by error code; a command that talks to a
# store itself (store, sim, import) keeps its own documented codes.
EXIT_BY_CODE = {
    "not_found": EXIT_NOT_FOUND,
    "conflict": EXIT_CONFLICT,
    "already_exists": EXIT_CONFLICT,
    "generation_conflict": EXIT_CONFLICT,
    "consumer_generation_conflict": EXIT_CONFLICT,
    "in_use": EXIT_CONFLICT,
    "claim_not_active": EXIT_CONFLICT,
    "insufficient_capacity": EXIT_CONFLICT,
    "no_valid_host": EXIT_NO_VALID_HOST,
    "unreachable": EXIT_UNAVAILABLE,
    "store_unavailable": EXIT_UNAVAILABLE,
    "deadline_exceeded": EXIT_UNAVAILABLE,
    "identity_unavailable": EXIT_UNAVAILABLE,
    "usage": EXIT_USAGE,
}

LOG_HINT = "the store's own words are in the log: run again with --log-level warning"


class CliError(click.ClickException):
    """An error with a stable ``code``; printed as ``Error: code: message``
    (and the fix), or with ``--json`` as ``{"error": {...}}`` on stderr."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        fix: str | None = None,
        details: dict[str, Any] | None = None,
        as_json: bool = False,
        exit_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.fix = fix
        self.details = details or {}
        self.as_json = as_json
        # click reads it from the instance; its annotation says class-wide.
        self.exit_code = (  # type: ignore[misc]
            exit_code if exit_code is not None else EXIT_BY_CODE.get(code, EXIT_ERROR)
        )

    def format_message(self) -> str:
        text = f"{self.code}: {self.message}"
        for f in self.details.get("fields", [])[:10]:
            text += f"\n  {f.get('field')}: {f.get('message')}"
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text

    def as_dict(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fix:
            err["fix"] = self.fix
        if self.details:
            err["details"] = self.details
        return {"error": err}

    def show(self, file: Any = None) -> None:
        if self.as_json:
            click.echo(json.dumps(self.as_dict(), sort_keys=True, default=str), err=True)
        else:
            click.echo(f"Error: {self.format_message()}", err=True)


def error_text(exc: ClaimantError) -> str:
    """An error in claimant's words: its code and message. A store's message
    is printed as it is: the store contract keeps drivers' text out of every
    message (docs/store-contract.md), and the message says what to do (run
    ``claimant store migrate``, add ``user=`` to the URL), which a fixed
    sentence would hide. The driver's text is in the log, at warning."""
    return f"{exc.code}: {exc.message}"


def failure(exc: ClaimantError, *, exit_code: int, as_json: bool = False) -> CliError:
    """``exc`` as a command's failure with ``exit_code``. A store's failure
    says where its detail is when the log does not show warnings (the
    default of a command run in a terminal)."""
    fix = None
    if isinstance(exc, StoreUnavailable) and not logging.getLogger("claimant").isEnabledFor(
        logging.WARNING
    ):
        fix = LOG_HINT
    return CliError(
        exc.code,
        exc.message,
        fix=fix,
        details=exc.details or None,
        as_json=as_json,
        exit_code=exit_code,
    )
