"""``python die_with_parent.py OWNER_PID PROGRAM ARGS...``: ask Linux to
SIGKILL this process when its parent dies (PR_SET_PDEATHSIG), then exec
PROGRAM in its place (same pid; the setting survives exec).

Done here rather than in ``Popen(preexec_fn=...)``: code run between fork
and exec in a threaded pytest may deadlock. Standard library only: it runs
under ``python -I -S``.
"""

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def main() -> None:
    owner, argv = int(sys.argv[1]), sys.argv[2:]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    # The owner may have died before the prctl: then no signal would come.
    if os.getppid() != owner:
        sys.exit(f"die_with_parent: parent {owner} is gone")
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main()
