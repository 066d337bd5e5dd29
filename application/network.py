"""The network port, and the built-in network simulator that stands in for it.

Provisioning is asynchronous: the dispatcher submits a request and later
collects the response, as it would over a Kafka request topic and response
topic. ``NetworkPort`` is that contract; ``NetworkSimulator`` is the built-in
network simulator, which keeps its requests in the platform's database so that
a restarted worker still gets the responses to what it submitted. A Kafka
transport implements the same three methods: ``submit`` produces to the
request topic keyed by ``request_id``, ``responses`` returns what the consumer
has read, ``acknowledge`` commits it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import psycopg
import yaml
from psycopg import sql as psql

from application.persistence import Database
from domain.durations import Duration, parse_duration

OUTCOMES = ("success", "error")


@dataclass(frozen=True)
class ProvisioningRequest:
    """One provisioning command for the network.

    ``request_id`` identifies one attempt (the dispatcher uses
    ``f"{item_id}:{attempt}"``): the network executes each request id once.
    """

    request_id: str
    item_id: str
    command: str
    parameters: dict[str, Any]
    msisdn: str | None
    imsi: str | None
    submitted_at: datetime


@dataclass(frozen=True)
class ProvisioningResponse:
    """The network's answer to one request: ``outcome`` is success or error."""

    request_id: str
    item_id: str
    outcome: str
    reason: str
    responded_at: datetime


class NetworkPort(Protocol):
    """What the action dispatcher needs from a network (simulator or Kafka)."""

    def submit(self, request: ProvisioningRequest) -> None:
        """Hand the request over; the response comes later.

        Submitting a request id again must not execute it again.
        """

    def responses(self, now: datetime, limit: int = 500) -> list[ProvisioningResponse]:
        """Responses available at ``now`` that were not acknowledged yet."""

    def acknowledge(self, request_ids: Sequence[str]) -> None:
        """Mark these responses as processed, so they are not returned again."""


@dataclass(frozen=True)
class SimulatorRule:
    """How the network simulator answers matching requests.

    ``command`` and ``msisdn`` are exact values or ``"*"`` for any. The N-th
    request for one actioned item gets ``outcomes[N-1]``, and the last outcome
    once the list runs out: ``("error", "error", "success")`` fails twice then
    succeeds; ``("error",)`` always fails. The response is available ``delay``
    after the request was submitted (a ``Duration`` from an ISO 8601 text
    follows the calendar).
    """

    command: str = "*"
    msisdn: str = "*"
    outcomes: tuple[str, ...] = ("success",)
    delay: timedelta | Duration = field(default_factory=timedelta)
    reason: str = "simulated network error"

    def __post_init__(self) -> None:
        if not self.outcomes:
            raise ValueError("a simulator rule needs at least one outcome")
        wrong = [outcome for outcome in self.outcomes if outcome not in OUTCOMES]
        if wrong:
            raise ValueError(
                f"unknown outcome(s) {', '.join(map(repr, wrong))}; "
                f"use {' or '.join(OUTCOMES)}"
            )

    @property
    def specificity(self) -> int:
        """Higher is more specific: command and MSISDN, MSISDN, command, neither."""
        return 2 * (self.msisdn != "*") + (self.command != "*")

    def matches(self, request: ProvisioningRequest) -> bool:
        """Whether this rule is about ``request``."""
        return self.command in ("*", request.command) and self.msisdn in (
            "*",
            request.msisdn,
        )

    def outcome(self, attempt: int) -> str:
        """The outcome of the ``attempt``-th request (from 1) for one item."""
        return self.outcomes[min(attempt, len(self.outcomes)) - 1]

    def respond_at(self, submitted_at: datetime) -> datetime:
        """When the response to a request submitted at ``submitted_at`` is ready."""
        if isinstance(self.delay, Duration):
            return self.delay.after(submitted_at)
        return submitted_at + self.delay


_SUCCEED_AT_ONCE = SimulatorRule()


