"""One writer per recording root: an advisory ``flock`` on ``<root>/.lock``.

The kernel drops the lock when its holder dies, however it dies, so a crash never leaves the
directory stuck. The lock file holds the holder's pid and start time (for the refusal
message); its content is informative only, the flock is the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from pathlib import Path
from types import TracebackType

from recorder.errors import RecordingLocked
from recorder.files import make_dirs, storage_errors
from recorder.layout import LOCK_FILE

__all__ = ["DirectoryLock", "lock_holder"]


def lock_holder(root: Path) -> int | None:
    """Return the pid written in ``root``'s lock file, or ``None`` if there is none."""
    try:
        body = json.loads((root / LOCK_FILE).read_text(encoding="utf-8") or "{}")
        pid = body.get("pid")
        return pid if isinstance(pid, int) else None
    except (OSError, ValueError, AttributeError):
        return None


class DirectoryLock:
    """The exclusive right to write a recording root; use as a context manager.

    ``purpose`` (e.g. ``"tape record"``) is written beside the pid for the refusal message.
    """

    def __init__(self, root: Path, *, purpose: str = "tape record") -> None:
        self._root = root
        self._purpose = purpose
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock without waiting.

        Raises:
            RecordingLocked: another process (or another lock object) holds it; the message
                names the holder's pid.
            StorageError: the root cannot be created or the lock file written.
            RuntimeError: this object already holds the lock.
        """
        if self._fd is not None:
            raise RuntimeError("this lock is already held: release it before acquiring again")
        path = self._root / LOCK_FILE
        with storage_errors("locking", path):
            if not self._root.is_dir():
                make_dirs(self._root)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                pid = lock_holder(self._root)
                raise RecordingLocked(str(self._root), pid) from None
            except BaseException:
                os.close(fd)
                raise
            body = {"pid": os.getpid(), "purpose": self._purpose, "since_ns": time.time_ns()}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(body).encode(), 0)
            self._fd = fd

    def release(self) -> None:
        """Give the lock up (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __enter__(self) -> DirectoryLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
