"""Resolving the Cassandra jars from Maven Central, once, into a user cache."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import platformdirs

from claimant.cluster import ClusterError

_VERSION = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+(-[A-Za-z0-9.]+)?$")
# Written last: a lib dir without it is a half-finished download.
_COMPLETE = ".complete"

POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>claimant.local</groupId>
  <artifactId>cassandra-jars</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.cassandra</groupId>
      <artifactId>cassandra-all</artifactId>
      <version>{version}</version>
    </dependency>
  </dependencies>
</project>
"""


def cache_root() -> Path:
    """``$CLAIMANT_CASSANDRA_CACHE`` or the platform's user cache dir."""
    override = os.environ.get("CLAIMANT_CASSANDRA_CACHE")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_cache_dir("claimant"))


def lib_dir(version: str) -> Path:
    return cache_root() / f"cassandra-{version}" / "lib"


def check_version(version: str) -> str:
    if not _VERSION.match(version):
        raise ClusterError(f"invalid Cassandra version {version!r}")
    if not version.startswith("5.0."):
        raise ClusterError(
            f"Cassandra {version} is not supported: the JVM options and cassandra.yaml "
            "written here are for 5.0.x"
        )
    return version


def is_resolved(version: str) -> bool:
    lib = lib_dir(version)
    return (lib / _COMPLETE).is_file() and (lib / f"cassandra-all-{version}.jar").is_file()


def resolve(version: str, *, echo: object = None) -> Path:
    """Return the lib dir of ``version``, downloading it with Maven if needed."""
    check_version(version)
    lib = lib_dir(version)
    if is_resolved(version):
        return lib
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ClusterError(
            f"Maven (mvn) is needed once to download Cassandra {version} into {lib}; "
            "install it (e.g. apt-get install maven) and retry"
        )
    lib.parent.mkdir(parents=True, exist_ok=True)
    # Two concurrent `up`s must not download into the same directory.
    with open(lib.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_resolved(version):
            return lib
        if callable(echo):
            echo(f"Downloading Cassandra {version} jars from Maven Central into {lib} ...")
        partial = lib.parent / "lib.partial"
        shutil.rmtree(partial, ignore_errors=True)
        with tempfile.TemporaryDirectory(prefix="claimant-pom-") as tmp:
            (Path(tmp) / "pom.xml").write_text(POM.format(version=version))
            cmd = [
                mvn,
                "-q",
                "-B",
                "dependency:copy-dependencies",
                f"-DoutputDirectory={partial}",
                "-DincludeScope=runtime",
            ]
            try:
                proc = subprocess.run(
                    cmd, cwd=tmp, capture_output=True, text=True, timeout=900, check=False
                )
            except subprocess.TimeoutExpired as exc:
                raise ClusterError("mvn did not finish within 15 minutes") from exc
        if proc.returncode != 0 or not (partial / f"cassandra-all-{version}.jar").is_file():
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise ClusterError(f"mvn could not resolve cassandra-all {version}:\n{tail}")
        shutil.rmtree(lib, ignore_errors=True)
        partial.rename(lib)
        (lib / _COMPLETE).write_text(version + "\n")
    return lib
