"""What a driver error on a statement routed to a cell means (no node
needed): a read whose every host there is going away is that cell
unreachable (``cell_unavailable``, which lookups in other cells skip); a
write failing so may have been applied and is not. Before, a read failing on
a stopping DC's closing connections was ``store_unavailable``, and a live
cell's lookups in that DC failed with it (docs/cells.md, "A live cell while
another stops"; live: tests/cluster/test_live_dc_down.py)."""

from __future__ import annotations

import pytest
from cassandra import ConsistencyLevel, OperationTimedOut, ReadTimeout, Unavailable
from cassandra.cluster import NoHostAvailable
from cassandra.connection import ConnectionException, ConnectionShutdown
from cassandra.protocol import OverloadedErrorMessage

from claimant.model import CellUnavailable, StoreUnavailable
from claimant.store.cassandra.errors import _cell_error

HOST, OTHER = "127.0.0.20:9042", "127.0.0.30:9042"


def _none_answered(*errors: BaseException) -> NoHostAvailable:
    hosts = [HOST, OTHER]
    return NoHostAvailable(
        "Unable to complete the operation against any hosts", dict(zip(hosts, errors, strict=False))
    )


SHUT = ConnectionShutdown(f"Connection to {HOST} is defunct: [Errno 104] Connection reset by peer")
POOL = ConnectionException(f"Pool for {HOST} is shutdown")
DRAINING = OverloadedErrorMessage(0x1001, "Server is shutting down", None)
BUSY = OverloadedErrorMessage(0x1001, "Too many pending requests", None)
REFUSED = ConnectionRefusedError(111, "Connection refused")


@pytest.mark.parametrize(
    ("exc", "read", "code"),
    [
        pytest.param(_none_answered(), False, "cell_unavailable", id="no-host-up"),
        pytest.param(_none_answered(), True, "cell_unavailable", id="no-host-up-read"),
        pytest.param(
            Unavailable("", ConsistencyLevel.LOCAL_QUORUM, 1, 0),
            False,
            "cell_unavailable",
            id="too-few-replicas",
        ),
        # The moment before the driver marks a stopping DC's hosts down.
        pytest.param(_none_answered(SHUT), True, "cell_unavailable", id="read-connection-reset"),
        pytest.param(_none_answered(POOL), True, "cell_unavailable", id="read-pool-shut"),
        pytest.param(_none_answered(DRAINING), True, "cell_unavailable", id="read-node-draining"),
        pytest.param(_none_answered(REFUSED), True, "cell_unavailable", id="read-refused"),
        pytest.param(_none_answered(SHUT, POOL), True, "cell_unavailable", id="read-both-gone"),
        # A busy node, or one that answered too late, is not gone.
        pytest.param(_none_answered(BUSY), True, "store_unavailable", id="read-node-busy"),
        pytest.param(
            _none_answered(SHUT, OperationTimedOut("timed out")),
            True,
            "store_unavailable",
            id="read-one-host-slow",
        ),
        pytest.param(
            ReadTimeout("", consistency=ConsistencyLevel.LOCAL_QUORUM),
            True,
            "store_unavailable",
            id="read-timeout",
        ),
        # A write may have reached the node before its connection closed.
        pytest.param(_none_answered(SHUT), False, "store_unavailable", id="write-connection-reset"),
        pytest.param(
            _none_answered(DRAINING), False, "store_unavailable", id="write-node-draining"
        ),
    ],
)
def test_cell_error(exc: BaseException, read: bool, code: str) -> None:
    out = _cell_error(exc, "dc1", read=read)
    assert isinstance(out, StoreUnavailable)
    assert out.code == code
    if code == "cell_unavailable":
        assert isinstance(out, CellUnavailable)
        assert out.details["cell"] == "dc1"
        assert out.message == "cell dc1 is unreachable"  # never the driver's text
