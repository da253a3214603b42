"""Reading the audit log (``shieldkit audit``): filtered events, newest first, from a SQLite file or a database
URL, over one SQLAlchemy Core query for both. Readers never write: SQLite files are opened read-only, Postgres
sessions are read-only, and schema migrations are left to the proxy (a file of an older version is read as is)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import case, exists, literal, literal_column, null, select, union_all
from sqlalchemy.exc import SQLAlchemyError

from shieldkit.errors import ConfigError
from shieldkit.guardrails.ops.audit_db import AuditTarget, reason
from shieldkit.guardrails.ops.audit_schema import LATEST, checks, current_version, events, pending

CHECK_COLUMNS = ("name", "kind", "action", "outcome", "score", "threshold", "latency_ms", "error")


def query(target: str | Path, *, since: float | None = None, until: float | None = None, key_id: str | None = None,
          decision: str | None = None, direction: str | None = None, check: str | None = None,
          fired: bool = False, request_id: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Events, newest first, each with its ``checks``; ``check`` keeps events where that check ran (fired, with
    ``fired=True``). Answers still pending appear as output events (``id`` None, no checks) with decision
    ``pending`` while their process lives, ``interrupted`` once it is gone (as the next proxy will record them).
    ``target``: a SQLite file's path, or a database URL such as ``postgresql://user:password@host/db``."""
    where = AuditTarget.of(target)
    engine = where.engine(readonly=True)
    try:
        with engine.connect() as db:
            version = current_version(db)
            if version > LATEST:
                raise ConfigError(f"the audit log {where.name} is at schema version {version}, newer than this "
                                  f"shieldkit reads ({LATEST}): upgrade shieldkit")
            if version == 0 and not db.dialect.has_table(db, "events"):
                raise ConfigError(f"the audit log {where.name} has no events yet (the proxy creates its tables when "
                                  "it starts)")
            owners = where.owners(engine)
            has_pending = db.dialect.has_table(db, "pending")
            dead = [o for o in db.execute(select(pending.c.owner).distinct()).scalars()
                    if not owners.is_alive(o, db)] if has_pending else []
            e = _events(has_pending, dead)
            sql = select(e).where(*_filters(e, since=since, until=until, key_id=key_id, decision=decision,
                                            direction=direction, check=check, fired=fired, request_id=request_id))
            sql = sql.order_by(e.c.time.desc(), e.c.id.is_(None).desc(), e.c.id.desc()).limit(limit)
            found = [dict(row._mapping) for row in db.execute(sql)]
            by_event = _checks(db, [event["id"] for event in found if event["id"] is not None], ordered=version >= 2)
    except SQLAlchemyError as exc:
        raise ConfigError(f"cannot read the audit log {where.name}: {reason(exc)}") from None
    finally:
        engine.dispose()
    for event in found:
        event["checks"] = by_event.get(event["id"], []) if event["id"] is not None else []
    return found


def _events(has_pending: bool, dead: list[str]):
    """The events table, and (when the log has one) the pending answers as output rows, as one subquery."""
    recorded = select(events)
    if not has_pending:
        return recorded.subquery("e")
    waiting = select(null().label("id"), pending.c.request_id, pending.c.time, pending.c.key_id, pending.c.policy,
                     pending.c.endpoint, literal("output").label("direction"),
                     case((pending.c.owner.in_(dead), "interrupted"), else_="pending").label("decision"),
                     null().label("blocked_by"), literal(0.0).label("latency_ms"), null().label("text"))
    return union_all(recorded, waiting).subquery("e")


def _filters(e, *, since, until, key_id, decision, direction, check, fired, request_id) -> list:
    where = [e.c[column] == value for column, value in (("key_id", key_id), ("decision", decision),
                                                         ("direction", direction), ("request_id", request_id))
             if value is not None]
    if since is not None:
        where.append(e.c.time >= since)
    if until is not None:
        where.append(e.c.time <= until)
    if check is not None or fired:
        ran = [checks.c.event_id == e.c.id]
        if check is not None:
            ran.append(checks.c.name == check)
        if fired:
            ran.append(checks.c.outcome == "fired")
        where.append(exists().where(*ran))
    return where


def _checks(db, event_ids: list[int], *, ordered: bool) -> dict[int, list[dict[str, Any]]]:
    """Each event's check rows, in the order they ran (by ``position``; files older than schema version 2 by rowid)."""
    if not event_ids:
        return {}
    order = checks.c.position if ordered else literal_column("rowid")
    rows = db.execute(select(checks.c.event_id, *(checks.c[name] for name in CHECK_COLUMNS))
                      .where(checks.c.event_id.in_(event_ids)).order_by(checks.c.event_id, order))
    by_event: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        values = dict(row._mapping)
        by_event.setdefault(values.pop("event_id"), []).append(values)
    return by_event