class NetworkSimulator:
    """The built-in network simulator: a durable, configurable ``NetworkPort``.

    It stands in for a real network until a Kafka transport is configured. Its
    requests and their decided responses live in the table
    ``network_simulator_requests`` (SQLite: a file of its own beside the
    platform's; PostgreSQL: the platform's database), so they survive a
    restart. Safe to call from several threads; writers in other processes are
    serialised by the database.
    """

    def __init__(self, database: Database, rules: Sequence[SimulatorRule] = ()) -> None:
        self._store = _open_store(database)
        self._rules_lock = threading.Lock()
        self._rules: tuple[SimulatorRule, ...] = ()
        self.set_rules(rules)

    @staticmethod
    def rules_from_file(path: Path) -> list[SimulatorRule]:
        """Rules from a YAML file, in the form::

        rules:
          - {command: PORT_IN, msisdn: "447700900999", outcomes: [error],
             delay: PT5S, reason: Number not portable}
        """
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(document, dict) or not isinstance(
            document.get("rules") or [], list
        ):
            raise ValueError(f"{path}: expected a mapping with a list under 'rules'")
        return [
            _rule_from(entry, f"{path}: rules[{index}]")
            for index, entry in enumerate(document.get("rules") or [])
        ]

    def set_rules(self, rules: Sequence[SimulatorRule]) -> None:
        """Replace the rules; requests already submitted keep their responses."""
        # Stable sort: among equally specific rules the given order decides.
        ordered = tuple(sorted(rules, key=lambda rule: -rule.specificity))
        with self._rules_lock:
            self._rules = ordered

    @property
    def rules(self) -> tuple[SimulatorRule, ...]:
        """The rules in the order they are tried."""
        with self._rules_lock:
            return self._rules

    def submit(self, request: ProvisioningRequest) -> None:
        """Record the request and decide its response, once per request id."""
        submitted_at = _utc(request.submitted_at, "submitted_at")
        rule = next(
            (rule for rule in self.rules if rule.matches(request)), _SUCCEED_AT_ONCE
        )
        with self._store.transaction(write=True) as run:
            if run(_SELECT_REQUEST, (request.request_id,)):
                # Decided already: count the resubmission, execute nothing.
                run(_COUNT_RESUBMISSION, (request.request_id,))
                return
            # The write transaction holds the table's write lock, so no other
            # request for this item can slip in between the count and the insert.
            [(earlier,)] = run(_COUNT_ITEM_REQUESTS, (request.item_id,))
            outcome = rule.outcome(int(earlier) + 1)
            reason = (
                rule.reason
                if outcome == "error"
                else f"network simulator: {request.command} done"
            )
            run(
                _INSERT_REQUEST,
                (
                    request.request_id,
                    request.item_id,
                    request.command,
                    json.dumps(request.parameters, sort_keys=True, default=str),
                    request.msisdn,
                    request.imsi,
                    self._store.to_db(submitted_at),
                    1,
                    outcome,
                    reason,
                    self._store.to_db(rule.respond_at(submitted_at)),
                    False,
                ),
            )

    def responses(self, now: datetime, limit: int = 500) -> list[ProvisioningResponse]:
        """Unacknowledged responses due at ``now``, oldest first."""
        moment = self._store.to_db(_utc(now, "now"))
        with self._store.transaction(write=False) as run:
            rows = run(_SELECT_DUE, (False, moment, limit))
        return [
            ProvisioningResponse(
                request_id=request_id,
                item_id=item_id,
                outcome=outcome,
                reason=reason,
                responded_at=self._store.from_db(respond_at),
            )
            for request_id, item_id, outcome, reason, respond_at in rows
        ]

    def acknowledge(self, request_ids: Sequence[str]) -> None:
        """Mark responses as processed; unknown request ids are ignored."""
        with self._store.transaction(write=True) as run:
            for request_id in dict.fromkeys(request_ids):
                run(_ACKNOWLEDGE, (True, request_id))

    def submission_counts(self) -> dict[str, int]:
        """How often each request id was submitted (1 means executed once)."""
        with self._store.transaction(write=False) as run:
            rows = run(_SELECT_SUBMISSIONS, ())
        return {request_id: int(count) for request_id, count in rows}

    def close(self) -> None:
        """Close the database connection; the state stays in the database."""
        self._store.close()


def _rule_from(entry: object, where: str) -> SimulatorRule:
    known = {"command", "msisdn", "outcomes", "delay", "reason"}
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected a mapping of {', '.join(sorted(known))}")
    unknown = sorted(set(map(str, entry)) - known)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}")
    outcomes = entry.get("outcomes", ["success"])
    if isinstance(outcomes, str):
        outcomes = [outcomes]
    arguments: dict[str, Any] = {
        # YAML reads an unquoted MSISDN as a number; it is an identifier.
        "command": str(entry.get("command", "*")),
        "msisdn": str(entry.get("msisdn", "*")),
        "outcomes": tuple(str(outcome) for outcome in outcomes),
    }
    if "reason" in entry:
        arguments["reason"] = str(entry["reason"])
    try:
        if "delay" in entry:
            arguments["delay"] = parse_duration(str(entry["delay"]))
        return SimulatorRule(**arguments)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


def _utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment.isoformat()}")
    return moment.astimezone(UTC)


# --- storage: the same SQL on SQLite and PostgreSQL ------------------------

Run = Callable[[str, Sequence[object]], list[tuple[Any, ...]]]

