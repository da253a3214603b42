"""The audit log: one SQLite row per checked direction of a request, one row per check result.

Writes go through a queue to one writer thread (requests never wait for the disk). SQLite in WAL mode with a busy
timeout lets several worker processes share one file. Texts are stored only when the policy says ``keep_text``.

No answer goes missing silently. The input row of a request that is forwarded to the model is written together
with a ``pending`` row naming the process that owns it (an :class:`~shieldkit.guardrails.ops.liveness.OwnerLock`);
the request's output row (its checked answer, or decision ``error`` when the upstream gave none) removes it in the
same transaction. Pending rows whose owner is gone become output rows with decision ``interrupted``: those of a
dead process (killed, crashed) when the next process opens the log, and those still open when a process closes
it. A live process's pending rows are never touched by another, so workers sharing one file are safe.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shieldkit.errors import ConfigError
from shieldkit.guardrails.ops.liveness import OwnerLock, forget, is_alive

log = logging.getLogger("shieldkit.guardrails")

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL,
    time REAL NOT NULL,            -- unix seconds
    key_id TEXT,                   -- the API key's id (never the key); NULL when no keys are configured
    policy TEXT NOT NULL,
    endpoint TEXT NOT NULL,        -- chat | check | moderations
    direction TEXT NOT NULL,       -- input | output
    decision TEXT NOT NULL,        -- allow | redact | block; output only: error (the upstream gave no answer),
                                   -- interrupted (the proxy stopped before the answer was recorded); `query`
                                   -- also shows answers still pending (decision pending)
    blocked_by TEXT,               -- the check that blocked, if any
    latency_ms REAL NOT NULL,      -- time spent in checks
    text TEXT                      -- the checked text after redaction, only when the policy keeps text
);
CREATE TABLE IF NOT EXISTS checks (
    event_id INTEGER NOT NULL REFERENCES events(id),
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    action TEXT NOT NULL,          -- block | redact | flag
    outcome TEXT NOT NULL,         -- pass | fired | error
    score REAL,
    threshold REAL,
    latency_ms REAL,
    error TEXT
);
CREATE TABLE IF NOT EXISTS pending (
    token TEXT PRIMARY KEY,        -- a forwarded request whose output row is not written yet
    owner TEXT NOT NULL,           -- the process (its OwnerLock id) that will write it
    request_id TEXT NOT NULL,
    time REAL NOT NULL,            -- when it was forwarded (also the time of its row if it is interrupted)
    key_id TEXT,
    policy TEXT NOT NULL,
    endpoint TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS pending_owner ON pending(owner);
CREATE INDEX IF NOT EXISTS events_time ON events(time);
CREATE INDEX IF NOT EXISTS events_request ON events(request_id);
CREATE INDEX IF NOT EXISTS checks_event ON checks(event_id);
"""


