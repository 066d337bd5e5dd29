"""Communication channels: outbox files and e-mail over a real SMTP server."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from application.channels import Channels, DeliveryError, Message
from tests.harness.ports import free_port
from tests.harness.smtp import SmtpServer

CREATED = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
SENT = datetime(2024, 5, 1, 9, 31, tzinfo=UTC)


def message(channel: str, receiver: str, **changes: object) -> Message:
    welcome = Message(
        message_id="0b6f6f1e-item-1",
        channel=channel,
        receiver=receiver,
        subject=None,
        body="Welcome to monetise mobile, Ada! Your number is 447700900123.",
        language="en",
        workflow_event="CONN WELC",
        created_at=CREATED,
    )
    return replace(welcome, **changes)  # type: ignore[arg-type]


def outbox_channels(home: Path) -> Channels:
    return Channels(home, None, clock=lambda: SENT)


def read_json(path: Path) -> dict[str, object]:
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_an_sms_is_written_to_the_outbox_as_a_tmf681_communication_message(
    tmp_path: Path,
) -> None:
    channels = outbox_channels(tmp_path)

    note = channels.send(message("sms", "447700900123"))

    path = tmp_path / "outbox" / "sms" / "0b6f6f1e-item-1.json"
    assert note == f"outbox {path}"
    assert read_json(path) == {
        "id": "0b6f6f1e-item-1",
        "@type": "CommunicationMessage",
        "messageType": "SMS",
        "content": "Welcome to monetise mobile, Ada! Your number is 447700900123.",
        "receiver": [{"phoneNumber": "447700900123"}],
        "state": "completed",
        "sendTime": "2024-05-01T09:31:00+00:00",
        "workflowEvent": "CONN WELC",
        "language": "en",
        "createdAt": "2024-05-01T09:30:00+00:00",
    }


def test_a_push_notification_is_addressed_to_the_device_id_with_its_subject(
    tmp_path: Path,
) -> None:
    channels = outbox_channels(tmp_path)

    channels.send(message("push", "sub-42", subject="Data add-on"))

    written = read_json(tmp_path / "outbox" / "push" / "0b6f6f1e-item-1.json")
    assert written["messageType"] == "Push"
    assert written["receiver"] == [{"id": "sub-42"}]
    assert written["subject"] == "Data add-on"


def test_a_letter_carries_the_postal_address_and_keeps_non_ascii_text(
    tmp_path: Path,
) -> None:
    channels = outbox_channels(tmp_path)
    address = "Rua Augusta 1, 1100-053 Lisboa"

    channels.send(message("letter", address, body="Caro cliente, não pagou."))

    path = tmp_path / "outbox" / "letter" / "0b6f6f1e-item-1.json"
    written = read_json(path)
    assert written["messageType"] == "Letter"
    assert written["receiver"] == [
        {"@type": "PostalReceiver", "postalAddress": address}
    ]
    assert written["content"] == "Caro cliente, não pagou."
    assert "não" in path.read_text(encoding="utf-8")


def test_without_smtp_an_email_goes_to_the_outbox_with_its_sender(
    tmp_path: Path,
) -> None:
    channels = outbox_channels(tmp_path)

    channels.send(message("email", "ada@example.com", subject="Welcome, Ada"))

    written = read_json(tmp_path / "outbox" / "email" / "0b6f6f1e-item-1.json")
    assert written["messageType"] == "Email"
    assert written["receiver"] == [{"email": "ada@example.com"}]
    assert written["sender"] == {"email": "noreply@monetise.invalid"}
    assert written["subject"] == "Welcome, Ada"


def test_the_outbox_holds_only_the_finished_file_and_no_temporary_one(
    tmp_path: Path,
) -> None:
    channels = outbox_channels(tmp_path)

    channels.send(message("sms", "447700900123"))

    assert [path.name for path in (tmp_path / "outbox" / "sms").iterdir()] == [
        "0b6f6f1e-item-1.json"
    ]


def test_a_message_sent_again_is_not_written_twice(tmp_path: Path) -> None:
    first = Channels(tmp_path, None, clock=lambda: SENT)
    later = Channels(tmp_path, None, clock=lambda: datetime(2024, 6, 1, tzinfo=UTC))
    sms = message("sms", "447700900123")
    first.send(sms)
    path = tmp_path / "outbox" / "sms" / "0b6f6f1e-item-1.json"
    written = path.read_bytes()

    note = later.send(replace(sms, body="a retry with other text"))

    assert note == f"already in outbox {path}"
    assert path.read_bytes() == written
    assert len(list(path.parent.iterdir())) == 1


def test_already_delivered_tells_whether_the_outbox_holds_the_message(
    tmp_path: Path,
) -> None:
    channels = outbox_channels(tmp_path)
    assert not channels.already_delivered("0b6f6f1e-item-1", "sms")

    channels.send(message("sms", "447700900123"))

    assert channels.already_delivered("0b6f6f1e-item-1", "sms")
    assert not channels.already_delivered("0b6f6f1e-item-1", "push")
    assert not channels.already_delivered("another-item", "sms")


@pytest.mark.parametrize(
    ("channel", "reason"),
    [
        ("email", "no e-mail address for the customer"),
        ("sms", "no MSISDN for the subscription"),
        ("letter", "no postal address for the customer"),
        ("push", "no device or subscription id to push to"),
    ],
)
def test_a_message_without_a_receiver_is_refused_with_the_reason(
    tmp_path: Path, channel: str, reason: str
) -> None:
    channels = outbox_channels(tmp_path)

    with pytest.raises(DeliveryError) as raised:
        channels.send(message(channel, "  "))

    assert raised.value.reason == reason
    assert not (tmp_path / "outbox" / channel).exists()


def test_an_email_to_something_that_is_not_an_address_is_refused(
    tmp_path: Path,
) -> None:
    with pytest.raises(DeliveryError, match="not an e-mail address"):
        outbox_channels(tmp_path).send(message("email", "447700900123"))


def test_an_unknown_channel_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DeliveryError, match="unknown channel 'fax'"):
        outbox_channels(tmp_path).send(message("fax", "+44 20 7946 0000"))


def test_a_message_id_that_would_leave_the_outbox_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DeliveryError, match="cannot name a file"):
        outbox_channels(tmp_path).send(
            message("sms", "447700900123", message_id="../../etc/passwd")
        )

    assert not (tmp_path / "outbox").exists()


@pytest.mark.integration
def test_an_email_is_sent_to_the_smtp_server_with_its_message_id(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    channels = Channels(tmp_path, smtp_server.url)

    note = channels.send(
        message("email", "ada@example.com", subject="Welcome, Ada", language="pt")
    )

    [received] = smtp_server.wait_for(1)
    assert note.startswith("smtp 250 ")
    assert received.recipients == ("ada@example.com",)
    assert received.sender == "noreply@monetise.invalid"
    assert received.subject == "Welcome, Ada"
    assert received.body == (
        "Welcome to monetise mobile, Ada! Your number is 447700900123.\n"
    )
    assert received.message["Message-ID"] == "<0b6f6f1e-item-1@monetise.invalid>"
    assert received.message["Content-Language"] == "pt"
    assert received.message["X-Monetise-Workflow-Event"] == "CONN WELC"
    assert not (tmp_path / "outbox").exists()


@pytest.mark.integration
def test_an_email_with_non_ascii_text_arrives_intact_from_a_configured_sender(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    channels = Channels(tmp_path, smtp_server.url, sender="billing@operator.example")

    channels.send(
        message(
            "email",
            "joao@example.com",
            subject="Bem-vindo, João",
            body="Olá João, a sua linha está pronta.",
        )
    )

    [received] = smtp_server.wait_for(1)
    assert received.envelope_sender == "billing@operator.example"
    assert received.subject == "Bem-vindo, João"
    assert received.body == "Olá João, a sua linha está pronta.\n"
    assert received.message["Message-ID"] == "<0b6f6f1e-item-1@operator.example>"


@pytest.mark.integration
def test_over_smtp_an_email_is_never_reported_as_already_delivered(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    channels = Channels(tmp_path, smtp_server.url)
    channels.send(message("email", "ada@example.com"))
    smtp_server.wait_for(1)

    assert not channels.already_delivered("0b6f6f1e-item-1", "email")


def test_sms_is_written_to_the_outbox_even_when_smtp_is_configured(
    tmp_path: Path,
) -> None:
    channels = Channels(tmp_path, f"smtp://127.0.0.1:{free_port()}")

    channels.send(message("sms", "447700900123"))

    assert channels.already_delivered("0b6f6f1e-item-1", "sms")


def test_an_unreachable_smtp_server_raises_a_delivery_error_naming_it(
    tmp_path: Path,
) -> None:
    port = free_port()  # nothing listens there
    channels = Channels(tmp_path, f"smtp://127.0.0.1:{port}", smtp_timeout=5)

    with pytest.raises(DeliveryError) as raised:
        channels.send(message("email", "ada@example.com"))

    assert f"SMTP server 127.0.0.1:{port}" in raised.value.reason
    assert not (tmp_path / "outbox").exists()


def test_an_smtp_url_of_another_scheme_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="smtp://host:port"):
        Channels(Path("unused"), "http://127.0.0.1:25")


# --- batches of messages, written by the helper process ------------------------------


def test_a_batch_is_written_by_the_helper_with_the_notes_send_would_give(
    tmp_path: Path,
) -> None:
    # Given a batch large enough for the helper process: one message already
    # in the outbox, one without a receiver, the others new
    channels = outbox_channels(tmp_path)
    batch = [message("sms", "447700900123", message_id=f"item-{n}") for n in range(40)]
    batch[3] = replace(batch[3], receiver="")
    channels.send(batch[5])
    try:
        # When the batch is written
        notes = channels.write_to_outbox(batch).result(timeout=60)
    finally:
        channels.close()

    # Then each message has the note, or the refusal, that sending it gives
    sms = tmp_path / "outbox" / "sms"
    assert isinstance(notes[3], DeliveryError)
    assert notes[3].reason == "no MSISDN for the subscription"
    assert notes[5] == f"already in outbox {sms / 'item-5.json'}"
    assert notes[0] == f"outbox {sms / 'item-0.json'}"
    assert sum(isinstance(n, str) and n.startswith("outbox ") for n in notes) == 38
    assert sorted(p.name for p in sms.iterdir()) == sorted(
        f"item-{n}.json" for n in range(40) if n != 3
    )


def test_a_batch_writes_each_file_exactly_as_sending_it_alone_does(
    tmp_path: Path,
) -> None:
    text = 'Bonjour Ada — « crédit » épuisé \U0001f4f1\n\tligne 2 \\ "fin"'
    batch = [
        message("letter", "12 rue de la Paix", message_id=f"item-{n}", body=text)
        for n in range(40)
    ]
    alone = outbox_channels(tmp_path / "alone")
    alone.send(batch[0])
    channels = outbox_channels(tmp_path / "batch")
    try:
        channels.write_to_outbox(batch).result(timeout=60)
    finally:
        channels.close()

    name = Path("outbox", "letter", "item-0.json")
    assert (tmp_path / "batch" / name).read_bytes() == (
        tmp_path / "alone" / name
    ).read_bytes()
    assert read_json(tmp_path / "batch" / name)["content"] == text


def test_new_files_leave_files_already_there_and_report_what_could_not_be_written(
    tmp_path: Path,
) -> None:
    from application.files import EXISTS, WRITTEN, write_new_files

    (tmp_path / "sms").mkdir()
    (tmp_path / "sms" / "old.json").write_text("as it was", encoding="utf-8")
    (tmp_path / "blocked").write_text("a file where a directory should be")
    files = [
        (str(tmp_path / "sms" / "old.json"), "new text"),
        (str(tmp_path / "blocked" / "x.json"), "cannot be written"),
        *((str(tmp_path / "push" / f"{n}.json"), f"message {n}") for n in range(300)),
    ]

    results = write_new_files(files)

    assert results[0] == EXISTS
    assert "File exists" in results[1]
    assert results[2:] == [WRITTEN] * 300
    assert (tmp_path / "sms" / "old.json").read_text(encoding="utf-8") == "as it was"
    assert (tmp_path / "push" / "299.json").read_text(encoding="utf-8") == "message 299"
    # Nothing half written is left beside them.
    assert sorted(p.name for p in (tmp_path / "sms").iterdir()) == ["old.json"]
    assert len(list((tmp_path / "push").iterdir())) == 300
