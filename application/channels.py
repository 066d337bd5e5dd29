"""Communication channels: e-mail over SMTP, everything else to the outbox.

The outbox (``$MONETISE_HOME/outbox/<channel>/<message_id>.json``) is what the
SMS gateway, the push service and the print house collect from; it also takes
e-mail when no SMTP server is configured. Each file is one TM Forum TMF681
``CommunicationMessage``, written atomically and at most once per message id,
so that a retried actioned item never sends a customer the same message twice.
"""

from __future__ import annotations

import json
import re
import smtplib
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from application.files import (
    BATCH_WRITER_MIN_FILES,
    EXISTS,
    WRITTEN,
    BatchWriter,
    write_atomically,
)

CHANNELS = ("email", "sms", "letter", "push")
DEFAULT_SENDER = "noreply@monetise.invalid"
DEFAULT_SMTP_TIMEOUT_S = 10.0

# TMF681 messageType per channel.
_MESSAGE_TYPES = {"email": "Email", "sms": "SMS", "letter": "Letter", "push": "Push"}
_NO_RECEIVER = {
    "email": "no e-mail address for the customer",
    "sms": "no MSISDN for the subscription",
    "letter": "no postal address for the customer",
    "push": "no device or subscription id to push to",
}
# A message id names a file: nothing that could leave the channel's directory
# or hide the file as a dot-file.
_MESSAGE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]*")
# 7-bit transfer encodings reach every SMTP server, 8BITMIME or not.
_SMTP_POLICY = policy.SMTP.clone(cte_type="7bit")


@dataclass(frozen=True)
class Message:
    """One communication to one receiver, ready to send.

    ``message_id`` is the actioned item's id: sending the same id twice to the
    outbox writes it once. ``receiver`` is what the channel addresses: an
    e-mail address, an MSISDN, a postal address, or a device/subscription id.
    """

    message_id: str
    channel: str
    receiver: str
    subject: str | None
    body: str
    language: str
    workflow_event: str
    created_at: datetime