# Written with "?" marks; the PostgreSQL store turns them into "%s".
_DDL = (
    "CREATE TABLE IF NOT EXISTS network_simulator_requests ("
    "request_id TEXT PRIMARY KEY, "
    "item_id TEXT NOT NULL, "
    "command TEXT NOT NULL, "
    "parameters TEXT NOT NULL, "
    "msisdn TEXT, "
    "imsi TEXT, "
    "submitted_at {timestamp} NOT NULL, "
    "submissions INTEGER NOT NULL, "
    "outcome TEXT NOT NULL, "
    "reason TEXT NOT NULL, "
    "respond_at {timestamp} NOT NULL, "
    "acknowledged BOOLEAN NOT NULL)",
    "CREATE INDEX IF NOT EXISTS network_simulator_requests_item "
    "ON network_simulator_requests (item_id)",
    "CREATE INDEX IF NOT EXISTS network_simulator_requests_due "
    "ON network_simulator_requests (acknowledged, respond_at)",
)
_SELECT_REQUEST = "SELECT 1 FROM network_simulator_requests WHERE request_id = ?"
_COUNT_RESUBMISSION = (
    "UPDATE network_simulator_requests SET submissions = submissions + 1 "
    "WHERE request_id = ?"
)
_COUNT_ITEM_REQUESTS = (
    "SELECT COUNT(*) FROM network_simulator_requests WHERE item_id = ?"
)
_INSERT_REQUEST = (
    "INSERT INTO network_simulator_requests (request_id, item_id, command, "
    "parameters, msisdn, imsi, submitted_at, submissions, outcome, reason, "
    "respond_at, acknowledged) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SELECT_DUE = (
    "SELECT request_id, item_id, outcome, reason, respond_at "
    "FROM network_simulator_requests WHERE acknowledged = ? AND respond_at <= ? "
    "ORDER BY respond_at, request_id LIMIT ?"
)
_ACKNOWLEDGE = (
    "UPDATE network_simulator_requests SET acknowledged = ? WHERE request_id = ?"
)
_SELECT_SUBMISSIONS = "SELECT request_id, submissions FROM network_simulator_requests"
_LOCK_FOR_WRITERS = "LOCK TABLE network_simulator_requests IN SHARE ROW EXCLUSIVE MODE"


class _Store(Protocol):
    def transaction(self, write: bool) -> AbstractContextManager[Run]: ...

    def to_db(self, moment: datetime) -> object: ...

    def from_db(self, value: Any) -> datetime: ...

    def close(self) -> None: ...


def _open_store(database: Database) -> _Store:
    if database.backend == "sqlite":
        return _SqliteStore(database.sqlite_file("network_simulator"))
    return _PostgresStore(database)


class _SqliteStore:
    """One connection, guarded by a lock; SQL written with ``?`` as it is."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are begun and ended here, so that a
        # writer can take the write lock up front (BEGIN IMMEDIATE) and count
        # an item's earlier requests without a race.
        self._connection = sqlite3.connect(
            path, timeout=30, isolation_level=None, check_same_thread=False
        )
        self._lock = threading.Lock()
        self._connection.execute("PRAGMA journal_mode=WAL")
        with self.transaction(write=True) as run:
            for statement in _DDL:
                run(statement.format(timestamp="TEXT"), ())

    @contextmanager
    def transaction(self, write: bool) -> Iterator[Run]:
        with self._lock:
            connection = self._connection

            def run(sql: str, parameters: Sequence[object]) -> list[tuple[Any, ...]]:
                return connection.execute(sql, parameters).fetchall()

            connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield run
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def to_db(self, moment: datetime) -> object:
        # One fixed width in UTC, so that text order is time order.
        return moment.astimezone(UTC).isoformat(timespec="microseconds")

    def from_db(self, value: Any) -> datetime:
        return datetime.fromisoformat(str(value))

    def close(self) -> None:
        with self._lock:
            self._connection.close()


class _PostgresStore:
    """One psycopg connection, guarded by a lock and reopened if it broke."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._lock = threading.Lock()
        self._connection: psycopg.Connection[tuple[Any, ...]] | None = None
        with self.transaction(write=False) as run:
            # Two simulators starting at once would both try to create the
            # table; the advisory lock makes the second wait and find it.
            run("SELECT pg_advisory_xact_lock(hashtext(?))", ("network_simulator",))
            for statement in _DDL:
                run(statement.format(timestamp="TIMESTAMPTZ"), ())

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self._connection is None or self._connection.closed:
            database = self._database
            parameters = database.connection_parameters("monetise-network-simulator")
            if database.schema:
                # Beside the platform's own tables, as eventsourcing keeps them.
                parameters["options"] = f"-c search_path={database.schema}"
            self._connection = psycopg.connect(autocommit=True, **parameters)
            if database.schema:
                self._connection.execute(
                    psql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                        psql.Identifier(database.schema)
                    )
                )
        return self._connection

    @contextmanager
    def transaction(self, write: bool) -> Iterator[Run]:
        with self._lock:
            connection = self._connect()
            try:
                with connection.transaction():

                    def run(
                        sql: str, parameters: Sequence[object]
                    ) -> list[tuple[Any, ...]]:
                        cursor = connection.execute(sql.replace("?", "%s"), parameters)
                        return list(cursor.fetchall()) if cursor.description else []

                    if write:
                        # Serialises writers across processes, as BEGIN
                        # IMMEDIATE does on SQLite; readers are not blocked.
                        run(_LOCK_FOR_WRITERS, ())
                    yield run
            finally:
                if connection.broken:
                    connection.close()

    def to_db(self, moment: datetime) -> object:
        return moment

    def from_db(self, value: Any) -> datetime:
        assert isinstance(value, datetime)
        return value.astimezone(UTC)

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()


__all__ = [
    "OUTCOMES",
    "NetworkPort",
    "NetworkSimulator",
    "ProvisioningRequest",
    "ProvisioningResponse",
    "SimulatorRule",
]
