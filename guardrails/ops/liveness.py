"""Whether another process is still alive, told by a lock file it holds for its whole life.

``OwnerLock(folder)`` creates ``<folder>/<id>.lock`` and holds an exclusive ``flock`` on it until ``release()``.
The kernel drops the lock when the process dies in any way (SIGKILL, OOM killer, crash), so ``is_alive(folder, id)``
answers from the lock alone (``forget`` removes a dead owner's file once its leftovers are dealt with): no pids (which are reused, and differ between containers) and no heartbeats. The file
is locked under a temporary name and then renamed into place, so a lock file that exists unlocked under its final
name always belongs to a dead owner. POSIX only (Linux, macOS), like the rest of the proxy's serving.
"""

from __future__ import annotations

import fcntl
import os
import uuid
from pathlib import Path


class OwnerLock:
    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.id = uuid.uuid4().hex
        self.path = folder / f"{self.id}.lock"
        staging = folder / f".{self.id}.new"
        self._fd: int | None = os.open(staging, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(staging, self.path)
        except OSError:
            os.close(self._fd)
            self._fd = None
            staging.unlink(missing_ok=True)
            raise

    def release(self) -> None:
        """Give the lock up (the owner has nothing left for others to clean up) and remove its file."""
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None


def is_alive(folder: Path, owner: str) -> bool:
    """True while the process that created ``owner``'s lock holds it. Read-only: it only tries the lock (and
    answers True when it may not even read the file, so a live owner is never taken for dead)."""
    try:
        fd = os.open(folder / f"{owner}.lock", os.O_RDONLY)
    except FileNotFoundError:
        return False
    except PermissionError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        return False
    finally:
        os.close(fd)


def forget(folder: Path, owner: str) -> None:
    """Remove a dead owner's lock file (once what it left behind is cleaned up)."""
    (folder / f"{owner}.lock").unlink(missing_ok=True)