class DeliveryError(Exception):
    """A message could not be handed over; ``reason`` says why, for people."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Channels:
    """Sends messages on their channel: SMTP for e-mail if configured, else files.

    ``smtp_url`` is ``smtp://host[:port]`` (port 25 by default). ``clock`` gives
    the ``sendTime`` of outbox files; tests pass a fixed one.
    """

    def __init__(
        self,
        home: Path,
        smtp_url: str | None,
        *,
        sender: str = DEFAULT_SENDER,
        smtp_timeout: float = DEFAULT_SMTP_TIMEOUT_S,
        clock: Callable[[], datetime] | None = None,
        writer: BatchWriter | None = None,
    ) -> None:
        self.outbox = home / "outbox"
        self._smtp = _parse_smtp_url(smtp_url) if smtp_url else None
        self._sender = sender
        self._smtp_timeout = smtp_timeout
        self._clock = clock or _utc_now
        # Writes batches of outbox files in a helper process.
        self.writer = writer or BatchWriter()

    @property
    def uses_smtp_for_email(self) -> bool:
        """Whether e-mail goes to an SMTP server (which cannot be asked later)."""
        return self._smtp is not None

    def send(self, message: Message) -> str:
        """Deliver ``message``; return a short note of where it went.

        Raises ``DeliveryError`` when the channel is unknown, the receiver is
        missing, or the SMTP server cannot be reached or refuses the e-mail.
        """
        _check(message)
        if message.channel == "email" and self._smtp is not None:
            return self._send_smtp(message, *self._smtp)
        return self._write_outbox(message)

    def goes_to_outbox(self, message: Message) -> bool:
        """Whether ``message`` is delivered as an outbox file (not by SMTP)."""
        return not (message.channel == "email" and self._smtp is not None)

    def write_to_outbox(
        self, messages: Sequence[Message]
    ) -> Future[list[str | DeliveryError]]:
        """Write many messages to the outbox; a future of, per message, the note
        ``send`` would give or the ``DeliveryError`` it would raise.

        Every file is durable once the future is done. A few messages are sent
        one by one at once; a batch is written by a helper process while the
        caller goes on, each file synced and each directory synced once.
        """
        done: Future[list[str | DeliveryError]] = Future()
        if len(messages) < BATCH_WRITER_MIN_FILES:
            done.set_result([self._sent(message) for message in messages])
            return done
        refused: dict[int, DeliveryError] = {}
        files: list[tuple[str, str]] = []
        for index, message in enumerate(messages):
            try:
                _check(message)
                if not self.goes_to_outbox(message):
                    raise DeliveryError("an e-mail for the SMTP server, not the outbox")
            except DeliveryError as error:
                refused[index] = error
                continue
            target = self._outbox_file(message.channel, message.message_id)
            files.append((str(target), self._content(message)))

        def notes_of(written: Future[list[str]]) -> list[str | DeliveryError]:
            try:
                outcomes = written.result()
            except OSError as error:
                outcomes = [str(error)] * len(files)
            found = iter(zip(files, outcomes, strict=True))
            notes: list[str | DeliveryError] = []
            for index in range(len(messages)):
                if index in refused:
                    notes.append(refused[index])
                    continue
                (target, _), outcome = next(found)
                if outcome == WRITTEN:
                    notes.append(f"outbox {target}")
                elif outcome == EXISTS:
                    notes.append(f"already in outbox {target}")
                else:
                    notes.append(
                        DeliveryError(f"cannot write outbox file {target}: {outcome}")
                    )
            return notes

        def report(written: Future[list[str]]) -> None:
            try:
                done.set_result(notes_of(written))
            except BaseException as error:  # never leave the caller waiting
                done.set_exception(error)

        self.writer.submit(files).add_done_callback(report)
        return done

    def _sent(self, message: Message) -> str | DeliveryError:
        try:
            return self.send(message)
        except DeliveryError as error:
            return error

    def close(self) -> None:
        """Stop the outbox's helper process, if one was started."""
        self.writer.close()

    def already_delivered(self, message_id: str, channel: str) -> bool:
        """Whether the outbox already holds this message (always False for SMTP).

        An SMTP server gives no way to ask whether it has seen a message, so an
        e-mail over SMTP is never reported as delivered before it is sent.
        """
        if channel == "email" and self._smtp is not None:
            return False
        if channel not in CHANNELS or not _MESSAGE_ID.fullmatch(message_id):
            return False
        return self._outbox_file(channel, message_id).exists()

    def _outbox_file(self, channel: str, message_id: str) -> Path:
        return self.outbox / channel / f"{message_id}.json"

    def _write_outbox(self, message: Message) -> str:
        target = self._outbox_file(message.channel, message.message_id)
        if target.exists():
            return f"already in outbox {target}"
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            write_atomically(target, [self._content(message)])
        except OSError as error:
            raise DeliveryError(f"cannot write outbox file {target}: {error}") from None
        return f"outbox {target}"

    def _content(self, message: Message) -> str:
        document = self._communication_message(message)
        try:
            # The same text as json.dumps(indent=2, ensure_ascii=False), in a
            # fifth of the time.
            return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"
        except orjson.JSONEncodeError:  # text that only json writes (surrogates)
            return json.dumps(document, indent=2, ensure_ascii=False) + "\n"

    def _communication_message(self, message: Message) -> dict[str, Any]:
        document: dict[str, Any] = {
            "id": message.message_id,
            "@type": "CommunicationMessage",
            "messageType": _MESSAGE_TYPES[message.channel],
            "content": message.body,
            "receiver": [_receiver(message.channel, message.receiver)],
            "state": "completed",
            "sendTime": self._clock().astimezone(UTC).isoformat(),
            "workflowEvent": message.workflow_event,
            "language": message.language,
            "createdAt": message.created_at.astimezone(UTC).isoformat(),
        }
        if message.subject is not None:
            document["subject"] = message.subject
        if message.channel == "email":
            document["sender"] = {"email": self._sender}
        return document

    def _send_smtp(self, message: Message, host: str, port: int) -> str:
        email = self._email(message)
        where = f"SMTP server {host}:{port}"
        try:
            with smtplib.SMTP(host, port, timeout=self._smtp_timeout) as client:
                # The steps of sendmail() one by one, to report the server's
                # own reply for the delivery note.
                client.ehlo_or_helo_if_needed()
                code, reply = client.mail(self._sender)
                if code != 250:
                    raise DeliveryError(f"{where} refused the sender: {_text(reply)}")
                code, reply = client.rcpt(message.receiver)
                if code not in (250, 251):
                    raise DeliveryError(
                        f"{where} refused {message.receiver}: {code} {_text(reply)}"
                    )
                code, reply = client.data(email.as_bytes(policy=_SMTP_POLICY))
                if code != 250:
                    raise DeliveryError(f"{where} refused the e-mail: {_text(reply)}")
        except (smtplib.SMTPException, OSError) as error:
            raise DeliveryError(f"{where}: {_describe(error)}") from None
        return f"smtp {code} {_text(reply)}"

    def _email(self, message: Message) -> EmailMessage:
        email = EmailMessage(policy=_SMTP_POLICY)
        email["From"] = self._sender
        email["To"] = message.receiver
        email["Subject"] = message.subject or ""
        email["Date"] = format_datetime(message.created_at.astimezone(UTC))
        # The same id on every retry lets mail systems drop duplicates.
        domain = self._sender.rpartition("@")[2] or "monetise.invalid"
        email["Message-ID"] = f"<{message.message_id}@{domain}>"
        email["X-Monetise-Workflow-Event"] = message.workflow_event
        email.set_content(message.body)
        # After set_content(), which replaces every Content-* header.
        email["Content-Language"] = message.language
        return email


def _check(message: Message) -> None:
    if message.channel not in CHANNELS:
        raise DeliveryError(
            f"unknown channel {message.channel!r}; known: {', '.join(CHANNELS)}"
        )
    if not _MESSAGE_ID.fullmatch(message.message_id):
        raise DeliveryError(f"message id {message.message_id!r} cannot name a file")
    receiver = message.receiver.strip()
    if not receiver:
        raise DeliveryError(_NO_RECEIVER[message.channel])
    if message.channel == "email" and "@" not in receiver:
        raise DeliveryError(f"{receiver!r} is not an e-mail address")


def _receiver(channel: str, receiver: str) -> dict[str, str]:
    """The TMF681 Receiver; a letter's postal address has no field of its own."""
    if channel == "email":
        return {"email": receiver}
    if channel == "sms":
        return {"phoneNumber": receiver}
    if channel == "letter":
        return {"@type": "PostalReceiver", "postalAddress": receiver}
    return {"id": receiver}


def _parse_smtp_url(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "smtp" or not parts.hostname:
        raise ValueError(f"unsupported SMTP URL {url!r}: use smtp://host:port")
    return parts.hostname, parts.port or 25


def _text(reply: bytes | str) -> str:
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    return reply.strip()


def _describe(error: BaseException) -> str:
    if isinstance(error, smtplib.SMTPResponseException):
        return f"{error.smtp_code} {_text(error.smtp_error)}"
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return "recipient refused: " + ", ".join(error.recipients)
    return str(error) or type(error).__name__


def _utc_now() -> datetime:
    return datetime.now(UTC)


__all__ = ["CHANNELS", "DEFAULT_SENDER", "Channels", "DeliveryError", "Message"]
