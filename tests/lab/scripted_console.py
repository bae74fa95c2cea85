"""A labgrid ConsoleProtocol stand-in for board behaviour that real boards show only by chance
(a key lost after U-Boot's countdown, a kernel message inside a command's framing).

Subclasses decide what the "board" answers in `write`; reads hand out what was queued and time
out (as labgrid's serial driver does) when nothing is left.
"""

from __future__ import annotations

import pexpect


class ScriptedConsole:
    def __init__(self, output: bytes = b"") -> None:
        self.output = bytearray(output)

    def read(self, size: int = 1, timeout: float = 0.0, max_size: int | None = None) -> bytes:
        if not self.output:
            raise pexpect.TIMEOUT("no output")
        count = max_size or size
        data, self.output = bytes(self.output[:count]), self.output[count:]
        return data

    def write(self, data: bytes) -> None:
        raise NotImplementedError
