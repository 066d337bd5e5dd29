"""Translation of monetise settings into ``eventsourcing`` persistence settings.

Every Application and every projection asks this module for its environment
(the ``eventsourcing`` library's keys: persistence module, database,
connection and pool). The one exception is the usage application's recorder and
compressor, which ``Platform.usage_batches`` adds to that environment per
backend.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from application.settings import Settings

# PostgreSQL compiles a query with LLVM when its estimated cost passes
# jit_above_cost, and a rerate's page query (2,000 rows by the key's index,
# estimated from the whole table) passes it: 10-25 ms compiling against 4 ms
# running, on every page. monetise's queries are short lookups and pages of
# indexes, which JIT never pays for, so its own connections switch it off
# (the event store's pools only look events up by key, far below the
# threshold).
NO_JIT = "-c jit=off"


class DatabaseURLError(ValueError):
    """The database URL is neither ``sqlite:///…`` nor ``postgresql://…``."""


@dataclass(frozen=True)
class Database:
    """Where the events and read models of every application are kept."""

    backend: str  # "sqlite" or "postgres"
    sqlite_path: Path | None = None
    host: str = ""
    port: int = 5432
    user: str = ""
    password: str = ""
    dbname: str = ""
    schema: str = ""

    @classmethod
    def from_url(cls, url: str) -> Database:
        parts = urlsplit(url)
        if parts.scheme == "sqlite":
            # sqlite:///relative/path or sqlite:////absolute/path
            path = parts.path[1:] if parts.path.startswith("/") else parts.path
            if not path:
                raise DatabaseURLError(f"no file in SQLite URL {url!r}")
            return cls(backend="sqlite", sqlite_path=Path(unquote(path)))
        if parts.scheme in ("postgresql", "postgres", "postgresql+psycopg"):
            dbname = parts.path.lstrip("/")
            if not dbname or not parts.hostname:
                raise DatabaseURLError(
                    f"PostgreSQL URL needs a host and a database name: {url!r}"
                )
            query = dict(
                pair.split("=", 1) for pair in parts.query.split("&") if "=" in pair
            )
            return cls(
                backend="postgres",
                host=parts.hostname,
                port=parts.port or 5432,
                user=unquote(parts.username or ""),
                password=unquote(parts.password or ""),
                dbname=dbname,
                schema=query.get("schema", ""),
            )
        raise DatabaseURLError(
            f"unsupported database URL {url!r}: use sqlite:///PATH or "
            "postgresql://user:pass@host:port/db"
        )

    def connection_parameters(self, application_name: str) -> dict[str, Any]:
        """PostgreSQL: what ``psycopg.connect`` needs for a connection of
        monetise's own (beside the library's pools), named in
        ``pg_stat_activity`` as ``application_name``."""
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "dbname": self.dbname,
            "connect_timeout": 10,
            "application_name": application_name,
            # No JIT compilation: see NO_JIT.
            "options": NO_JIT,
        }

    def sqlite_file(self, name: str) -> Path:
        """One SQLite file per application or read model.

        The SQLite recorders of ``eventsourcing`` use one table name for every
        application, so applications cannot share a file; separate files also
        give each writer its own lock.
        """
        assert self.sqlite_path is not None
        stem = self.sqlite_path.name.split(".")[0]
        return self.sqlite_path.with_name(f"{stem}.{name.lower()}.sqlite3")

    def eventsourcing_env(self, name: str) -> dict[str, str]:
        """The ``eventsourcing`` environment of the application called ``name``."""
        if self.backend == "sqlite":
            path = self.sqlite_file(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(path),
                "SQLITE_LOCK_TIMEOUT": "30",
            }
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": self.dbname,
            "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": self.password,
            "POSTGRES_POOL_SIZE": "5",
            "POSTGRES_MAX_OVERFLOW": "10",
            "POSTGRES_CONNECT_TIMEOUT": "10",
            "POSTGRES_LOCK_TIMEOUT": "0",
            # In 9.5.x the DB-function path skips the tracking records of process
            # applications and shares one function across applications.
            "POSTGRES_ENABLE_DB_FUNCTIONS": "no",
        }
        if self.schema:
            env["POSTGRES_SCHEMA"] = self.schema
        return env


@contextmanager
def schema_lock(database: Database) -> Iterator[None]:
    """Serialise creating tables across processes starting at the same moment.

    The library creates its tables (and, on PostgreSQL, a function) whenever
    an application is constructed; two processes doing so at once collide in
    PostgreSQL's catalogue. SQLite serialises writers by itself.
    """
    if database.backend != "postgres":
        yield
        return
    import psycopg

    with psycopg.connect(
        **database.connection_parameters("monetise-setup"), autocommit=True
    ) as connection:
        connection.execute("SELECT pg_advisory_lock(%s)", (_SCHEMA_LOCK,))
        try:
            yield
        finally:
            connection.execute("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK,))


_SCHEMA_LOCK = 7_316_771_234  # any constant shared by every monetise process


def database(settings: Settings) -> Database:
    """The database the settings point at."""
    return Database.from_url(settings.resolved_database_url)


def eventsourcing_env(settings: Settings, name: str) -> dict[str, str]:
    """The ``eventsourcing`` environment for one application, from the settings."""
    return database(settings).eventsourcing_env(name)
