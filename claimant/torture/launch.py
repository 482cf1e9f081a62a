"""``python -m claimant.torture.launch TTL ARGS...``: the real ``claimant``
command (``serve``, ``conductor serve``), with every scheduler of this process
using a claim TTL of TTL seconds.

Why: neither command has a claim-TTL option (it is the scheduler's config,
300 s by default), and the checker must wait one TTL at the end before it can
call a live claim leaked. Swapping the default here, in the child process the
harness starts, keeps the product unchanged and the command otherwise real.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any


def use_claim_ttl(ttl: float) -> None:
    from claimant.scheduler import Scheduler, SchedulerConfig

    original = Scheduler.__init__

    def init(self: Scheduler, store: Any, config: Any = None, *args: Any, **kw: Any) -> None:
        config = (
            SchedulerConfig(claim_ttl=ttl)
            if config is None
            else dataclasses.replace(config, claim_ttl=ttl)
        )
        original(self, store, config, *args, **kw)

    Scheduler.__init__ = init  # type: ignore[method-assign]


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        raise SystemExit("usage: python -m claimant.torture.launch TTL claimant-args...")
    use_claim_ttl(float(argv[0]))
    from claimant.cli.main import main as claimant

    claimant(argv[1:], prog_name="claimant")


if __name__ == "__main__":
    main(sys.argv[1:])
