"""Process lifetimes that cannot leak: no QEMU outlives its bench, no bench outlives its owner.

A QEMU left behind by a crashed test run eats a core and holds ports until
someone notices, so both links are enforced by the kernel, not by cleanup
code that a SIGKILL would skip:

* children get PR_SET_PDEATHSIG(SIGKILL) before exec, so the kernel kills
  them the instant the bench dies, however it dies;
* the bench watches its owner (the test process, or the shell that ran
  `harness lab up`) through a pidfd, which becomes readable when that process
  exits, even though the owner is not its parent.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
from collections.abc import Callable

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent() -> None:
    """`preexec_fn` for children of the bench. Must be spawned from the main thread:
    the kernel ties the signal to the *thread* that forked, not the process."""
    if _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    # The parent may have died between fork and prctl; then nobody would ever signal us.
    if os.getppid() == 1:
        os._exit(1)


def watch_process(pid: int, on_exit: Callable[[], None]) -> Callable[[], None]:
    """Call `on_exit` (from the running event loop) when process `pid` ends.

    Returns a function that cancels the watch. If the process is already gone,
    `on_exit` is scheduled at once.
    """
    loop = asyncio.get_running_loop()
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        loop.call_soon(on_exit)
        return lambda: None

    def fired() -> None:
        cancel()
        on_exit()

    open_fds = [fd]

    def cancel() -> None:
        # Closing twice could close an unrelated fd that reused the number.
        while open_fds:
            stale = open_fds.pop()
            loop.remove_reader(stale)
            os.close(stale)

    loop.add_reader(fd, fired)
    return cancel
