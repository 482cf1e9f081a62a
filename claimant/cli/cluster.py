"""``claimant cluster``: a local real Cassandra cluster, and multi-host compose files."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from claimant.cluster import DEFAULT_HEAP, DEFAULT_VERSION, MAX_NODES, ClusterError
from claimant.cluster.launcher import Cluster, default_dir, describe


def _progress(message: str) -> None:
    click.echo(message, err=True)


@contextmanager
def _errors() -> Iterator[None]:
    """ClusterError -> a one-line click error (exit 1), never a traceback."""
    try:
        yield
    except ClusterError as exc:
        raise click.ClickException(str(exc)) from exc


def dir_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--dir",
        "directory",
        type=click.Path(file_okay=False, path_type=Path),
        default=default_dir,
        envvar="CLAIMANT_CLUSTER_DIR",
        show_default="user data dir/claimant/cluster, or $CLAIMANT_CLUSTER_DIR",
        help="Directory holding the cluster's state, config, data and logs.",
    )(func)


def timeout_option(default: float) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--timeout",
        type=click.FloatRange(min=1),
        default=default,
        show_default=True,
        help="Seconds to wait for each node.",
    )


node_option = click.option(
    "--node",
    "index",
    type=click.IntRange(1, MAX_NODES),
    default=None,
    help="Only this node (1-based); default: all.",
)

dc_option = click.option(
    "--dc",
    default=None,
    metavar="DC",
    help="Only the nodes of this data centre (dc1, dc2, ...; see `status`).",
)


@click.group()
def cluster() -> None:
    """Run a local Apache Cassandra cluster (real JVMs, no Docker) for claimant."""


@cluster.command()
@click.option(
    "-n", "--nodes", "count", type=click.IntRange(1, MAX_NODES), default=1, show_default=True
)
@dir_option
@click.option("--version", default=DEFAULT_VERSION, show_default=True, help="Cassandra 5.0.x.")
@click.option("--heap", default=DEFAULT_HEAP, show_default=True, help="JVM heap per node.")
@click.option(
    "--base-address",
    default=None,
    help="Node 1's address, 127.0.0.X; node I gets 127.0.0.(X+I-1). "
    "Default 127.0.0.1, or what the cluster in DIR was created with.",
)
@click.option(
    "--dcs",
    type=click.IntRange(1, MAX_NODES),
    default=None,
    help="Data centres dc1..dcD, nodes round-robin over them (node I in dc((I-1)%D+1)), "
    "GossipingPropertyFileSnitch, one rack each. Default 1 (SimpleSnitch, 'datacenter1'), "
    "or what the cluster in DIR was created with.",
)
@click.option(
    "--auth",
    is_flag=True,
    help="PasswordAuthenticator: the default cassandra superuser is replaced by a role "
    "'claimant' whose password is written to DIR/auth/password (0600).",
)
@click.option(
    "--tls",
    is_flag=True,
    help="Client TLS only on the native port, with a generated keystore; clients trust "
    "DIR/tls/ca.pem.",
)
@timeout_option(180)
def up(
    count: int,
    directory: Path,
    version: str,
    heap: str,
    base_address: str | None,
    dcs: int | None,
    auth: bool,
    tls: bool,
    timeout: float,
) -> None:
    """Start N nodes on 127.0.0.1..N (or from --base-address) and wait for CQL.

    Idempotent: nodes already running are left alone, stopped ones are started.
    The store URL printed carries the login and TLS options, never a password.
    """
    began = time.monotonic()
    with _errors():
        c = Cluster(directory)
        c.up(
            count,
            version=version,
            heap=heap,
            timeout=timeout,
            echo=_progress,
            base_address=base_address,
            auth=auth,
            tls=tls,
            dcs=dcs,
        )
        addresses = c.contact_points()
        url_text = c.store_url()
    _progress(f"cluster of {count} up in {time.monotonic() - began:.1f}s ({c.dir})")
    for line in describe(addresses, url_text):
        click.echo(line)


@cluster.command()
@node_option
@dc_option
@dir_option
@timeout_option(180)
def start(index: int | None, dc: str | None, directory: Path, timeout: float) -> None:
    """Start stopped nodes (all, --node I or --dc DC) and wait for CQL."""
    with _errors():
        Cluster(directory).start(index, timeout=timeout, echo=_progress, dc=dc)


@cluster.command()
@node_option
@dc_option
@dir_option
@timeout_option(60)
def stop(index: int | None, dc: str | None, directory: Path, timeout: float) -> None:
    """Stop nodes (all, --node I or --dc DC): SIGTERM (drain), SIGKILL after --timeout."""
    with _errors():
        outcome = Cluster(directory).stop(index, timeout=timeout, echo=_progress, dc=dc)
    for i, what in sorted(outcome.items()):
        click.echo(f"node{i}: {what}")


@cluster.command()
@dir_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--check", is_flag=True, help="Exit with status 1 unless every node is up.")
def status(directory: Path, as_json: bool, check: bool) -> None:
    """Show each node: address, data centre, pid, up/starting/down."""
    with _errors():
        c = Cluster(directory)
        nodes = c.status()
        state = c.load()
        url_text = c.store_url()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "dir": str(c.dir),
                    "version": state.version,
                    "dcs": state.dcs,
                    "store_url": url_text,
                    "nodes": [
                        {
                            "node": n.index,
                            "address": n.address,
                            "dc": n.dc,
                            "pid": n.pid,
                            "state": n.state,
                            "jmx_port": n.jmx_port,
                            "log": str(n.log),
                        }
                        for n in nodes
                    ],
                },
                indent=2,
            )
        )
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"Cassandra {state.version} cluster in {c.dir}")
        for col in ("node", "address", "dc", "state", "pid", "jmx", "log"):
            table.add_column(col)
        colour = {"up": "green", "starting": "yellow", "down": "red"}
        for n in nodes:
            table.add_row(
                f"node{n.index}",
                n.address,
                n.dc,
                f"[{colour[n.state]}]{n.state}[/]",
                str(n.pid or "-"),
                str(n.jmx_port),
                str(n.log),
            )
        console = Console()
        console.print(table)
        console.print(f"store URL: {url_text}", highlight=False)
    if check and any(n.state != "up" for n in nodes):
        raise SystemExit(1)


@cluster.command()
@dir_option
def url(directory: Path) -> None:
    """Print the store URL of the cluster (for --store / scripts)."""
    with _errors():
        click.echo(Cluster(directory).store_url())


@cluster.command(context_settings={"ignore_unknown_options": True})
@click.option("--node", "index", type=click.IntRange(1, MAX_NODES), default=1, show_default=True)
@dir_option
@click.argument("args", nargs=-1, type=click.UNPROCESSED, required=True)
def nodetool(index: int, directory: Path, args: tuple[str, ...]) -> None:
    """Run Cassandra's nodetool against a node, e.g. `nodetool status`.

    Put `--` before nodetool options: `claimant cluster nodetool -- repair --paxos-only`.
    """
    import subprocess

    from claimant.cluster import config, jars
    from claimant.cluster import node as proc

    with _errors():
        c = Cluster(directory)
        state = c.load()
        spec = c.spec(index)
        if index > state.node_count:
            raise ClusterError(f"no node {index}: this cluster has nodes 1..{state.node_count}")
        java = proc.find_java()
        lib = jars.resolve(state.version, echo=_progress)
        if not (spec.conf_dir / "logback-tools.xml").is_file():
            spec.conf_dir.mkdir(parents=True, exist_ok=True)
            (spec.conf_dir / "logback-tools.xml").write_text(config.TOOLS_LOGBACK)
        cmd = config.nodetool_command(java, spec, lib, list(args))
    raise SystemExit(subprocess.run(cmd, check=False).returncode)


@cluster.command()
@dir_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@timeout_option(60)
def destroy(directory: Path, yes: bool, timeout: float) -> None:
    """Stop every node and delete the directory with all data."""
    c = Cluster(directory)
    if not c.dir.exists():
        click.echo(f"nothing to destroy: {c.dir} does not exist")
        return
    if not yes:
        click.confirm(f"Stop all nodes and delete {c.dir} with all its data?", abort=True)
    with _errors():
        c.destroy(timeout=timeout, echo=_progress)
    click.echo(f"destroyed {c.dir}")


@cluster.command()
@click.option(
    "-n",
    "--nodes",
    "count",
    type=click.IntRange(1, 99),
    default=3,
    show_default=True,
    help="Number of hosts (one Cassandra node each).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("claimant-deploy"),
    show_default=True,
    help="Output directory.",
)
@click.option(
    "--host-ip",
    "host_ips",
    multiple=True,
    help="IP of host 1, 2, ... in order (repeat); missing ones become ${HOSTi_IP}.",
)
@click.option(
    "--dcs",
    type=click.IntRange(1, 99),
    default=1,
    show_default=True,
    help="Data centres dc1..dcD, hosts round-robin over them (1: 'datacenter1').",
)
@click.option("--image", default="cassandra:5.0", show_default=True, help="Cassandra image.")
@click.option("--heap", default="2G", show_default=True, help="Cassandra heap per host.")
@click.option("--force", is_flag=True, help="Overwrite existing files in --out.")
def compose(
    count: int,
    out: Path,
    host_ips: tuple[str, ...],
    dcs: int,
    image: str,
    heap: str,
    force: bool,
) -> None:
    """Write a multi-host docker-compose deployment (one directory per host)."""
    from claimant.cluster.compose import write_deployment

    with _errors():
        written = write_deployment(
            out, count, list(host_ips), image=image, heap=heap, overwrite=force, dcs=dcs
        )
    for path in written:
        click.echo(str(path))
