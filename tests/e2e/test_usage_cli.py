"""Usage files from the ``monetise`` command line: ingest, batches, usage, daemon.

The commands run in-process through typer's CliRunner against the database of
the test (SQLite or PostgreSQL); the daemon runs as its own process, stopped
with Ctrl-C as an operator would.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from api.cli import app
from application.settings import Settings
from domain.usage_batch import batch_id_for
from tests.application.test_usage_loading import SAMPLES, record, usage_file
from tests.application.workflow_fixtures import Line, Operator, operator_for
from tests.e2e.test_command_line import environment

runner = CliRunner()


@pytest.fixture
def operator(settings: Settings) -> Iterator[Operator]:
    """The platform with the demo catalogue, as agents and the worker use it."""
    yield from operator_for(settings)


@pytest.fixture
def line(operator: Operator) -> Line:
    created = operator.new_line()
    operator.settle()
    return created


def monetise(settings: Settings, *args: str) -> Result:
    env = {"MONETISE_HOME": str(settings.home)}
    return runner.invoke(
        app, list(args), env={**env, "MONETISE_DATABASE_URL": settings.database_url}
    )


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


def write(folder: Path, name: str, content: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(content)
    return path


def batch_of(content: str) -> str:
    return str(batch_id_for(hashlib.sha256(content.encode()).hexdigest()))


def test_ingest_loads_a_file_and_prints_its_batch_and_counts(
    settings: Settings, line: Line, tmp_path: Path
) -> None:
    content = usage_file(
        "OCS1-0200",
        [
            record("A-1", msisdn=line.msisdn),
            record("A-2", msisdn=line.msisdn, usage_class="SMS_NAT", units=1),
            record("A-3", msisdn="447799000020"),
        ],
    )
    path = write(tmp_path / "outbox", "OCS1-0200.json", content)

    output = ok(monetise(settings, "ingest", str(path)))

    assert f"OCS1-0200.json: batch {batch_of(content)} completed" in output
    assert "records 3, loaded_postpaid 2, loaded_prepaid 0" in output
    assert "rejected_configuration 1" in output
    assert not path.exists()  # taken, never deleted unread:
    archived = settings.home / "archive" / "load-rated-usage" / "OCS1-0200.json"
    assert archived.read_text() == content
    shown = json.loads(ok(monetise(settings, "batches", "show", batch_of(content))))
    assert (shown["received_by"], shown["status"]) == ("cli", "completed")


def test_the_same_content_ingested_again_is_refused_as_a_duplicate(
    settings: Settings, line: Line, tmp_path: Path
) -> None:
    content = usage_file("OCS1-0201", [record("B-1", msisdn=line.msisdn)])
    ok(monetise(settings, "ingest", str(write(tmp_path / "a", "first.json", content))))

    again = monetise(
        settings, "ingest", str(write(tmp_path / "b", "again.json", content))
    )

    assert again.exit_code == 1, again.output
    assert "again.json: refused (duplicate)" in again.output
    assert "already received as first.json" in again.output
    quarantine = settings.home / "quarantine" / "load-rated-usage"
    assert (quarantine / "again.json").read_text() == content
    reason = json.loads((quarantine / "again.json.error.json").read_text())
    assert (reason["code"], reason["details"]["batch_id"]) == (
        "duplicate",
        batch_of(content),
    )


def test_batches_are_listed_shown_their_errors_read_and_reprocessed(
    settings: Settings, operator: Operator, line: Line, tmp_path: Path
) -> None:
    # Given a batch with a record of an unknown number and a malformed record
    waiting = "447799000021"
    content = usage_file(
        "OCS1-0202",
        [
            record("C-1", msisdn=line.msisdn),
            record("C-2", msisdn=waiting),
            record("C-3", msisdn=line.msisdn, start_time="yesterday"),
        ],
    )
    ok(monetise(settings, "ingest", str(write(tmp_path, "c.json", content))))
    batch_id = batch_of(content)

    listed = ok(monetise(settings, "batches", "list"))
    failed = ok(monetise(settings, "batches", "list", "--status", "failed"))
    shown = json.loads(ok(monetise(settings, "batches", "show", batch_id)))
    errors = ok(monetise(settings, "batches", "errors", batch_id))
    schema = ok(monetise(settings, "batches", "errors", batch_id, "--class", "schema"))

    assert batch_id in listed
    assert "completed" in listed
    assert "c.json  records 3, loaded 1, rejected 2" in listed
    assert failed == ""
    assert shown["errors_by_class"] == {"schema": 1, "configuration": 1, "duplicate": 0}
    assert "C-2" in errors
    assert "unknown_msisdn" in errors
    assert "/records/1/msisdn" in errors
    assert "bad_format" in errors
    assert "C-2" not in schema
    assert "/records/2/start_time" in schema

    # When the number's subscription exists and the batch is reprocessed
    operator.care.create_subscription(
        account_id=line.account_id, msisdn=waiting, actor="agent-1"
    )
    operator.settle()
    reprocessed = ok(monetise(settings, "batches", "reprocess", batch_id))
    again = monetise(settings, "batches", "reprocess", batch_id)
    unknown = monetise(
        settings, "batches", "show", "0e6b8d4c-52b3-4c3c-9a55-2a7d35a8f1a1"
    )

    # Then the rejected record is loaded and leaves the error list
    assert "loaded_postpaid 2" in reprocessed
    assert "rejected_configuration 0" in reprocessed
    assert "C-2" not in ok(monetise(settings, "batches", "errors", batch_id))
    assert again.exit_code == 2
    assert "no records rejected for configuration errors" in again.output
    assert unknown.exit_code == 2
    assert "no usage batch 0e6b8d4c" in unknown.output


def test_usage_of_a_period_is_printed_as_a_table_or_as_json(
    settings: Settings, operator: Operator, line: Line, tmp_path: Path
) -> None:
    prepaid = operator.new_line(payment_type="prepaid")
    operator.settle()
    content = usage_file(
        "OCS1-0203",
        [
            *(
                record(
                    f"D-{day}",
                    msisdn=line.msisdn,
                    start_time=f"2026-11-{day}T12:00:00Z",
                )
                for day in (19, 20, 21)
            ),
            record(
                "E-1", msisdn=prepaid.msisdn, volume_bytes=2048, duration_seconds=None
            ),
        ],
    )
    ok(monetise(settings, "ingest", str(write(tmp_path, "d.json", content))))
    subscription = str(line.subscription_id)
    period = ("--from", "2026-11-20T00:00:00Z", "--to", "2026-11-21T00:00:00+00:00")

    table = ok(monetise(settings, "usage", "rated", subscription, *period))
    as_json = json.loads(
        ok(monetise(settings, "usage", "rated", subscription, "--json"))
    )
    prepaid_table = ok(
        monetise(settings, "usage", "prepaid", str(prepaid.subscription_id))
    )
    bad_from = monetise(settings, "usage", "rated", subscription, "--from", "yesterday")
    backwards = monetise(
        settings, "usage", "rated", subscription, "--from", period[3], "--to", period[1]
    )
    nobody = monetise(
        settings, "usage", "rated", "0e6b8d4c-52b3-4c3c-9a55-2a7d35a8f1a1"
    )

    assert "2026-11-20T12:00:00  D-20" in table
    assert "D-19" not in table
    assert "D-21" not in table
    assert "125 s" in table
    assert "1 record(s); charge 0.2500, discount 0, net 0.2500 GBP" in table
    assert [row["id"] for row in as_json["usage"]] == ["D-19", "D-20", "D-21"]
    assert as_json["totals"]["records"] == 3
    assert (as_json["subscription_id"], as_json["from"]) == (subscription, None)
    assert "E-1" in prepaid_table
    assert "2048 B" in prepaid_table
    assert bad_from.exit_code == 2
    assert "--from" in bad_from.output
    assert "not an RFC 3339 date-time" in bad_from.output
    assert backwards.exit_code == 2
    assert "must be before --to" in backwards.output
    assert nobody.exit_code == 2
    assert "no subscription" in nobody.output


def test_a_vendor_file_is_transformed_then_loaded(
    settings: Settings, tmp_path: Path, operator: Operator
) -> None:
    sample = tmp_path / "ocs-sample.jsonl"
    shutil.copy(SAMPLES / "ocs-sample.jsonl", sample)

    result = monetise(settings, "ingest", "--directory", "ocs", str(sample))

    output = ok(result)
    assert "ocs-sample.jsonl: transformed; now archive/transform-ocs/" in output
    assert "ocs-sample.json: batch " in output
    (batch,) = json.loads(ok(monetise(settings, "batches", "list", "--json")))
    assert batch["status"] == "completed"
    assert batch["counts"]["records"] > 0


def test_an_unknown_daemon_exits_2_naming_the_daemons(settings: Settings) -> None:
    result = monetise(settings, "daemon", "load-everything")

    assert result.exit_code == 2
    assert "No daemon 'load-everything'" in result.output
    assert "load-rated-usage, load-unrated-usage, transform-openet" in result.output


@pytest.mark.timeout(180)
def test_a_daemon_loads_dropped_files_until_ctrl_c(
    settings: Settings, line: Line
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "daemon", "load-rated-usage"],
        env=environment(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    archived = settings.home / "archive" / "load-rated-usage" / "dropped.json"
    try:
        inbound = settings.home / "inbound" / "rated"
        content = usage_file("DROP-1", [record("F-1", msisdn=line.msisdn)])
        write(inbound, ".dropped.json.tmp", content).rename(inbound / "dropped.json")
        deadline = time.monotonic() + 90
        while not archived.exists() and time.monotonic() < deadline:
            assert process.poll() is None, process.stdout.read()  # type: ignore[union-attr]
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)

    assert archived.exists(), output
    assert process.returncode == 0, output
    assert "load-rated-usage: stopped." in output
    rated: Any = json.loads(
        ok(monetise(settings, "usage", "rated", str(line.subscription_id), "--json"))
    )
    assert [row["id"] for row in rated["usage"]] == ["F-1"]
