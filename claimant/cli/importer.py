"""``claimant import placement``: copy an OpenStack Placement database into a
claimant store, or (``--verify``) compare what both services answer.

Exit codes (stable): 0 done / no difference; 1 differences found
(``--verify``); 2 bad usage; 3 refused, nothing written (the target is not
empty, or the source uses names claimant does not know); 4 failed part-way
(run again with ``--resume``) or a service could not be read.

A failure prints as every command's (``claimant.cli.errors``), with a stable
code: ``source_unavailable`` (the Placement database cannot be read),
``import_refused``, ``import_failed``, ``service_unavailable`` (``--verify``),
or the target store's own; with ``--json`` as one JSON line on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any, Final, NoReturn

import click

from claimant.cli.errors import CliError, failure
from claimant.cli.store import store_option
from claimant.cli.tunables import tool_logging

EXIT_DIFFERENT: Final = 1
EXIT_REFUSED: Final = 3
EXIT_FAILED: Final = 4


def _fail(code: str, message: str, exit_code: int, as_json: bool) -> NoReturn:
    raise CliError(code, message, exit_code=exit_code, as_json=as_json)


@click.group("import")
def import_() -> None:
    """Bring data over from another system."""


@import_.command()
@click.option(
    "--from",
    "source_url",
    metavar="DB_URL",
    help="Placement's database, as in its [placement_database] connection:"
    " mysql+pymysql://user:pw@host/placement, sqlite:///placement.db.",
)
@store_option
@click.option("--resume", is_flag=True, help="Carry on an interrupted import into this store.")
@click.option("--force", is_flag=True, help="Erase everything the target store holds first.")
@click.option(
    "--batch-size",
    type=click.IntRange(1, 100_000),
    default=500,
    show_default=True,
    help="Providers per write (consumers: twice as many).",
)
@click.option("--verify", is_flag=True, help="Compare the two services instead of importing.")
@click.option("--placement-url", metavar="URL", help="--verify: the source Placement service.")
@click.option(
    "--placement-token",
    envvar="OS_TOKEN",
    default="admin",
    show_default=True,
    help="--verify: X-Auth-Token for Placement ($OS_TOKEN; 'admin' suits noauth2).",
)
@click.option(
    "--url",
    envvar="CLAIMANT_URL",
    metavar="URL",
    help="--verify: the claimant service ($CLAIMANT_URL).",
)
@click.option(
    "--token",
    envvar="CLAIMANT_TOKEN",
    default="admin",
    show_default=True,
    help="--verify: X-Auth-Token for claimant ($CLAIMANT_TOKEN).",
)
@click.option(
    "--sample",
    type=click.IntRange(1, 100_000),
    default=200,
    show_default=True,
    help="--verify: provider trees and consumers read one by one (all when fewer).",
)
@click.option(
    "--candidates",
    "extra_requests",
    multiple=True,
    metavar="QUERY",
    help="--verify: another allocation-candidates query to compare, e.g."
    " 'resources=VCPU:4,MEMORY_MB:8192&required=HW_CPU_X86_AVX2' (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@tool_logging
def placement(
    source_url: str | None,
    store_url: str | None,
    resume: bool,
    force: bool,
    batch_size: int,
    verify: bool,
    placement_url: str | None,
    placement_token: str,
    url: str | None,
    token: str,
    sample: int,
    extra_requests: tuple[str, ...],
    as_json: bool,
) -> None:
    """Import an OpenStack Placement database (or --verify an import).

    \b
    claimant import placement --from mysql+pymysql://placement:pw@db/placement --store URL
    claimant import placement --verify --placement-url http://placement:8778 --url http://claimant:8778
    """
    if verify:
        if not placement_url or not url:
            raise click.UsageError("--verify needs --placement-url and --url (or $CLAIMANT_URL)")
        _verify(placement_url, placement_token, url, token, sample, extra_requests, as_json)
        return
    if not source_url:
        raise click.UsageError("--from DB_URL is required (or --verify)")
    if resume and force:
        raise click.UsageError("--resume and --force exclude each other")
    _import(source_url, store_url, resume, force, batch_size, as_json)


def _import(
    source_url: str, store_url: str | None, resume: bool, force: bool, batch: int, as_json: bool
) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from claimant.cli.store import _url
    from claimant.importer.placement import ImportFailed, ImportRefused, import_placement
    from claimant.importer.source import PlacementSource, SourceError
    from claimant.model.errors import ClaimantError
    from claimant.store import open_store

    err = Console(stderr=True)
    try:
        source = PlacementSource(source_url)
    except SourceError as exc:
        _fail("source_unavailable", str(exc), EXIT_FAILED, as_json)
    try:
        target = open_store(_url(store_url))
        target.migrate()
        if force:
            err.print(f"erasing {target.url} (--force)")
            target.reset()
        counts = source.counts()
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err,
            disable=not err.is_terminal,
        ) as bar:
            tasks = {
                "providers": bar.add_task("providers", total=counts.providers),
                "consumers": bar.add_task("consumers", total=counts.consumers),
            }
            report = import_placement(
                source,
                target,
                resume=resume,
                provider_batch=batch,
                consumer_batch=batch * 2,
                progress=lambda phase, n: bar.advance(tasks[phase], n),
                counts=counts,
            )
    except ImportRefused as exc:
        _fail("import_refused", str(exc), EXIT_REFUSED, as_json)
    except (ImportFailed, SourceError) as exc:
        why = f"{exc} (what was written stays: run again with --resume)"
        _fail("import_failed", why, EXIT_FAILED, as_json)
    except ClaimantError as exc:
        raise failure(exc, exit_code=EXIT_FAILED, as_json=as_json) from exc
    finally:
        source.close()
    target.close()
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, sort_keys=True))
        return
    c = report.counts
    took = sum(report.seconds.values())
    click.echo(
        f"imported {c.providers} providers, {c.inventories} inventories, {c.consumers} consumers"
        f" and {c.allocations} allocation rows into {target.url} in {took:.1f} s"
        f" ({report.providers_per_second:.0f} providers/s);"
        f" newly written: {report.providers} providers, {report.consumers} consumers,"
        f" {report.resource_classes} custom classes, {report.traits} custom traits"
    )


def _verify(
    placement_url: str,
    placement_token: str,
    url: str,
    token: str,
    sample: int,
    extra: tuple[str, ...],
    as_json: bool,
) -> None:
    from claimant.importer.verify import ServiceError, verify

    try:
        result = verify(
            placement_url,
            url,
            source_token=placement_token,
            target_token=token,
            sample=sample,
            extra_requests=list(extra),
        )
    except ServiceError as exc:
        _fail("service_unavailable", str(exc), EXIT_FAILED, as_json)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2, sort_keys=True))
    else:
        _render(result)
    if result.differences:
        sys.exit(EXIT_DIFFERENT)


def _render(result: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    out = Console(width=80, soft_wrap=False)
    if result.differences:
        table = Table(title=f"{len(result.differences)} difference(s)", title_justify="left")
        table.add_column("GET", overflow="fold", ratio=3)
        table.add_column("where", overflow="fold", ratio=2)
        table.add_column("Placement", overflow="fold", ratio=2)
        table.add_column("claimant", overflow="fold", ratio=2)
        for d in result.differences[:200]:
            table.add_row(d.path, d.where, d.source, d.target)
        out.print(table)
        if len(result.differences) > 200:
            out.print(f"... and {len(result.differences) - 200} more (--json lists every one)")
    click.echo(
        f"compared {result.requests} GETs ({result.providers} providers,"
        f" {result.consumers} consumers, {result.candidate_queries} candidate queries):"
        f" {'no difference' if not result.differences else 'DIFFERENT'}"
    )
