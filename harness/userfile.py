"""Opening a file a user (or a customer) named, without ever blocking on it.

`open()` of a FIFO waits for a writer, forever if none comes, so a named pipe
given as a plan, a case, a console log or a bundle would hang the harness
before any size limit applies. The file is opened non-blocking, a FIFO is
refused as bad input, and any other kind is then read normally (a character
device such as /dev/zero is cut by the caller's size limit).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

from harness.errors import Location, UserError


def open_input(file: str | os.PathLike[str]) -> BinaryIO:
    """A binary read handle on `file`; a FIFO is a UserError naming it (exit 2). Missing
    files and directories raise FileNotFoundError / IsADirectoryError as open() does."""
    fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):  # as open() would: callers word this one themselves
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(file))
        if stat.S_ISFIFO(mode):
            raise UserError("is a pipe (FIFO), expected a file", Location(Path(file)))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")
