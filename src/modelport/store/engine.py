"""Opening a workspace database: URL rules, engine settings (SQLite WAL and write locks), migrations."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError

from ..errors import Conflict, InvalidInput, ServerUnavailable

MIGRATIONS = Path(__file__).parent / "migrations"
BUSY_TIMEOUT_MS = 30_000
MIGRATION_LOCK = 0x6D6F64656C706F72  # "modelpor": PostgreSQL advisory lock held while migrating


@contextmanager
def database_errors(url: str) -> Iterator[None]:
    """Turn a database that cannot be used (unreachable, or locked too long) into a one-line error."""
    try:
        yield
    except OperationalError as error:
        reason = str(error.orig or error).strip().splitlines()[0]
        if "database is locked" in reason:
            raise Conflict(f"the workspace database {url} stayed locked by another process for "
                           f"{BUSY_TIMEOUT_MS / 1000:g} s; try again when it is done") from None
        raise ServerUnavailable(f"cannot use the workspace database {url}: {reason}; "
                                "check the URL and that the database is reachable") from None


def normalize_url(url: str) -> URL:
    """Parse the URL; plain ``postgresql://`` (or ``postgres://``) means the psycopg 3 driver."""
    try:
        parsed = make_url(url)
    except Exception:
        raise InvalidInput(f"workspace database URL {url!r} is not valid; use sqlite:///<path> or "
                           "postgresql://user:password@host/database") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise InvalidInput(f"workspace database {parsed.get_backend_name()!r} is not supported; "
                           "use sqlite:///<path> or postgresql://...")
    return parsed


def create_store_engine(url: URL) -> Engine:
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def begin(connection: Any) -> None:
        reading = connection.get_execution_options().get("modelport_read", False)
        connection.exec_driver_sql("BEGIN DEFERRED" if reading else "BEGIN IMMEDIATE")

    return engine


def alembic_config(connection: Any = None) -> Config:
    """An alembic configuration for the packaged migrations (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@functools.cache
def _revisions() -> tuple[str, frozenset[str]]:
    """The head revision of the packaged migrations and all revisions they know."""
    script = ScriptDirectory.from_config(alembic_config())
    return script.get_current_head(), frozenset(revision.revision for revision in script.walk_revisions())


def migrate(engine: Engine, url: str) -> None:
    """Bring the schema to head; refuse a database written by a newer modelport."""
    head, known = _revisions()
    with engine.execution_options(modelport_read=True).connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    unknown = sorted(current - known)
    if unknown:
        raise InvalidInput(f"workspace database {url} has schema revision {unknown[0]!r}, newer than this "
                           f"modelport knows (up to {head!r}); upgrade modelport to use it")
    if current == {head}:
        return
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        command.upgrade(alembic_config(connection), "head")
