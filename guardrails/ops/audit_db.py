"""Where the audit log lives: a SQLite file (the default) or a database URL (Postgres, through psycopg 3), opened
as a SQLAlchemy engine set up for the log's use, and the owner registry that goes with it (see ``owners.py``).

SQLite: WAL mode with a busy timeout lets several processes on one machine share a file, and every write
transaction starts with ``BEGIN IMMEDIATE`` (it takes the write lock at once, so read-then-write steps such as
migrations and sweeps are serialised between processes); the pysqlite driver's own transaction handling is turned
off for that (SQLAlchemy's documented recipe). Readers open the file read-only. Postgres: a pool that checks its
connections before use (so a restarted server costs no batch), a connect timeout, and read-only sessions for readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from shieldkit.errors import ConfigError
from shieldkit.guardrails.ops.owners import AdvisoryOwners, FileOwners, Owners

CONNECT_TIMEOUT_S = 5
BUSY_TIMEOUT_S = 10


@dataclass(frozen=True)
class AuditTarget:
    """A SQLite file (``path``) or a database ``url``; ``name`` is what messages show (no password)."""

    path: Path | None = None
    url: URL | None = None

    @classmethod
    def of(cls, target: str | Path) -> AuditTarget:
        """A path, ``sqlite:///path``, or ``postgresql://user:password@host:port/db`` (``postgres://`` too)."""
        if isinstance(target, Path) or "://" not in target:
            return cls(path=Path(target).expanduser())
        try:
            url = make_url(target)
        except ArgumentError:
            raise ConfigError(f"the audit log URL {target.split('@')[-1]!r} is not a database URL") from None
        if url.drivername == "sqlite":
            if not url.database or url.database == ":memory:":
                raise ConfigError("a sqlite:/// audit log URL needs a file: sqlite:////var/lib/shieldkit/audit.sqlite3")
            return cls(path=Path(url.database).expanduser())
        if url.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
            return cls(url=url.set(drivername="postgresql+psycopg"))
        raise ConfigError(f"the audit log URL {url.render_as_string(hide_password=True)!r}: only sqlite:/// and "
                          "postgresql:// databases are supported")

    @property
    def name(self) -> str:
        if self.path is not None:
            return str(self.path)
        return self.url.set(drivername="postgresql").render_as_string(hide_password=True)

    @property
    def is_sqlite(self) -> bool:
        return self.path is not None

    def engine(self, *, readonly: bool = False) -> Engine:
        """A new engine on the database (connections open on first use)."""
        if self.path is not None:
            return _sqlite_engine(self.path, readonly)
        options = {"connect_timeout": CONNECT_TIMEOUT_S, "application_name": "shieldkit-audit"}
        if readonly:
            options["options"] = "-c default_transaction_read_only=on"
        return create_engine(self.url, pool_pre_ping=True, pool_size=2, connect_args=options)

    def owners(self, engine: Engine) -> Owners:
        """Who holds pending rows, and whether they live: lock files beside a SQLite file, advisory locks in Postgres."""
        if self.path is not None:
            return FileOwners(self.path.with_name(self.path.name + "-owners"))
        return AdvisoryOwners(engine)


def _sqlite_engine(path: Path, readonly: bool) -> Engine:
    if readonly:
        if not path.exists():
            raise ConfigError(f"no audit log at {path} (the proxy writes it on its first request)")
        url = URL.create("sqlite", database=f"file:{quote(str(path))}?mode=ro", query={"uri": "true"})
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        url = URL.create("sqlite", database=str(path))
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # transactions are begun below, not by the driver
        if not readonly:
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    @event.listens_for(engine, "begin")
    def _begin(connection) -> None:
        connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine


def reason(exc: BaseException) -> str:
    """A database error as the driver said it (its first line), without SQLAlchemy's statement dump and links."""
    message = str(getattr(exc, "orig", None) or exc).strip()
    return message.splitlines()[0] if message else type(exc).__name__
