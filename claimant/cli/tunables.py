"""The scheduler's tunables and logging as options of ``serve`` and
``conductor serve`` (logging of ``agent run`` too), each also an environment
variable and a key of ``claimant.toml``:

    [scheduler]                       # serve and conductor serve
    host_subset_size = 5              # --host-subset-size, $CLAIMANT_HOST_SUBSET_SIZE
    heartbeat_timeout = 60            # --heartbeat-timeout (0: off), $CLAIMANT_HEARTBEAT_TIMEOUT
    claim_ttl = 300                   # --claim-ttl, $CLAIMANT_CLAIM_TTL
    expire_interval = 60              # serve only: --expire-interval
    filters = ["AffinityFilter", "AntiAffinityFilter", "SameHostFilter", "DifferentHostFilter"]
    weighers = { RAMWeigher = 1.0, CPUWeigher = 2.0, BuildFailureWeigher = 1e6 }

    [scheduler.options.BuildFailureWeigher]  # a filter's or weigher's own options
    half_life = 300                   # --plugin-option BuildFailureWeigher.half_life=300

    [logging]                         # serve, conductor serve, agent run
    format = "json"                   # --log-format, $CLAIMANT_LOG_FORMAT
    level = "info"                    # --log-level, $CLAIMANT_LOG_LEVEL

The commands run in a terminal (store, sim, torture, import) take
``--log-format`` and ``--log-level`` too (``tool_logging``; default error),
with the same variables and no file.

``--weigher NAME=MULT`` (repeatable; $CLAIMANT_WEIGHERS, space-separated)
sets one weigher's multiplier over the defaults (0 turns it off); ``--filter
NAME`` (repeatable; $CLAIMANT_FILTERS) replaces the default filter list;
``--plugin-option NAME.OPTION=VALUE`` (repeatable; $CLAIMANT_PLUGIN_OPTIONS)
sets one option of a filter or weigher (VALUE is read as JSON, else taken as
a string); given, they replace the file's ``[scheduler.options.NAME]`` tables. Each plugin's options
are checked by its ``Options`` model at start-up (docs/plugins.md).
"""

from __future__ import annotations

import functools
import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from claimant import logs
from claimant.model.errors import ClaimantError

F = TypeVar("F", bound=Callable[..., Any])


def scheduler_options(f: F) -> F:
    for option in reversed(
        (
            click.option(
                "--host-subset-size",
                envvar="CLAIMANT_HOST_SUBSET_SIZE",
                default=5,
                show_default=True,
                type=click.IntRange(1, 1000),
                help="Pick at random among this many best candidates.",
            ),
            click.option(
                "--heartbeat-timeout",
                envvar="CLAIMANT_HEARTBEAT_TIMEOUT",
                default=60.0,
                show_default=True,
                type=click.FloatRange(min=0),
                help="Seconds after an agent's last heartbeat its host is stale "
                "and skipped (0: never).",
            ),
            click.option(
                "--weigher",
                "weigher",
                envvar="CLAIMANT_WEIGHERS",
                multiple=True,
                help="NAME=MULTIPLIER over the defaults (repeatable; 0 turns one off).",
            ),
            click.option(
                "--filter",
                "filter_",
                envvar="CLAIMANT_FILTERS",
                multiple=True,
                help="Filters to run, replacing the default list (repeatable).",
            ),
            click.option(
                "--plugin-option",
                "plugin_option",
                envvar="CLAIMANT_PLUGIN_OPTIONS",
                multiple=True,
                metavar="NAME.OPTION=VALUE",
                help="An option of a filter or weigher (repeatable; VALUE is JSON, else a string).",
            ),
        )
    ):
        f = option(f)
    return f


def log_options(f: F) -> F:
    """``--log-format`` and ``--log-level`` of a service (serve, conductor
    serve, agent run), which sets its logging up itself."""
    return _log_options(f, SERVICE_LOG_LEVEL)


SERVICE_LOG_LEVEL = "info"
# A command run in a terminal (sim, torture, import, store) reports its own
# outcome (a table, an ``Error:`` line): by default its log shows claimant's
# errors only, so that the warnings a run expects (a sim's injected build
# failures, a stopped DC) do not bury it, and a library's lines not at all: the
# Cassandra driver logs a failed connection as an error with its traceback,
# which the command prints as the store's failure, in claimant's words.
# --log-level warning shows both, the driver's text included.
TOOL_LOG_LEVEL = "error"


