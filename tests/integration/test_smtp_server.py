"""The test SMTP server receives what a plain SMTP client sends."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

import pytest

from tests.harness.smtp import SmtpServer, smtp_server  # noqa: F401

pytestmark = pytest.mark.integration


def test_an_email_sent_over_smtp_is_received(smtp_server: SmtpServer) -> None:  # noqa: F811
    message = EmailMessage()
    message["From"] = "billing@monetise.example"
    message["To"] = "ada@example.com"
    message["Subject"] = "Your bill for March"
    message.set_content("Amount due: 12.50 EUR\n")

    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.send_message(message, to_addrs=["ada@example.com", "audit@example.com"])

    [received] = smtp_server.wait_for(1)
    assert received.envelope_sender == "billing@monetise.example"
    assert received.recipients == ("ada@example.com", "audit@example.com")
    assert received.sender == "billing@monetise.example"
    assert received.to == ("ada@example.com",)
    assert received.subject == "Your bill for March"
    assert received.body == "Amount due: 12.50 EUR\n"