EVENT_COLUMNS = "id, request_id, time, key_id, policy, endpoint, direction, decision, blocked_by, latency_ms, text"


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


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        if not path.exists():
            raise ConfigError(f"no audit log at {path} (the proxy writes it on its first request)")
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=10, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)
    db.row_factory = sqlite3.Row
    return db


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = Path(path).expanduser()
        self.owners = self.path.with_name(self.path.name + "-owners")  # one lock file per process using the log
        self._queue: queue.Queue[AuditEvent | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._db: sqlite3.Connection | None = None
        self._owner: OwnerLock | None = None
        self.failures = 0

    def check(self) -> None:
        """Create the file and its tables now, so an unwritable path is refused before the server starts."""
        try:
            connect(self.path).close()
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"cannot open the audit log {self.path}: {exc}") from None

    def open(self) -> None:
        """Connect, take this process's owner lock, mark dead processes' pending answers interrupted, start writing."""
        try:
            self._db = connect(self.path)
            self._owner = OwnerLock(self.owners)
            interrupted = self._interrupt_dead_owners()
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"cannot open the audit log {self.path}: {exc}") from None
        if interrupted:
            log.warning("audit log %s: %d answer(s) of stopped proxy processes were never recorded; marked "
                        "'interrupted'", self.path, interrupted)
        self._thread = threading.Thread(target=self._write_loop, name="shieldkit-audit", daemon=True)
        self._thread.start()

    @property
    def owner(self) -> str | None:
        return self._owner.id if self._owner else None

    def record(self, event: AuditEvent) -> None:
        if self._thread is None:
            log.error("the audit log %s is not open: the %s event of request %s is lost", self.path, event.direction,
                      event.request_id)
            return
        self._queue.put(event)

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until everything recorded so far is on disk."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)

    def close(self) -> None:
        """Write what is queued, mark this process's answers still pending as interrupted, give up the owner lock."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None
        if self._db is not None:
            if self._owner is not None:
                try:
                    self._interrupt(self._owner.id)
                except sqlite3.Error:
                    log.exception("could not mark the pending answers of this process in %s as interrupted", self.path)
            self._db.close()
            self._db = None
        if self._owner is not None:
            self._owner.release()
            self._owner = None

    def _interrupt_dead_owners(self) -> int:
        db = self._db
        if db is None:
            raise sqlite3.OperationalError("the audit log is closed")
        owners = [row[0] for row in db.execute("SELECT DISTINCT owner FROM pending WHERE owner != ?", (self.owner,))]
        interrupted = 0
        for owner in owners:
            if not is_alive(self.owners, owner):
                interrupted += self._interrupt(owner)
                forget(self.owners, owner)
        return interrupted

    def _interrupt(self, owner: str) -> int:
        """Turn ``owner``'s pending rows into ``interrupted`` output events (in one transaction, so two processes
        sweeping the same dead owner write each row once)."""
        db = self._db
        if db is None:
            raise sqlite3.OperationalError("the audit log is closed")
        with db:
            db.execute("BEGIN IMMEDIATE")
            cursor = db.execute(
                "INSERT INTO events (request_id, time, key_id, policy, endpoint, direction, decision, blocked_by,"
                " latency_ms, text) SELECT request_id, time, key_id, policy, endpoint, 'output', 'interrupted', NULL,"
                " 0, NULL FROM pending WHERE owner = ? ORDER BY time", (owner,))
            db.execute("DELETE FROM pending WHERE owner = ?", (owner,))
        return cursor.rowcount

    def _write_loop(self) -> None:
        while True:
            first = self._queue.get()
            batch = [first]
            while len(batch) < 256:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            events = [e for e in batch if e is not None]
            try:
                if events:
                    self._write(events)
            except sqlite3.Error:
                self.failures += len(events)
                log.exception("could not write %d audit events to %s", len(events), self.path)
            finally:
                for _ in batch:
                    self._queue.task_done()
            if any(e is None for e in batch):
                return

    def _write(self, events: Sequence[AuditEvent]) -> None:
        db = self._db
        if db is None:
            raise sqlite3.OperationalError("the audit log is closed")
        with db:
            for e in events:
                cursor = db.execute(
                    "INSERT INTO events (request_id, time, key_id, policy, endpoint, direction, decision, blocked_by,"
                    " latency_ms, text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (e.request_id, e.time, e.key_id, e.policy, e.endpoint, e.direction, e.decision, e.blocked_by,
                     e.latency_ms, e.text),
                )
                db.executemany(
                    "INSERT INTO checks (event_id, name, kind, action, outcome, score, threshold, latency_ms, error)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(cursor.lastrowid, c["name"], c["kind"], c["action"], c["outcome"], c["score"], c["threshold"],
                      c["latency_ms"], c["error"]) for c in e.checks],
                )
                if e.opens is not None:
                    db.execute("INSERT INTO pending (token, owner, request_id, time, key_id, policy, endpoint)"
                               " VALUES (?, ?, ?, ?, ?, ?, ?)",
                               (e.opens, self.owner, e.request_id, e.time, e.key_id, e.policy, e.endpoint))
                if e.closes is not None:
                    db.execute("DELETE FROM pending WHERE token = ?", (e.closes,))


def query(path: Path, *, since: float | None = None, until: float | None = None, key_id: str | None = None,
          decision: str | None = None, direction: str | None = None, check: str | None = None,
          fired: bool = False, request_id: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Events, newest first, each with its ``checks``; ``check`` keeps events where that check ran (fired, with
    ``fired=True``). Answers still pending appear as output events (``id`` None, no checks) with decision
    ``pending`` while their process lives, ``interrupted`` once it is gone (as the next proxy will record them)."""
    where, params = [], []
    for column, value in (("key_id", key_id), ("decision", decision), ("direction", direction), ("request_id", request_id)):
        if value is not None:
            where.append(f"e.{column} = ?")
            params.append(value)
    if since is not None:
        where.append("e.time >= ?")
        params.append(since)
    if until is not None:
        where.append("e.time <= ?")
        params.append(until)
    if check is not None:
        condition = "AND c.outcome = 'fired'" if fired else ""
        where.append(f"EXISTS (SELECT 1 FROM checks c WHERE c.event_id = e.id AND c.name = ? {condition})")
        params.append(check)
    elif fired:
        where.append("EXISTS (SELECT 1 FROM checks c WHERE c.event_id = e.id AND c.outcome = 'fired')")
    db = connect(path, readonly=True)
    try:
        source, source_params = "events", []
        if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'pending'").fetchone():
            owners = path.with_name(path.name + "-owners")
            dead = [o for (o,) in db.execute("SELECT DISTINCT owner FROM pending") if not is_alive(owners, o)]
            source = (f"(SELECT {EVENT_COLUMNS} FROM events UNION ALL SELECT NULL, request_id, time, key_id, policy,"
                      " endpoint, 'output', CASE WHEN owner IN (" + ", ".join("?" * len(dead)) + ") THEN 'interrupted'"
                      " ELSE 'pending' END, NULL, 0, NULL FROM pending)")
            source_params = dead
        sql = (f"SELECT e.* FROM {source} e" + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY e.time DESC, e.id IS NULL DESC, e.id DESC LIMIT ?")
        events = [dict(row) for row in db.execute(sql, (*source_params, *params, limit))]
        for event in events:
            event["checks"] = [dict(row) for row in db.execute(
                "SELECT name, kind, action, outcome, score, threshold, latency_ms, error FROM checks WHERE event_id = ? ORDER BY rowid",
                (event["id"],))] if event["id"] is not None else []
    finally:
        db.close()
    return events
