"""An exclusive inter-process lock on a file (fcntl.flock), waited for with a deadline."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from jetstream.errors import TransientError


class FileLock:
    """Exclusive lock on `path`. Two holders in one process (threads) also exclude each other,
    because every `acquire` opens its own file description."""

    def __init__(self, path: str | Path, timeout: float = 600.0):
        self.path = str(path)
        self.timeout = timeout
        self._fd: int | None = None

    def acquire(self, deadline: float | None = None) -> None:
        if self._fd is not None:
            raise RuntimeError(f"lock {self.path} is already held by this object")
        deadline = time.monotonic() + self.timeout if deadline is None else deadline
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._fd = fd
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise TransientError(
                        f"{self.path}: still locked by another process after {self.timeout:.0f} s"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.25)

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None
