"""Run one allocation write and die by SIGKILL right after its N-th provider
transaction applied, or right after a phase of the transaction (``locked``:
consumers locked, no pending part yet; ``committed``: the commit LWT applied,
nothing rolled forward): a service process that crashes between partitions.

Usage: python crasher.py STORE_URL N|PHASE JSON  (JSON: a ConsumerAllocations dict)"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any

from claimant.model import ConsumerAllocations
from claimant.store import open_store


def main() -> None:
    url, at, body = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    store = open_store(url)
    if not at.isdigit():

        def hook(phase: str, txn: str) -> None:
            if phase == at:
                os.kill(os.getpid(), signal.SIGKILL)

        store.txn_hook = hook  # type: ignore[attr-defined]
        store.write_allocations([ConsumerAllocations(**body)])
        print("finished")
        return
    n = int(at)
    real = store._cas  # type: ignore[attr-defined]
    applied = [0]

    def cas(*args: Any, **kwargs: Any) -> bool:
        ok = bool(real(*args, **kwargs))
        if ok:
            applied[0] += 1
            if applied[0] == n:
                os.kill(os.getpid(), signal.SIGKILL)
        return ok

    store._cas = cas  # type: ignore[attr-defined]
    store.write_allocations([ConsumerAllocations(**body)])
    print("finished")


if __name__ == "__main__":
    main()
