"""Owners of the audit log's pending rows: each process writing the log takes an owner id for its whole life, and
any process can tell whether an owner is still alive, from a lock the operating system or the database server
drops when the owner dies in any way (killed, crashed, out of memory). No pids and no heartbeats.

- :class:`FileOwners` (a SQLite file): a lock file per owner in a folder beside the log (``liveness.py``).
- :class:`AdvisoryOwners` (Postgres): a session-level advisory lock per owner, held on one connection kept open
  for the process's life; the server releases it when that connection ends. Liveness is read from ``pg_locks``
  without taking anything. If the server restarts, a live process's lock is gone with its connection, so its
  answers in flight may be marked ``interrupted`` by another process and then also recorded by their own.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, Engine, text

from shieldkit.guardrails.ops.liveness import OwnerLock, forget, is_alive


class Owners(Protocol):
    def take(self) -> str: ...  # this process's owner id, held until release()
    def is_alive(self, owner: str, db: Connection | None = None) -> bool: ...
    def forget(self, owner: str) -> None: ...  # a dead owner's traces, once its rows are dealt with
    def release(self) -> None: ...


class FileOwners:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock: OwnerLock | None = None

    def take(self) -> str:
        self._lock = OwnerLock(self.folder)
        return self._lock.id

    def is_alive(self, owner: str, db: Connection | None = None) -> bool:
        return is_alive(self.folder, owner)

    def forget(self, owner: str) -> None:
        forget(self.folder, owner)

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def lock_key(owner: str) -> int:
    """The signed 64-bit advisory lock key of an owner id (the first 16 hex digits of its uuid)."""
    value = int(owner[:16], 16)
    return value - (1 << 64) if value >= 1 << 63 else value


class AdvisoryOwners:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._holder: Connection | None = None
        self._owner: str | None = None

    def take(self) -> str:
        holder = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")  # never idle in a transaction
        try:
            while True:  # another owner's key colliding with a fresh uuid's is unlikely; take the next one then
                owner = uuid.uuid4().hex
                if holder.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": lock_key(owner)}).scalar():
                    break
        except BaseException:
            holder.close()
            raise
        self._holder, self._owner = holder, owner
        return owner

    def is_alive(self, owner: str, db: Connection | None = None) -> bool:
        key = lock_key(owner) % (1 << 64)  # pg_locks shows a bigint key as its high and low 32 bits
        query = text("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 AND granted"
                     " AND classid::bigint = :high AND objid::bigint = :low)")
        params = {"high": key >> 32, "low": key & 0xFFFF_FFFF}
        if db is not None:
            return bool(db.execute(query, params).scalar())
        with self.engine.connect() as connection:
            return bool(connection.execute(query, params).scalar())

    def forget(self, owner: str) -> None:
        """Nothing to remove: a dead owner's lock went with its connection."""

    def release(self) -> None:
        if self._holder is None:
            return
        try:
            self._holder.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": lock_key(self._owner)})
        finally:
            self._holder.close()
            self._holder = self._owner = None
