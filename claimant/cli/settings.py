"""``claimant serve``'s config file: Placement's ``placement.conf`` or
claimant's own ``claimant.toml``, read into the command's defaults.

Precedence, strongest first: a command-line flag, its environment variable,
the config file, the built-in default. ``claimant config show`` prints each
effective setting and where it came from.

From a ``placement.conf`` (oslo.config's INI format) claimant takes what has
a meaning here, with Placement's meaning:

======================================================  ======================
``[api] auth_strategy``                                 ``--auth`` (keystone, noauth2)
``[keystone_authtoken]``                                validated tokens (``--auth keystone``)
``[oslo_policy] policy_file``                           ``--policy-file``
``[placement] max_allocation_candidates``               a cap on candidates per request
``[placement] allocation_candidates_generation_strategy``  depth-first or breadth-first
``[placement] randomize_allocation_candidates``         a random sample when limited
``[cors] allowed_origin``                               CORS on the Placement API
``[DEFAULT] debug``                                     ``--log-level debug``
``[workarounds] optimize_for_wide_provider_trees``      accepted: claimant's search always prunes
======================================================  ======================

Anything else is reported once, when the service starts, and ignored: a
Placement option claimant has no use for (``[placement_database]``: claimant
keeps its own store; see ``claimant import placement``) must not stop a
switch-over.

A ``claimant.toml`` has a ``[serve]`` table whose keys are ``claimant
serve``'s options (``store``, ``host``, ``port``, ``auth``, ...; dashes or
underscores) plus the same Placement sections as tables.
"""

from __future__ import annotations

import configparser
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from claimant.cli import tunables
from claimant.model.errors import InvalidInput

STRATEGIES = ("depth-first", "breadth-first")

# (section, option) of a placement.conf -> serve's parameter name.
_TO_SERVE: dict[tuple[str, str], str] = {
    ("api", "auth_strategy"): "auth_mode",
    ("oslo_policy", "policy_file"): "policy_file",
}
# [placement] options -> serve's parameter names.
PLACEMENT_OPTIONS = {
    "max_allocation_candidates": "max_allocation_candidates",
    "allocation_candidates_generation_strategy": "candidate_strategy",
    "randomize_allocation_candidates": "randomize_candidates",
}
_ACCEPTED = {
    ("workarounds", "optimize_for_wide_provider_trees"),
    ("cors", "allowed_origin"),
    ("default", "debug"),
}
# serve's options a claimant.toml may set under [serve] (parameter names).
SERVE_KEYS = (
    "store_url",
    "host",
    "port",
    "auth_mode",
    "token_file",
    "workers",
    "migrate",
    "expire_interval",
    "policy_file",
    "max_body_size",
    "limit_concurrency",
    "timeout_keep_alive",
    "header_timeout",
    "claim_ttl",
    "request_timeout",
    "schedule_timeout",
    "graceful_timeout",
    "access_log",
    "log_level",
    "max_allocation_candidates",
    "candidate_strategy",
    "randomize_candidates",
    "cors_origin",
    "log_format",
    "host_subset_size",
    "heartbeat_timeout",
    "weigher",
    "filter_",
    "plugin_option",
)
_TOML_ALIASES = {"store": "store_url", "auth": "auth_mode"}


@dataclass
class Settings:
    """What a config file says, as ``claimant serve``'s defaults."""

    path: Path | None = None
    #: serve's parameter name -> value
    serve: dict[str, Any] = field(default_factory=dict)
    #: "[section] option" entries that claimant ignores
    ignored: list[str] = field(default_factory=list)
    #: "[section] option" entries taken as they are but changing nothing
    no_effect: list[str] = field(default_factory=list)


def load(path: str | Path) -> Settings:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise InvalidInput(f"cannot read config file {p}: {exc.strerror}") from None
    if p.suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InvalidInput(f"config file {p}: {exc}") from None
        return _from_sections(p, data, toml=True)
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text, source=str(p))
    except configparser.Error as exc:
        raise InvalidInput(f"config file {p}: {exc.message}") from None
    sections: dict[str, dict[str, Any]] = {"DEFAULT": dict(parser.defaults())}
    for name in parser.sections():
        # parser[name] would repeat [DEFAULT]'s options in every section.
        sections[name] = {
            k: v
            for k, v in parser.items(name, raw=True)
            if k not in parser.defaults() or name == "DEFAULT"
        }
    return _from_sections(p, sections, toml=False)


def _from_sections(p: Path, data: dict[str, Any], *, toml: bool) -> Settings:
    out = Settings(path=p)
    for section, options in data.items():
        if not isinstance(options, dict):
            out.ignored.append(f"{section} (not a table)")
            continue
        lower = section.lower()
        if toml and lower in ("scheduler", "logging"):
            # claimant.cli.tunables: the tables serve shares with conductor and agent.
            out.serve.update(tunables.from_file({lower: options}, scheduler=True, expire=True))
            continue
        if toml and lower in ("conductor", "agent"):
            continue  # the other commands' tables
        if toml and lower == "serve":
            for key, value in options.items():
                name = _TOML_ALIASES.get(key, key.replace("-", "_"))
                if name not in SERVE_KEYS:
                    raise InvalidInput(f"config file {p}: [serve] has no option {key!r}")
                out.serve[name] = value
            continue
        if lower == "keystone_authtoken":
            continue  # keystonemiddleware reads this section itself
        for option, value in options.items():
            key = (lower, option)
            if key in _TO_SERVE:
                out.serve[_TO_SERVE[key]] = _text(value)
            elif lower == "placement" and option in PLACEMENT_OPTIONS:
                out.serve[PLACEMENT_OPTIONS[option]] = _placement_value(p, option, value)
            elif key == ("cors", "allowed_origin"):
                origins = value if isinstance(value, list) else _text(value).split(",")
                out.serve["cors_origin"] = tuple(o.strip() for o in origins if o.strip())
            elif key == ("default", "debug"):
                if _bool(p, option, value):
                    out.serve["log_level"] = "debug"
            elif key in _ACCEPTED:
                out.no_effect.append(f"[{section}] {option}")
            else:
                out.ignored.append(f"[{section}] {option}")
    auth = out.serve.get("auth_mode")
    if auth is not None and auth not in ("noauth2", "tokens", "keystone"):
        raise InvalidInput(f"config file {p}: auth_strategy {auth!r}: use keystone or noauth2")
    policy = out.serve.get("policy_file")
    if policy is not None and not Path(policy).is_absolute():
        # oslo.config looks a relative policy_file up beside the config file.
        beside = p.parent / policy
        out.serve["policy_file"] = str(beside) if beside.is_file() else None
        if out.serve["policy_file"] is None:
            del out.serve["policy_file"]
    return out


def _text(value: Any) -> str:
    return str(value).strip()


def _bool(p: Path, option: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value).lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise InvalidInput(f"config file {p}: {option} must be true or false, not {value!r}")


def _placement_value(p: Path, option: str, value: Any) -> Any:
    if option == "max_allocation_candidates":
        try:
            n = int(_text(value))
        except ValueError:
            raise InvalidInput(f"config file {p}: {option} must be an integer") from None
        if n < -1 or n == 0:
            raise InvalidInput(f"config file {p}: {option} must be -1 (no cap) or positive")
        return n
    if option == "allocation_candidates_generation_strategy":
        text = _text(value)
        if text not in STRATEGIES:
            raise InvalidInput(f"config file {p}: {option} must be one of {', '.join(STRATEGIES)}")
        return text
    return _bool(p, option, value)
