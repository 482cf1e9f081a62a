"""Empty a claimant store on request: one line in, ``ok`` out.

osc-placement's tests expect an empty Placement database per test (its
fixture builds one). They run in the client's own virtualenv, which has no
claimant; this helper runs under claimant's and stays up for the whole run,
so a reset costs a round trip instead of a Python start-up.
"""

from __future__ import annotations

import sys

from claimant.store import open_store


def main() -> None:
    store = open_store(sys.argv[1])
    try:
        for _line in sys.stdin:
            store.reset()
            sys.stdout.write("ok\n")
            sys.stdout.flush()
    finally:
        store.close()


if __name__ == "__main__":
    main()
