"""A local, real Apache Cassandra cluster for development and tests.

This layer knows nothing about the rest of claimant: it only starts, stops and
describes JVM processes running ``org.apache.cassandra.service.CassandraDaemon``
from the ``cassandra-all`` jars on Maven Central, and writes a multi-host
docker-compose deployment.
"""

from __future__ import annotations

DEFAULT_VERSION = "5.0.8"
DEFAULT_HEAP = "512m"
CLUSTER_NAME = "claimant"
MAX_NODES = 9


class ClusterError(Exception):
    """Any failure the user should see as a one-line message, not a traceback."""
