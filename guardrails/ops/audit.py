"""The audit log: one row per checked direction of a request, one row per check result, in a SQLite file (the
default) or a database every worker and machine shares (Postgres), through SQLAlchemy Core (``audit_db.py``; the
tables and their migrations are in ``audit_schema.py``, applied when the log opens).

Writes go through a queue to one writer thread that writes what has gathered in one transaction (batches of up to
256 events), so a request never waits for the database. ``close`` writes everything queued before it returns, so a
clean shutdown loses no row; a write that fails (the database is down) is logged with the number of events lost
and counted in ``failures``. Texts are stored only when the policy says ``keep_text``.

No answer goes missing silently. The input row of a request that is forwarded to the model is written together
with a ``pending`` row naming the process that owns it (``owners.py``: a lock file beside a SQLite file, an
advisory lock in Postgres); the request's output row (its checked answer, or decision ``error`` when the upstream
gave none) removes it in the same transaction. Pending rows whose owner is gone become output rows with decision
``interrupted``: those of a dead process (killed, crashed) when the next process opens the log, and those still
open when a process closes it. A live process's pending rows are never touched by another, so workers sharing one
database are safe.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import SQLAlchemyError

from shieldkit.errors import ConfigError
from shieldkit.guardrails.ops.audit_db import AuditTarget, reason
from shieldkit.guardrails.ops.audit_query import query
from shieldkit.guardrails.ops.audit_schema import checks, events, migrate, pending
from shieldkit.guardrails.ops.owners import Owners

__all__ = ["AuditEvent", "AuditLog", "query"]
log = logging.getLogger("shieldkit.guardrails")
BATCH = 256  # most events per write transaction
CLOSE_TIMEOUT_S = 30  # how long close() waits for the queued events to be written


@dataclass
class AuditEvent:
    request_id: str
    key_id: str | None
    policy: str
    endpoint: str
    direction: str
    decision: str
    blocked_by: str | None
    latency_ms: float
    checks: list[dict[str, Any]]  # CheckOutcome.to_dict() rows
    text: str | None = None
    time: float = field(default_factory=time.time)
    opens: str | None = None  # an input event of a forwarded request: the token of the output event still to come
    closes: str | None = None  # an output event: the token it settles

    def row(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "time": self.time, "key_id": self.key_id, "policy": self.policy,
                "endpoint": self.endpoint, "direction": self.direction, "decision": self.decision,
                "blocked_by": self.blocked_by, "latency_ms": self.latency_ms,
                "text": None if self.text is None else self.text.replace("\0", NUL_SHOWN)}


NUL_SHOWN = "\u2400"  # ␀ stands for a NUL character in stored text (PostgreSQL text cannot hold NUL)


class AuditLog:
    """``AuditLog(target)``: a SQLite file's path, or a database URL such as ``postgresql://user:pw@host/db``."""

    def __init__(self, target: str | Path) -> None:
        self.target = AuditTarget.of(target)
        self.path = self.target.path  # the SQLite file, if it is one
        self._queue: queue.Queue[AuditEvent | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._engine: Engine | None = None
        self._owners: Owners | None = None
        self.owner: str | None = None
        self.failures = 0

    @property
    def name(self) -> str:
        return self.target.name

    def check(self) -> None:
        """Connect and bring the schema up to date now, so an unusable log is refused before the server starts."""
        try:
            with self._engine_now().begin() as db:
                applied = migrate(db, self.name)
        except (OSError, SQLAlchemyError) as exc:
            raise ConfigError(f"cannot open the audit log {self.name}: {reason(exc)}") from None
        finally:
            self._dispose()  # open() connects again when the server starts
        if applied:
            log.info("audit log %s: schema brought up to date (%d migration step(s))", self.name, applied)

    def open(self) -> None:
        """Take this process's owner id, mark dead processes' pending answers interrupted, start writing."""
        try:
            engine = self._engine_now()
            with engine.begin() as db:
                migrate(db, self.name)
            self._owners = self.target.owners(engine)
            self.owner = self._owners.take()
            interrupted = self._interrupt_dead_owners()
        except (OSError, SQLAlchemyError) as exc:
            self._release_owner()
            raise ConfigError(f"cannot open the audit log {self.name}: {reason(exc)}") from None
        if interrupted:
            log.warning("audit log %s: %d answer(s) of stopped proxy processes were never recorded; marked "
                        "'interrupted'", self.name, interrupted)
        self._thread = threading.Thread(target=self._write_loop, name="shieldkit-audit", daemon=True)
        self._thread.start()

    def record(self, event: AuditEvent) -> None:
        if self._thread is None:
            log.error("the audit log %s is not open: the %s event of request %s is lost", self.name, event.direction,
                      event.request_id)
            return
        self._queue.put(event)

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until everything recorded so far is written."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)

    def close(self) -> None:
        """Write what is queued, mark this process's answers still pending as interrupted, give up the owner id."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=CLOSE_TIMEOUT_S)
            if self._thread.is_alive():
                log.error("the audit log %s did not take the last %d queued event(s) within %d s; they are lost",
                          self.name, self._queue.unfinished_tasks, CLOSE_TIMEOUT_S)
            self._thread = None
        if self._engine is not None and self.owner is not None:
            try:
                self._interrupt(self.owner)
            except SQLAlchemyError:
                log.exception("could not mark the pending answers of this process in %s as interrupted", self.name)
        self._release_owner()
        self._dispose()

    # --- internals ---------------------------------------------------------------------------------------------

    def _engine_now(self) -> Engine:
        if self._engine is None:
            self._engine = self.target.engine()
        return self._engine

    def _dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def _release_owner(self) -> None:
        if self._owners is not None:
            try:
                self._owners.release()
            except SQLAlchemyError:
                log.exception("could not give up this process's owner lock in %s (it goes when the connection "
                              "closes)", self.name)
            self._owners, self.owner = None, None

    def _interrupt_dead_owners(self) -> int:
        with self._engine_now().connect() as db:
            owners = db.execute(select(pending.c.owner).distinct().where(pending.c.owner != self.owner)).scalars().all()
            dead = [owner for owner in owners if not self._owners.is_alive(owner, db)]
        interrupted = 0
        for owner in dead:
            interrupted += self._interrupt(owner)
            self._owners.forget(owner)
        return interrupted

    def _interrupt(self, owner: str) -> int:
        """Turn ``owner``'s pending rows into ``interrupted`` output events, in one transaction (two processes
        sweeping the same dead owner write each row once: the second one's DELETE finds nothing left)."""
        with self._engine_now().begin() as db:
            rows = db.execute(pending.delete().where(pending.c.owner == owner).returning(
                pending.c.request_id, pending.c.time, pending.c.key_id, pending.c.policy, pending.c.endpoint)).all()
            if rows:
                db.execute(events.insert(), [
                    {"request_id": r.request_id, "time": r.time, "key_id": r.key_id, "policy": r.policy,
                     "endpoint": r.endpoint, "direction": "output", "decision": "interrupted", "blocked_by": None,
                     "latency_ms": 0.0, "text": None} for r in sorted(rows, key=lambda r: r.time)])
        return len(rows)

    def _write_loop(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            written = [e for e in batch if e is not None]
            try:
                self._write_batch(written)
            finally:
                for _ in batch:
                    self._queue.task_done()
            if len(written) < len(batch):  # the None that close() sends: everything before it is written
                return

    def _write_batch(self, batch: list[AuditEvent]) -> None:
        """One transaction for the batch; if it fails, one per event, so one bad event loses only itself."""
        if not batch:
            return
        try:
            with self._engine_now().begin() as db:
                self._write(db, batch)
            return
        except SQLAlchemyError as exc:
            if len(batch) == 1:
                self.failures += 1
                log.error("could not write an audit event of request %s to %s: %s", batch[0].request_id, self.name,
                          reason(exc), exc_info=exc)
                return
            log.warning("could not write %d audit events to %s in one go (%s); writing them one by one", len(batch),
                        self.name, reason(exc))
        for event in batch:
            self._write_batch([event])

    def _write(self, db: Connection, batch: Sequence[AuditEvent]) -> None:
        ids = db.execute(events.insert().returning(events.c.id, sort_by_parameter_order=True),
                         [e.row() for e in batch]).scalars().all()
        check_rows = [{"event_id": event_id, "position": position, "name": c["name"], "kind": c["kind"],
                       "action": c["action"], "outcome": c["outcome"], "score": c["score"],
                       "threshold": c["threshold"], "latency_ms": c["latency_ms"], "error": c["error"]}
                      for event_id, e in zip(ids, batch) for position, c in enumerate(e.checks)]
        if check_rows:
            db.execute(checks.insert(), check_rows)
        opened = [{"token": e.opens, "owner": self.owner, "request_id": e.request_id, "time": e.time,
                   "key_id": e.key_id, "policy": e.policy, "endpoint": e.endpoint} for e in batch if e.opens]
        if opened:
            db.execute(pending.insert(), opened)
        closed = [e.closes for e in batch if e.closes is not None]
        if closed:
            db.execute(pending.delete().where(pending.c.token.in_(closed)))

