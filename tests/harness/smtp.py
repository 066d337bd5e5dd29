"""A real SMTP server (aiosmtpd) that keeps every e-mail it receives, for tests."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.harness.ports import free_port

DEFAULT_WAIT_S = 10.0

_HOST = "127.0.0.1"
_PORT_ATTEMPTS = 3


@dataclass(frozen=True)
class ReceivedEmail:
    """One e-mail as the server received it.

    ``recipients`` are the addresses it was delivered to (SMTP ``RCPT TO``, so
    Bcc included); ``to`` are the addresses its ``To`` header shows.
    """

    envelope_sender: str
    recipients: tuple[str, ...]
    sender: str
    to: tuple[str, ...]
    subject: str
    body: str
    message: EmailMessage


class _Inbox:
    """aiosmtpd handler; runs on the controller's thread, read from the test's."""

    def __init__(self) -> None:
        self._received: list[ReceivedEmail] = []
        self._arrived = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        received = _parse(envelope.mail_from, envelope.rcpt_tos, envelope.content)
        with self._arrived:
            self._received.append(received)
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    def snapshot(self) -> list[ReceivedEmail]:
        with self._arrived:
            return list(self._received)

    def clear(self) -> None:
        with self._arrived:
            self._received.clear()

    def wait_for(self, count: int, timeout: float) -> list[ReceivedEmail]:
        with self._arrived:
            if not self._arrived.wait_for(
                lambda: len(self._received) >= count, timeout
            ):
                subjects = [received.subject for received in self._received]
                raise TimeoutError(
                    f"expected {count} e-mail(s) within {timeout:g} s, "
                    f"received {len(subjects)}: {subjects}"
                )
            return list(self._received)


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    _inbox: _Inbox

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    @property
    def messages(self) -> list[ReceivedEmail]:
        """What has arrived so far, oldest first (a copy)."""
        return self._inbox.snapshot()

    def wait_for(
        self, count: int, timeout: float = DEFAULT_WAIT_S
    ) -> list[ReceivedEmail]:
        """Block until at least ``count`` e-mails arrived; return all of them."""
        return self._inbox.wait_for(count, timeout)

    def clear(self) -> None:
        self._inbox.clear()


@contextlib.contextmanager
def running_smtp_server() -> Iterator[SmtpServer]:
    """An SMTP server on a free loopback port, stopped on exit."""
    inbox = _Inbox()
    controller = _start_on_a_free_port(inbox)
    try:
        yield SmtpServer(host=_HOST, port=controller.port, _inbox=inbox)
    finally:
        controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A fresh SMTP server with an empty inbox for each test."""
    with running_smtp_server() as server:
        yield server


def _start_on_a_free_port(inbox: _Inbox) -> Controller:
    # A port chosen free can be taken again before aiosmtpd binds it.
    attempts_left = _PORT_ATTEMPTS
    while True:
        controller = Controller(
            inbox,
            hostname=_HOST,
            port=free_port(),
            # Without it aiosmtpd asks DNS for this machine's FQDN at every start.
            server_hostname="localhost",
        )
        try:
            controller.start()
        except OSError:
            controller.loop.close()
            attempts_left -= 1
            if not attempts_left:
                raise
        else:
            return controller


def _parse(
    envelope_sender: str | None, recipients: list[str], content: bytes
) -> ReceivedEmail:
    message = message_from_bytes(content, policy=policy.default)
    assert isinstance(message, EmailMessage)
    body_part = message.get_body(preferencelist=("plain", "html"))
    return ReceivedEmail(
        envelope_sender=envelope_sender or "",
        recipients=tuple(recipients),
        sender=str(message["From"] or ""),
        to=_addresses(message["To"]),
        subject=str(message["Subject"] or ""),
        body=_text_of(body_part),
        message=message,
    )


def _addresses(header: Any) -> tuple[str, ...]:
    if header is None:
        return ()
    return tuple(address.addr_spec for address in header.addresses)


def _text_of(part: Any) -> str:
    if part is None:
        return ""
    # SMTP carries CRLF line ends; tests (and templates) are written with "\n".
    return str(part.get_content()).replace("\r\n", "\n")
