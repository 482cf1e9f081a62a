"""The HTTP client under every ``claimant`` client command (provider, request,
claim, top, the catalogue): one session, ``--url`` / ``--token``, and every
failure turned into a ``CliError`` (cli/errors.py) with a stable code, an
exit code scripts can trust, and the fix where there is one. Never a
traceback."""

from __future__ import annotations

import functools
import re
import urllib.parse
import uuid as uuidlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import click

from claimant.cli.errors import CliError
from claimant.cli.output import Out, out_of, output_options
from claimant.http_client import JsonClient, Unreachable

DEFAULT_URL = "http://127.0.0.1:8778"


def _fix(code: str, message: str, details: dict[str, Any]) -> str | None:
    """What to do about an error, named as a command where there is one."""
    if code == "invalid_input":
        traits = details.get("traits") or re.findall(r"no such trait\(s\): (.+)", message)
        if traits:
            names = traits if isinstance(traits, list) else traits[0].split(", ")
            return "create it with " + ", ".join(f"`claimant trait create {n}`" for n in names)
        m = re.search(r"no such resource class: (\S+)", message)
        if m:
            return f"create it with `claimant resource-class create {m.group(1)}`"
        if "no such resource type" in message:
            return "`claimant resource-type list` shows the types"
        if "no provider named" in message:
            return "`claimant provider list` shows the names"
    if code == "not_found" and details.get("kind") == "provider":
        return "`claimant provider list` shows the names"
    if code == "generation_conflict":
        return "another writer changed it first: run the command again"
    if code == "no_valid_host":
        return "`claimant top` shows what is free; `claimant provider list` shows health"
    if code == "in_use" and "provider" in message:
        return "`claimant provider drain NAME` shows what still runs there"
    if code in ("forbidden", "unauthorized"):
        return "use a token with the role this needs (--token or $CLAIMANT_TOKEN)"
    return None


class Api:
    def __init__(self, url: str, token: str, out: Out) -> None:
        self.url = url.rstrip("/")
        self.out = out
        self.http = JsonClient(self.url, token=token, timeout=60)

    def fail(self, code: str, message: str, **kw: Any) -> NoReturn:
        raise CliError(code, message, as_json=self.out.machine, **kw)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            r = self.http.request(method, "/v1" + path, **kwargs)
        except Unreachable as exc:
            self.fail(
                "unreachable",
                f"cannot reach {exc}",
                fix="start it with `claimant serve`, or point --url / $CLAIMANT_URL at it",
            )
        if not r.ok:
            err = r.error
            fix = _fix(err.code, err.message, err.details)
            self.fail(err.code, err.message, fix=fix, details=err.details)
        return r.data

    def provider(self, ref: str, *, usage: bool = False) -> dict[str, Any]:
        """A provider by uuid or name (the server takes either)."""
        params = {"include": "usage"} if usage else None
        found: dict[str, Any] = self.call("GET", f"/providers/{_path(ref)}", params=params)
        return found

    def provider_uuid(self, ref: str) -> str:
        try:
            return str(uuidlib.UUID(ref))
        except ValueError:
            return str(self.provider(ref)["uuid"])

    def provider_names(self) -> dict[str, str]:
        """uuid -> name of every provider (one call), to print names, not uuids."""
        return {p["uuid"]: p["name"] for p in self.call("GET", "/providers")["providers"]}


def _path(ref: str) -> str:
    return urllib.parse.quote(ref, safe="")


def api_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--url``, ``--token``, ``--json`` and ``-o``."""
    func = output_options(func)
    func = click.option(
        "--token",
        envvar="CLAIMANT_TOKEN",
        default="admin",
        show_default=True,
        help="x-auth-token to send ($CLAIMANT_TOKEN).",
    )(func)
    func = click.option(
        "--url",
        envvar="CLAIMANT_URL",
        default=DEFAULT_URL,
        show_default=True,
        help="claimant server ($CLAIMANT_URL).",
    )(func)
    return func


@contextmanager
def connect(url: str, token: str, as_json: bool, output: str | None) -> Iterator[Api]:
    api = Api(url, token, out_of(as_json, output))
    try:
        yield api
    finally:
        api.http.close()


def with_api(func: Callable[..., Any]) -> Callable[..., Any]:
    """A command body that takes ``api: Api`` first, with the api options added."""

    @functools.wraps(func)
    def wrapper(url: str, token: str, as_json: bool, output: str | None, **kw: Any) -> Any:
        with connect(url, token, as_json, output) as api:
            return func(api, **kw)

    return api_options(wrapper)