def tool_logging(f: F) -> F:
    """``--log-format`` / ``--log-level`` (default ``error``) on a command
    run in a terminal, and its logging set up (``claimant.logs``) before it
    runs: nothing reaches stderr through Python's unformatted last resort."""

    @functools.wraps(f)
    def run(*args: Any, log_format: str, log_level: str, **kw: Any) -> Any:
        quiet = log_level in ("error", "critical")
        logs.configure(log_format, log_level, others="critical" if quiet else log_level)
        return f(*args, **kw)

    return _log_options(cast(F, run), TOOL_LOG_LEVEL)


def _log_options(f: F, level: str) -> F:
    f = click.option(
        "--log-format",
        envvar="CLAIMANT_LOG_FORMAT",
        default="text",
        show_default=True,
        type=click.Choice(["text", "json"]),
        help="Log lines as text or one JSON object per line ($CLAIMANT_LOG_FORMAT).",
    )(f)
    return click.option(
        "--log-level",
        envvar="CLAIMANT_LOG_LEVEL",
        default=level,
        show_default=True,
        type=click.Choice(["critical", "error", "warning", "info", "debug"]),
        help="Least severe level logged ($CLAIMANT_LOG_LEVEL).",
    )(f)


def scheduler_config(
    *,
    claim_ttl: float,
    host_subset_size: int,
    heartbeat_timeout: float,
    weigher: tuple[str, ...],
    filter_: tuple[str, ...],
    plugin_option: tuple[str, ...] = (),
) -> Any:
    """A checked ``SchedulerConfig``: unknown plugin names and options a
    plugin refuses are a usage error with the stable code."""
    from claimant.plugins import InvalidPluginOptions
    from claimant.scheduler import SchedulerConfig
    from claimant.scheduler.config import DEFAULT_WEIGHERS
    from claimant.scheduler.filters import FILTERS
    from claimant.scheduler.weighers import WEIGHERS

    weighers = dict(DEFAULT_WEIGHERS)
    for item in (w for chunk in weigher for w in chunk.split(",") if w.strip()):
        name, sep, value = item.partition("=")
        try:
            weighers[name.strip()] = float(value) if sep else 1.0
        except ValueError:
            raise click.BadParameter(
                f"{item!r}: use NAME=MULTIPLIER", param_hint="--weigher"
            ) from None
    kw: dict[str, Any] = {
        "claim_ttl": claim_ttl,
        "host_subset_size": host_subset_size,
        "heartbeat_timeout": heartbeat_timeout or None,
        "weighers": weighers,
        "options": _plugin_options(plugin_option),
    }
    filters = [n.strip() for chunk in filter_ for n in chunk.split(",") if n.strip()]
    if filters:
        kw["filters"] = filters
    try:
        config = SchedulerConfig(**kw)
        for name in config.options:
            check_plugin_name(name)
            if name not in config.filters and name not in config.weighers:
                raise InvalidPluginOptions(
                    f"options for {name}, which the scheduler does not run: add it to "
                    "[scheduler] filters or weighers (--filter, --weigher)",
                    field=name,
                )
        # Built with their options: a plugin may have one without a default.
        for name in config.filters:
            FILTERS.build(name, config.options.get(name))
        for name in config.weighers:
            WEIGHERS.build(name, config.options.get(name))
    except ClaimantError as exc:
        field = exc.details.get("field")
        about_options = isinstance(exc, InvalidPluginOptions) or field in kw["options"]
        hint = PLUGIN_OPTIONS_HINT if about_options else "--weigher/--filter"
        raise click.BadParameter(f"{exc.code}: {exc.message}", param_hint=hint) from None
    return config


PLUGIN_OPTIONS_HINT = "--plugin-option/[scheduler.options]"


def check_plugin_name(name: str) -> None:
    """``UnknownPlugin`` unless a filter or a weigher is called ``name``."""
    from claimant.plugins import UnknownPlugin
    from claimant.scheduler.filters import FILTERS
    from claimant.scheduler.weighers import WEIGHERS

    if name not in FILTERS and name not in WEIGHERS:
        known = sorted({*FILTERS.names(), *WEIGHERS.names()})
        raise UnknownPlugin(
            f"no filter or weigher is called {name!r}; known: {', '.join(known)}", field=name
        )


