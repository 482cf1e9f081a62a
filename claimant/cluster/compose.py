"""A multi-host deployment for people with Docker: one compose file per host.

Each host runs the official ``cassandra:5.0`` image and a claimant API server
next to it. The Cassandra settings the image's entrypoint cannot set from
environment variables (Paxos v2, storage compatibility) are passed as
``-Dcassandra.settings.<key>=<value>`` system properties, which 5.0's
YamlConfigurationLoader applies over cassandra.yaml.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
from pathlib import Path
from typing import Any

from claimant.cluster import CLUSTER_NAME, ClusterError, yamlout
from claimant.cluster.config import NATIVE_PORT, check_dcs, dc_names, dc_of, replication

CLAIMANT_PORT = 8778
CLAIMANT_IMAGE = "claimant:latest"
NOBODY = (65534, 65534)  # Debian's nobody:nogroup, the image's user
# DC names are config.dc_names': one DC is SimpleSnitch's 'datacenter1', so
# keyspaces created against a local one-DC `claimant cluster`
# (NetworkTopologyStrategy, 'datacenter1') mean the same here; several are
# dc1..dcD, hosts round-robin over them like the local nodes.

# Keys the image's entrypoint has no variable for; see module docstring.
CASSANDRA_SETTINGS: dict[str, str] = {
    "paxos_variant": "v2",
    "paxos_state_purging": "repaired",
    "storage_compatibility_mode": "NONE",
}

DOCKERFILE = """\
# claimant API server. Build from a claimant source checkout:
#   docker build -f {dockerfile} -t {image} /path/to/claimant
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY claimant ./claimant
RUN pip install . && rm -rf /src
WORKDIR /
USER nobody
EXPOSE {port}
ENTRYPOINT ["claimant"]
CMD ["serve", "--help"]
"""


def host_addresses(count: int, host_ips: list[str]) -> list[str]:
    """Literal IPs where given, ``${HOSTi_IP}`` compose variables otherwise."""
    if len(host_ips) > count:
        raise ClusterError(f"{len(host_ips)} --host-ip given for {count} hosts")
    out: list[str] = []
    for i in range(1, count + 1):
        if i <= len(host_ips):
            try:
                out.append(str(ipaddress.ip_address(host_ips[i - 1])))
            except ValueError as exc:
                raise ClusterError(f"--host-ip {host_ips[i - 1]!r} is not an IP address") from exc
        else:
            # Compose refuses to start with a clear message if it is unset.
            out.append(f"${{HOST{i}_IP:?set HOST{i}_IP in .env}}")
    return out


def seeds(addresses: list[str], dcs: int = 1) -> list[str]:
    """Two seeds (one if alone): either can introduce a (re)starting node;
    with several DCs the first host of each (hosts 1..D), so that every DC
    has one of its own."""
    return addresses[: min(max(2, dcs), len(addresses))]


def store_url(addresses: list[str], dcs: int = 1, index: int = 1) -> str:
    """The URL host ``index``'s service uses: with several DCs, replicas per
    DC and ``dc`` its own (DC-aware routing; claims stay SERIAL)."""
    if dcs == 1:
        return f"cassandra://{','.join(addresses)}/claimant?rf={min(len(addresses), 3)}"
    per_dc = ",".join(f"{dc}:{n}" for dc, n in replication(len(addresses), dcs).items())
    return f"cassandra://{','.join(addresses)}/claimant?rf={per_dc}&dc={dc_of(index, dcs)}"


def host_compose(
    index: int,
    addresses: list[str],
    *,
    image: str = "cassandra:5.0",
    heap: str = "2G",
    claimant_image: str = CLAIMANT_IMAGE,
    owner: tuple[int, int] | None = None,
    dcs: int = 1,
) -> dict[str, Any]:
    """The compose document for host ``index`` (1-based); ``owner`` is the
    (uid, gid) the token file belongs to (default: this process's); ``dcs``
    data centres, hosts round-robin over them."""
    uid, gid = owner if owner is not None else (os.getuid(), os.getgid())
    services = {
        "cassandra": _cassandra_service(index, addresses, image=image, heap=heap, dcs=dcs),
        "claimant": _claimant_service(index, addresses, claimant_image, (uid, gid), dcs),
    }
    return {"name": "claimant", "services": services}


def _cassandra_service(
    index: int, addresses: list[str], *, image: str, heap: str, dcs: int
) -> dict[str, Any]:
    me = addresses[index - 1]
    extra = " ".join(f"-Dcassandra.settings.{k}={v}" for k, v in CASSANDRA_SETTINGS.items())
    return {
        "image": image,
        "container_name": "claimant-cassandra",
        "restart": "unless-stopped",
        # Host networking: Cassandra binds the host's own routable address, so
        # listen, broadcast and seed addresses are all that one IP and no NAT
        # sits between the nodes (with -p port mapping, listen_address would
        # have to be the container's private IP and broadcast the host's).
        "network_mode": "host",
        "environment": {
            "CASSANDRA_CLUSTER_NAME": CLUSTER_NAME,
            "CASSANDRA_SEEDS": ",".join(seeds(addresses, dcs)),
            "CASSANDRA_LISTEN_ADDRESS": me,
            "CASSANDRA_BROADCAST_ADDRESS": me,
            "CASSANDRA_RPC_ADDRESS": me,
            "CASSANDRA_BROADCAST_RPC_ADDRESS": me,
            "CASSANDRA_ENDPOINT_SNITCH": "GossipingPropertyFileSnitch",
            "CASSANDRA_DC": dc_of(index, dcs),
            "CASSANDRA_RACK": f"rack{index}",
            "CASSANDRA_NUM_TOKENS": "16",
            # cassandra-env.sh wants both or neither; NEWSIZE is unused by G1.
            "MAX_HEAP_SIZE": heap,
            "HEAP_NEWSIZE": "200M",
            "JVM_EXTRA_OPTS": extra,
        },
        # Host directories, not named volumes: data and logs survive the
        # container and are visible on the host. The entrypoint chowns them.
        "volumes": [
            "./cassandra/data:/var/lib/cassandra",
            "./cassandra/log:/var/log/cassandra",
        ],
        "ulimits": {"memlock": -1, "nofile": {"soft": 100000, "hard": 100000}},
        "healthcheck": {
            "test": [
                "CMD-SHELL",
                f"cqlsh {me} {NATIVE_PORT} -e 'SELECT release_version FROM system.local'",
            ],
            "interval": "15s",
            "timeout": "10s",
            "retries": 20,
            "start_period": "180s",
        },
    }


def _claimant_service(
    index: int, addresses: list[str], claimant_image: str, owner: tuple[int, int], dcs: int
) -> dict[str, Any]:
    uid, gid = owner
    return {
        "image": claimant_image,
        "container_name": "claimant-api",
        "restart": "unless-stopped",
        "network_mode": "host",
        "depends_on": {"cassandra": {"condition": "service_healthy"}},
        # The token file is 0600 (claimant refuses a group/world-readable
        # one), so the server must run as its owner; the image's own user,
        # nobody, could not read it. .env overrides the ids when the files
        # are copied to a host as another user.
        "user": f"${{CLAIMANT_UID:-{uid}}}:${{CLAIMANT_GID:-{gid}}}",
        "volumes": ["./secrets/tokens.json:/etc/claimant/tokens.json:ro"],
        "command": [
            "serve",
            "--store",
            store_url(addresses, dcs, index),
            "--host",
            "0.0.0.0",
            "--port",
            str(CLAIMANT_PORT),
            "--auth",
            "tokens",
            "--token-file",
            "/etc/claimant/tokens.json",
        ],
    }


def _header(index: int, count: int) -> str:
    return (
        f"# claimant deployment, host {index} of {count} (written by `claimant cluster compose`).\n"
        "# Start host1 first and wait until it is healthy (`docker compose ps`), then the\n"
        "# others one at a time: new nodes must not bootstrap concurrently.\n"
    )


def readme(
    count: int, addresses: list[str], owner: tuple[int, int] | None = None, dcs: int = 1
) -> str:
    uid, gid = owner if owner is not None else (os.getuid(), os.getgid())
    placeholders = [a for a in addresses if a.startswith("$")]
    env_note = (
        "Some host IPs were not given: each host directory has a `.env` file with\n"
        "`HOSTi_IP=` lines; fill them in (the same on every host) before starting.\n\n"
        if placeholders
        else ""
    )
    dc_note = ""
    if dcs > 1:
        spread = "; ".join(
            f"{dc}: hosts {', '.join(str(i) for i in range(1, count + 1) if dc_of(i, dcs) == dc)}"
            for dc in dc_names(dcs)
        )
        dc_note = (
            f"\nThe hosts form {dcs} data centres ({spread}); CASSANDRA_DC in each\n"
            "`docker-compose.yml` says which. The first host of each DC is a seed.\n"
        )
    return f"""# claimant on {count} host(s) with Docker

Written by `claimant cluster compose`. Each `hostI/` directory goes to host I.
{dc_note}
{env_note}1. Build the claimant image once from a claimant source checkout and load it on
   every host (or push it to your registry and change `image:`):

       docker build -f Dockerfile -t {CLAIMANT_IMAGE} /path/to/claimant
       docker save {CLAIMANT_IMAGE} | ssh HOST docker load

2. On host 1: `cd host1 && docker compose up -d`, wait until
   `docker compose ps` shows cassandra `healthy`.
3. Then on host 2, 3, ... in turn, the same (wait for healthy each time).
4. Check the ring from any host: `docker exec claimant-cassandra nodetool status`
   (every node `UN`).

Cassandra listens on each host's IP ({NATIVE_PORT} CQL, 7000 internode; JMX
only on the host's 127.0.0.1:7199), claimant on port {CLAIMANT_PORT}. Open 7000
between the hosts and {NATIVE_PORT}/{CLAIMANT_PORT} to clients only.

`secrets/tokens.json` holds one random admin token (the same in every host
directory). It is mode 0600 and the claimant container runs as its owner
(`user:` in `docker-compose.yml`, uid {uid} and gid {gid}, the user who ran
`claimant cluster compose`). If the files land on a host owned by another
user, put that user's ids in `hostI/.env`: `CLAIMANT_UID=$(id -u)` and
`CLAIMANT_GID=$(id -g)`; never make the file readable by others (claimant
refuses it). Add reader/service tokens as needed, format
`{{"tokens": {{"TOKEN": {{"role": "admin|service|reader", "project_id": "...",
"user_id": "..."}}}}}}`.

Data lives in `hostI/cassandra/data`, logs in `hostI/cassandra/log`; they
survive `docker compose down`.

Paxos v2 with `paxos_state_purging: repaired` keeps `system.paxos` until a
Paxos repair: run `docker exec claimant-cassandra nodetool repair --paxos-only`
on each host regularly (e.g. daily from cron).
"""


def write_deployment(
    out: Path,
    count: int,
    host_ips: list[str],
    *,
    image: str = "cassandra:5.0",
    heap: str = "2G",
    overwrite: bool = False,
    dcs: int = 1,
) -> list[Path]:
    """Write OUT/README.md, OUT/Dockerfile and OUT/hostI/...; return the paths."""
    if count < 1:
        raise ClusterError("need at least one host")
    check_dcs(dcs, count)
    addresses = host_addresses(count, host_ips)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ClusterError(f"{out} exists and is not empty (use --force to overwrite)")
    out.mkdir(parents=True, exist_ok=True)
    # The API container runs as the token file's owner; run by root, hand the
    # file to nobody rather than run a network server as root.
    owner = (os.getuid(), os.getgid()) if os.geteuid() != 0 else NOBODY
    token = secrets.token_urlsafe(24)
    tokens = {"tokens": {token: {"role": "admin", "project_id": "", "user_id": "admin"}}}
    written: list[Path] = []

    def write(path: Path, text: str, mode: int = 0o644) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Created with its final mode: a secret is never readable, even briefly.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        path.chmod(mode)  # an overwritten file keeps its old mode otherwise
        written.append(path)

    write(out / "README.md", readme(count, addresses, owner, dcs))
    write(
        out / "Dockerfile",
        DOCKERFILE.format(dockerfile="Dockerfile", image=CLAIMANT_IMAGE, port=CLAIMANT_PORT),
    )
    for i in range(1, count + 1):
        host = out / f"host{i}"
        doc = host_compose(i, addresses, image=image, heap=heap, owner=owner, dcs=dcs)
        write(host / "docker-compose.yml", _header(i, count) + yamlout.dump(doc))
        secret = host / "secrets" / "tokens.json"
        write(secret, json.dumps(tokens, indent=2) + "\n", 0o600)
        if (secret.stat().st_uid, secret.stat().st_gid) != owner:
            os.chown(secret, *owner)
        if any(a.startswith("$") for a in addresses):
            lines = [
                f"HOST{j}_IP={host_ips[j - 1] if j <= len(host_ips) else ''}"
                for j in range(1, count + 1)
            ]
            write(host / ".env", "\n".join(lines) + "\n")
        for sub in ("cassandra/data", "cassandra/log"):
            (host / sub).mkdir(parents=True, exist_ok=True)
    return written
