"""An e-mail communication reaches a real SMTP server (aiosmtpd on loopback)."""

from __future__ import annotations

import pytest

from application.settings import Settings
from tests.application.workflow_fixtures import operator_for
from tests.harness.smtp import SmtpServer

pytestmark = pytest.mark.integration


def test_an_account_type_movement_e_mails_the_customer_over_smtp(
    settings: Settings,
    smtp_server: SmtpServer,
) -> None:
    settings.smtp_url = smtp_server.url
    for operator in operator_for(settings):
        line = operator.new_line(email="ada@example.com")
        account = operator.care.account(line.account_id)

        moved = operator.care.raise_workflow_event(
            owner_id=line.account_id,
            level="account",
            event_type="ACCT",
            event_code="BUSN",
            actor="agent-1",
        )
        operator.settle()

        [email] = smtp_server.wait_for(1)
        assert list(email.recipients) == ["ada@example.com"]
        assert email.subject == f"Your account {account.number} has moved"
        assert email.body.strip() == (
            f"Dear Ada Lovelace, your account {account.number} is now of type BUSN."
        )
        event = operator.event(moved)
        assert event["status"] == "resolved"
        assert {i["status"] for i in event["items"]} == {"completed"}
        assert operator.care.account(line.account_id).account_type == "BUSN"