def _plugin_options(items: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """``NAME.OPTION=VALUE`` items as ``SchedulerConfig.options`` (of one
    source: given as flags or in the environment, they replace the file's)."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, text = item.partition("=")
        name, dot, option = key.strip().partition(".")
        if not sep or not dot or not name or not option.strip():
            raise click.BadParameter(
                f"{item!r}: use NAME.OPTION=VALUE", param_hint=PLUGIN_OPTIONS_HINT
            )
        try:
            value = json.loads(text)
        except ValueError:
            value = text  # a bare word: zone=z2
        out.setdefault(name, {})[option.strip()] = value
    return out


def to_env(config: Any) -> str:
    """The config as serve hands it to its workers (``api.app.ENV_SCHEDULER``)."""
    return json.dumps(
        {
            "claim_ttl": config.claim_ttl,
            "host_subset_size": config.host_subset_size,
            "heartbeat_timeout": config.heartbeat_timeout,
            "weighers": config.weighers,
            "filters": config.filters,
            "options": config.options,
        }
    )


_ALIASES = {"store": "store_url", "config": "config_path"}


def config_file_option(table: str, *, scheduler: bool) -> Callable[[F], F]:
    """``--config-file claimant.toml``: its ``[table]`` (this command's
    options by name), ``[logging]`` and, with ``scheduler``, ``[scheduler]``
    become the command's defaults; flags and variables still win."""

    def load(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
        if value is None:
            return None
        defaults = file_defaults(value, ctx.command, table, scheduler=scheduler)
        ctx.default_map = {**(ctx.default_map or {}), **defaults}
        return value

    return click.option(
        "--config-file",
        envvar="CLAIMANT_CONFIG_FILE",
        type=click.Path(exists=True, dir_okay=False),
        is_eager=True,
        callback=load,
        help=f"A claimant.toml: [{table}]"
        + (", [scheduler]" if scheduler else "")
        + " and [logging] give this command's defaults.",
    )


def file_defaults(
    path: str, command: click.Command, table: str, *, scheduler: bool
) -> dict[str, Any]:
    """``command``'s option defaults from the claimant.toml at ``path``."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise click.BadParameter(f"{path}: {exc}") from None
    defaults = from_file(data, scheduler=scheduler)
    names = {p.name for p in command.params if p.name != "config_file"}
    for key, v in (data.get(table) or {}).items():
        name = _ALIASES.get(key, key.replace("-", "_"))
        if name not in names:
            raise click.BadParameter(f"[{table}] has no option {key!r}")
        defaults[name] = v
    return defaults


def from_file(tables: dict[str, Any], *, scheduler: bool, expire: bool = False) -> dict[str, Any]:
    """Option defaults from claimant.toml's [scheduler] and [logging] tables."""
    out: dict[str, Any] = {}
    sched = (tables.get("scheduler") or {}) if scheduler else {}
    for key, value in sched.items():
        name = key.replace("-", "_")
        if name in ("host_subset_size", "heartbeat_timeout", "claim_ttl"):
            out[name] = value
        elif name == "expire_interval":
            if expire:  # the conductor does not sweep: the service does
                out[name] = value
        elif name == "weighers" and isinstance(value, dict):
            out["weigher"] = tuple(f"{k}={v}" for k, v in value.items())
        elif name == "filters" and isinstance(value, list):
            out["filter_"] = tuple(str(v) for v in value)
        elif name == "options" and isinstance(value, dict):
            out["plugin_option"] = _options_from_file(value)
        else:
            raise click.BadParameter(f"[scheduler] has no option {key!r}", param_hint="config file")
    return _logging(tables, out)


def _options_from_file(tables: dict[str, Any]) -> tuple[str, ...]:
    """``[scheduler.options.NAME]`` tables as ``--plugin-option`` items."""
    items: list[str] = []
    for name, options in tables.items():
        if not isinstance(options, dict):
            raise click.BadParameter(
                f"[scheduler.options.{name}] must be a table of the plugin's options",
                param_hint="config file",
            )
        try:
            check_plugin_name(name)
        except ClaimantError as exc:
            raise click.BadParameter(
                f"{exc.code}: {exc.message}", param_hint="config file"
            ) from None
        for option, value in options.items():
            try:
                text = json.dumps(value, separators=(",", ":"))
            except TypeError:  # a TOML date or time: no plugin option takes one
                text = str(value)
            items.append(f"{name}.{option}={text}")
    return tuple(items)


def _logging(tables: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    for key, value in (tables.get("logging") or {}).items():
        if key not in ("format", "level"):
            raise click.BadParameter(f"[logging] has no option {key!r}", param_hint="config file")
        out["log_" + key] = value
    return out
