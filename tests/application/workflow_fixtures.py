"""A platform with the demo catalogue, a manual clock and a few customers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from api.cli import demo_catalogue
from application.clock import ManualClock
from application.platform import Platform
from application.settings import Settings

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@dataclass
class Line:
    customer_id: UUID
    account_id: UUID
    subscription_id: UUID
    msisdn: str


class Operator:
    """Drives the platform as agents and the background worker would."""

    def __init__(self, platform: Platform, clock: ManualClock):
        self.platform = platform
        self.clock = clock
        self.care = platform.care
        self._numbers = iter(range(447700900100, 447700999999))

    def new_line(
        self,
        *,
        payment_type: str = "postpaid",
        status: str = "active",
        email: str = "ada@example.com",
    ) -> Line:
        customer_id = self.care.register_customer(
            name="Ada Lovelace",
            email=email,
            phone="447700900001",
            address="12 Analytical Row, London",
            actor="agent-1",
        )
        account_id = self.care.open_account(customer_id=customer_id, actor="agent-1")
        msisdn = str(next(self._numbers))
        subscription_id = self.care.create_subscription(
            account_id=account_id,
            msisdn=msisdn,
            payment_type=payment_type,
            status=status,
            actor="agent-1",
        )
        return Line(customer_id, account_id, subscription_id, msisdn)

    def raise_on(self, line: Line, event: str, *manual: str, note: str = "") -> UUID:
        event_type, event_code = event.split()
        return self.care.raise_workflow_event(
            owner_id=line.subscription_id,
            level="subscription",
            event_type=event_type,
            event_code=event_code,
            note=note,
            manual_actions=manual,
            actor="agent-1",
        )

    def settle(self) -> None:
        """Let the background work run until nothing more is due now."""
        self.platform.work_until_idle()

    def later(self, delta: timedelta) -> None:
        self.clock.advance(delta)
        self.settle()

    def event(self, workflow_event_id: UUID) -> dict:
        self.platform.views.catch_up()
        found = self.platform.views.workflow_events.get(str(workflow_event_id))
        assert found is not None
        return dict(found)

    def subscription(self, line: Line) -> dict:
        self.platform.views.catch_up()
        found = self.platform.views.subscriptions.get(str(line.subscription_id))
        assert found is not None
        return dict(found)


def operator_for(settings: Settings) -> Iterator[Operator]:
    clock = ManualClock(START)
    platform = Platform(settings, clock=clock)
    platform.catalogue.import_document(demo_catalogue(), "admin")
    try:
        yield Operator(platform, clock)
    finally:
        platform.close()
