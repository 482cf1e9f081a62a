"""What ``claimant conductor`` and ``claimant agent`` share: where a token
comes from, and the refusal to listen beyond loopback without one."""

from __future__ import annotations

import click

from claimant.cli.serve import is_loopback
from claimant.model.errors import ClaimantError

# claimant.agent.guard's bounds, repeated so that the client commands need
# not import the HTTP stack (tests/e2e/test_service_cli.py keeps them equal).
DEFAULT_MAX_BODY = 1024 * 1024
MIN_MAX_BODY = 1024

TOKEN_ENV = "CLAIMANT_LOOP_TOKEN"
TOKEN_FILE_ENV = "CLAIMANT_LOOP_TOKEN_FILE"


def one_token(token: str | None, token_file: str | None) -> str | None:
    """``--token`` or ``--token-file`` (one token on its first line, mode 0600)."""
    if token and token_file:
        raise click.UsageError("give --token or --token-file, not both")
    if token_file:
        from claimant.agent.guard import read_token_file

        try:
            return read_token_file(token_file)
        except ClaimantError as exc:
            raise click.BadParameter(exc.message, param_hint="--token-file") from None
    return token or None


def refuse_open_bind(host: str, has_token: bool) -> None:
    if not has_token and not is_loopback(host):
        raise click.UsageError(
            f"refusing to bind {host} without a token (anyone could build, destroy or "
            "re-route builds); use --token-file FILE, or bind 127.0.0.1"
        )


token_option = click.option(
    "--token",
    envvar=TOKEN_ENV,
    default=None,
    help=f"One shared X-Auth-Token (${TOKEN_ENV}); it shows in ps, prefer --token-file.",
)
token_file_option = click.option(
    "--token-file",
    envvar=TOKEN_FILE_ENV,
    type=click.Path(dir_okay=False),
    default=None,
    help=f"File holding the token on its first line, mode 0600 (${TOKEN_FILE_ENV}).",
)
