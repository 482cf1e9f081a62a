"""gunicorn settings of the test Keystone (server.py).

The master dies with its pytest (tests/children.py); ``post_fork`` makes
each worker die with its master the same way, even while stopped (the
fixture's ``pause``), where gunicorn's own parent check never runs.
Standard library only: it runs in the Keystone virtualenv.
"""

import ctypes
import os
import signal
from typing import Any

PR_SET_PDEATHSIG = 1


def post_fork(server: Any, worker: Any) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    # The master may have died before the prctl: then no signal would come.
    if os.getppid() != worker.ppid:
        os._exit(1)
