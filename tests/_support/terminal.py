"""Reading what a process draws on a pseudo-terminal, as a person at the screen would see it."""

from __future__ import annotations

import os
import select
import subprocess
import time
from collections.abc import Callable


def read_screen(
    master: int,
    process: subprocess.Popen[bytes],
    timeout: float = 60.0,
    reply: Callable[[bytes], bytes | None] | None = None,
) -> bytes:
    """Everything written to the pty until the process closes it or exits (or ``timeout``).

    ``reply`` sees the screen so far after each read and may return bytes to type (a prompt's
    answer); None types nothing.
    """
    screen = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            screen += chunk
            typed = reply(bytes(screen)) if reply is not None else None
            if typed:
                os.write(master, typed)
        elif process.poll() is not None:
            break
    return bytes(screen)
