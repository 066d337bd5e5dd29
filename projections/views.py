"""The read models of the customer-care application, behind one facade."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from eventsourcing.application import Application

from application.persistence import Database
from projections.customers import AccountsView, CustomersView, SubscriptionsView
from projections.history import WorkflowEventsView
from projections.identities import SubscriberIdentitiesView
from projections.queue import ActionedItemsView
from projections.runner import Projection, ProjectionRunner, catch_up_together, poll
from projections.store import Row, ViewDatabase


class UnknownProjection(LookupError):
    """No projection of that name."""


class Views:
    """Every read model of one application, sharing one view database.

    The query methods live on ``actioned_items``, ``workflow_events``,
    ``subscriptions``, ``accounts`` and ``customers``; they return plain dicts
    with JSON-friendly values (ids and times as strings, money as strings).
    """

    def __init__(self, app: Application[Any], database: Database, pool_size: int = 8):
        self.app = app
        self.db = ViewDatabase(database, pool_size)
        self.actioned_items = ActionedItemsView(self.db)
        self.workflow_events = WorkflowEventsView(self.db, items=self.actioned_items)
        self.subscriptions = SubscriptionsView(self.db)
        self.accounts = AccountsView(self.db)
        self.customers = CustomersView(self.db)
        self.identities = SubscriberIdentitiesView(self.db)
        self.projections: tuple[Projection, ...] = (
            self.actioned_items,
            self.workflow_events,
            self.subscriptions,
            self.accounts,
            self.customers,
            self.identities,
        )
        self.runners = {
            p.name: ProjectionRunner(app, p, self.db) for p in self.projections
        }
        # Queries may come before the first catch-up: the tables must exist.
        for runner in self.runners.values():
            runner.setup()

    def runner(self, name: str) -> ProjectionRunner:
        """The runner of a projection, by its name with or without the version."""
        for full_name, runner in self.runners.items():
            if name in (full_name, full_name.rsplit("_v", 1)[0]):
                return runner
        raise UnknownProjection(
            f"no projection {name!r}; there are {', '.join(self.runners)}"
        )

    def catch_up(self, batch: int = 1000) -> int:
        """Bring every view up to date; returns the number of events applied."""
        return catch_up_together(self.app, list(self.runners.values()), batch)

    def catch_up_only(self, *names: str) -> int:
        """Bring the views named (version optional) up to date, reading the
        log once for them; returns the number of events applied."""
        return catch_up_together(self.app, [self.runner(name) for name in names])

    def status(self) -> dict[str, dict[str, Any]]:
        """Position and lag of each projection, by name."""
        return {name: runner.status() for name, runner in self.runners.items()}

    def rebuild(self, name: str | None = None, batch: int = 1000) -> int:
        """Rebuild one projection (or all) from the events; returns events applied."""
        runners = [self.runner(name)] if name else list(self.runners.values())
        for runner in runners:
            runner.reset()
        # Together, so that each event is read and decoded once for all views.
        return catch_up_together(self.app, runners, batch)

    def run_forever(self, stop: threading.Event, interval: float = 0.2) -> None:
        """Keep every view up to date until ``stop`` is set (a worker thread)."""
        poll(self.catch_up, stop, interval)

    def customers_by_id(self, ids: Iterable[str]) -> dict[str, Row]:
        """Customers as templates show them, by id (one query)."""
        return self.customers.many(ids)

    def accounts_by_id(self, ids: Iterable[str]) -> dict[str, Row]:
        """Accounts as templates show them, by id (one query)."""
        return self.accounts.many(ids)

    def close(self) -> None:
        self.db.close()
