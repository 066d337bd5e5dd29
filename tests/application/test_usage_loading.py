"""Usage files dropped into the inbound directories end up record by record in
the rated-usage and prepaid-usage views of their subscriptions."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from domain.usage_batch import BatchNotReprocessable
from ingest.daemons import daemon
from ingest.keyring import KeyRing, encrypt_file
from tests.application.workflow_fixtures import Line, Operator

SAMPLES = Path(__file__).resolve().parents[2] / "ingest" / "samples"


def record(record_id: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "record_id": record_id,
        "usage_class": "VOICE_NAT",
        "start_time": "2026-11-21T09:58:01Z",
        "duration_seconds": 125,
        "direction": "MO",
        "charge": {"amount": "0.2500", "currency": "GBP"},
    }
    base.update(fields)
    return {key: value for key, value in base.items() if value is not None}


def usage_file(file_id: str, records: list[dict[str, Any]], kind: str = "rated") -> str:
    header = {
        "file_id": file_id,
        "source": "OCS1",
        "created_at": "2026-11-21T10:00:00Z",
        "kind": kind,
        "record_count": len(records),
    }
    return json.dumps({"header": header, "records": records}, indent=1)


def drop(
    operator: Operator, name: str, content: str | bytes, into: str = "rated"
) -> Path:
    inbound = operator.platform.settings.home / "inbound" / into
    inbound.mkdir(parents=True, exist_ok=True)
    partial = inbound / f".{name}.tmp"
    partial.write_bytes(content.encode() if isinstance(content, str) else content)
    return partial.rename(inbound / name)


def load(operator: Operator, directory: str = "rated") -> list[Any]:
    name = {"rated": "load-rated-usage", "unrated": "load-unrated-usage"}[directory]
    handled = daemon(name, operator.platform).scan_once()
    operator.platform.usage_views.catch_up()
    return handled


def rated(operator: Operator, line: Line, **period: str) -> list[dict[str, Any]]:
    rows, _ = operator.platform.usage_views.batches.usage(
        "postpaid",
        str(line.subscription_id),
        period.get("start"),
        period.get("end"),
        100,
        0,
    )
    return rows


def prepaid(operator: Operator, line: Line) -> list[dict[str, Any]]:
    rows, _ = operator.platform.usage_views.batches.usage(
        "prepaid", str(line.subscription_id), None, None, 100, 0
    )
    return rows


def only_batch(operator: Operator) -> dict[str, Any]:
    (batch,) = operator.platform.usage_views.batches.batches(None, None, 10, 0)
    return batch


@pytest.fixture
def lines(operator: Operator) -> tuple[Line, Line]:
    postpaid, prepaid_line = (
        operator.new_line(),
        operator.new_line(payment_type="prepaid"),
    )
    operator.settle()
    return postpaid, prepaid_line


def test_a_rated_file_loads_each_record_into_the_view_of_its_payment_type(
    operator: Operator, lines: tuple[Line, Line]
) -> None:
    postpaid, prepaid_line = lines
    drop(
        operator,
        "OCS1-0001.json",
        usage_file(
            "OCS1-0001",
            [
                record(
                    "OCS1-000001",
                    msisdn=postpaid.msisdn,
                    called_number="441632960001",
                    mcc="234",
                    mnc="15",
                    discount={"amount": "0.0500"},
                ),
                record(
                    "OCS1-000002",
                    msisdn=prepaid_line.msisdn,
                    usage_class="DATA_ROAM",
                    duration_seconds=None,
                    volume_bytes=10485760,
                    start_time="2026-11-21T10:59:00+01:00",
                    mcc="208",
                    mnc="01",
                    charge={"amount": "1.0000", "currency": "GBP"},
                ),
            ],
        ),
    )

    (handled,) = load(operator)

    assert handled.outcome == "archived"
    assert (
        operator.platform.settings.home / "archive/load-rated-usage/OCS1-0001.json"
    ).exists()
    (call,) = rated(operator, postpaid)
    assert call["id"] == "OCS1-000001"
    assert (call["usage_class"], call["direction"]) == ("VOICE_NAT", "MO")
    assert (call["mcc"], call["mnc"], call["roaming"]) == ("234", "15", False)
    assert (call["charge"], call["discount"], call["net"]) == (
        "0.2500",
        "0.0500",
        "0.2000",
    )
    assert call["duration_seconds"] == 125
    (data,) = prepaid(operator, prepaid_line)
    assert data["usage_date"].startswith("2026-11-21T09:59:00")  # stored in UTC
    assert (data["mcc"], data["mnc"], data["roaming"]) == ("208", "01", True)
    assert data["volume_bytes"] == 10485760
    batch = only_batch(operator)
    assert batch["status"] == "completed"
    assert batch["counts"]["loaded_postpaid"] == 1
    assert batch["counts"]["loaded_prepaid"] == 1
    subscription = operator.care.subscription(prepaid_line.subscription_id)
    assert subscription.prepaid_balance == Decimal("-1.0000")


def test_mcc_and_mnc_come_from_the_imsi_when_the_record_has_none(
    operator: Operator,
) -> None:
    account = operator.new_line().account_id
    subscription_id = operator.care.create_subscription(
        account_id=account, msisdn="447700911111", imsi="310260000000001", actor="t"
    )
    operator.settle()
    drop(
        operator,
        "imsi.json",
        usage_file("IMSI-1", [record("IMSI-1-1", imsi="310260000000001")]),
    )

    load(operator)

    rows, _ = operator.platform.usage_views.batches.usage(
        "postpaid", str(subscription_id), None, None, 10, 0
    )
    # 310 is a North American MCC: three-digit MNCs.
    assert [(r["mcc"], r["mnc"], r["roaming"]) for r in rows] == [("310", "260", True)]


def test_an_encrypted_file_loads_like_a_plain_one(
    operator: Operator, lines: tuple[Line, Line], tmp_path: Path
) -> None:
    postpaid, _ = lines
    keyring = KeyRing.in_home(operator.platform.settings.home)
    keyring.generate("ocs1-2026-11")
    plain = tmp_path / "OCS1-0002.json"
    plain.write_text(
        usage_file("OCS1-0002", [record("OCS1-000010", msisdn=postpaid.msisdn)])
    )
    sealed = tmp_path / "OCS1-0002.json.enc"
    encrypt_file(plain, sealed, keyring.public_key("ocs1-2026-11"), "ocs1-2026-11")
    drop(operator, sealed.name, sealed.read_bytes())

    (handled,) = load(operator)

    assert handled.outcome == "archived"
    assert [row["id"] for row in rated(operator, postpaid)] == ["OCS1-000010"]
    assert only_batch(operator)["key_id"] == "ocs1-2026-11"
    leftovers = list((operator.platform.settings.home / "processing").rglob("*"))
    assert [p for p in leftovers if p.is_file()] == []  # no plaintext left behind


def test_the_same_file_again_is_refused_as_a_duplicate(
    operator: Operator, lines: tuple[Line, Line]
) -> None:
    postpaid, _ = lines
    content = usage_file("OCS1-0003", [record("OCS1-000020", msisdn=postpaid.msisdn)])
    drop(operator, "OCS1-0003.json", content)
    load(operator)

    drop(operator, "OCS1-0003.json", content)
    (handled,) = load(operator)

    assert handled.outcome == "quarantined"
    assert handled.code == "duplicate"
    quarantine = operator.platform.settings.home / "quarantine" / "load-rated-usage"
    error = json.loads((quarantine / "OCS1-0003.json.error.json").read_text())
    assert error["code"] == "duplicate"
    assert "already received as OCS1-0003.json" in error["reason"]
    assert len(rated(operator, postpaid)) == 1
    assert len(operator.platform.usage_views.batches.batches(None, None, 10, 0)) == 1


def test_bad_records_are_listed_and_reprocessing_loads_exactly_them(
    operator: Operator, lines: tuple[Line, Line]
) -> None:
    postpaid, _ = lines
    drop(
        operator,
        "mixed.json",
        usage_file(
            "MIXED-1",
            [
                record("M-1", msisdn=postpaid.msisdn),
                record("M-2", msisdn="447799000001"),  # nobody has it yet
                record("M-3", msisdn=postpaid.msisdn, start_time="yesterday"),
                record("M-4", msisdn=postpaid.msisdn, usage_class="HOLOGRAM"),
                record("M-5", msisdn="447799000001", usage_class="SMS_NAT", units=1),
                record("M-1", msisdn=postpaid.msisdn),
            ],
        ),
    )
    load(operator)
    batch = only_batch(operator)
    errors = operator.platform.usage_views.batches.errors(batch["id"], None, 50, 0)
    assert [
        (e["record_id"], e["error_class"], e["code"], e["path"]) for e in errors
    ] == [
        ("M-2", "configuration", "unknown_msisdn", "/records/1/msisdn"),
        ("M-3", "schema", "bad_format", "/records/2/start_time"),
        ("M-4", "configuration", "unknown_usage_class", "/records/3/usage_class"),
        ("M-5", "configuration", "unknown_msisdn", "/records/4/msisdn"),
        ("M-1", "duplicate", "duplicate_record", "/records/5/record_id"),
    ]
    assert [row["id"] for row in rated(operator, postpaid)] == ["M-1"]

    account = operator.care.subscription(postpaid.subscription_id).account_id
    late = operator.care.create_subscription(
        account_id=account, msisdn="447799000001", actor="agent-1"
    )
    operator.settle()
    result = operator.platform.usage.reprocess(UUID(batch["id"]), "agent-1")
    operator.platform.usage_views.catch_up()

    assert result.counts["loaded_postpaid"] == 3
    late_rows, totals = operator.platform.usage_views.batches.usage(
        "postpaid", str(late), None, None, 10, 0
    )
    assert sorted(row["id"] for row in late_rows) == ["M-2", "M-5"]
    assert totals["records"] == 2
    errors = operator.platform.usage_views.batches.errors(batch["id"], None, 50, 0)
    assert [(e["record_id"], e["code"]) for e in errors] == [
        ("M-3", "bad_format"),
        ("M-4", "unknown_usage_class"),
        ("M-1", "duplicate_record"),
    ]
    after = operator.platform.usage_views.batches.batch(batch["id"])
    assert after is not None
    assert after["runs"] == 1
    assert after["errors_by_class"] == {"schema": 1, "configuration": 1, "duplicate": 1}
    # M-4 waits for a catalogue change: running again changes nothing else.
    again = operator.platform.usage.reprocess(UUID(batch["id"]), "agent-1")
    assert again.counts == result.counts
    operator.platform.usage_views.catch_up()
    assert [row["id"] for row in rated(operator, postpaid)] == ["M-1"]


def test_reprocessing_twice_never_loads_a_record_twice(
    operator: Operator, lines: tuple[Line, Line]
) -> None:
    postpaid, _ = lines
    drop(
        operator,
        "later.json",
        usage_file("LATER-1", [record("L-1", msisdn="447799000002")]),
    )
    load(operator)
    batch_id = UUID(only_batch(operator)["id"])
    account = operator.care.subscription(postpaid.subscription_id).account_id
    late = operator.care.create_subscription(
        account_id=account,
        msisdn="447799000002",
        payment_type="prepaid",
        actor="agent-1",
    )
    operator.settle()

    operator.platform.usage.reprocess(batch_id, "agent-1")
    with pytest.raises(BatchNotReprocessable):
        operator.platform.usage.reprocess(batch_id, "agent-1")

    operator.platform.usage_views.catch_up()
    batch = operator.platform.usage_views.batches.batch(str(batch_id))
    assert batch is not None
    assert batch["counts"]["loaded_prepaid"] == 1
    operator.platform.views.catch_up()
    view = operator.platform.views.subscriptions.get(late)
    assert view is not None
    assert view["prepaid_balance"] == "-0.2500"


def test_usage_goes_to_whoever_held_the_number_at_the_usage_time(
    operator: Operator,
) -> None:
    first = operator.new_line()
    operator.raise_on(first, "CRED DISC")
    operator.later(timedelta(days=15))  # the disconnection runs 14 days later
    released = operator.care.subscription(first.subscription_id)
    assert released.status == "disconnected"
    second = operator.care.create_subscription(
        account_id=first.account_id, msisdn=first.msisdn, actor="agent-1"
    )
    operator.settle()
    drop(
        operator,
        "recycled.json",
        usage_file(
            "RECYCLED",
            [
                record("R-old", msisdn=first.msisdn, start_time="2026-01-01T00:00:00Z"),
                record("R-new", msisdn=first.msisdn, start_time="2099-01-01T00:00:00Z"),
            ],
        ),
    )

    load(operator)

    assert [row["id"] for row in rated(operator, first)] == ["R-old"]
    new_rows, _ = operator.platform.usage_views.batches.usage(
        "postpaid", str(second), None, None, 10, 0
    )
    assert [row["id"] for row in new_rows] == ["R-new"]


def test_usage_of_a_period_is_selected_by_its_start_time(
    operator: Operator, lines: tuple[Line, Line]
) -> None:
    postpaid, _ = lines
    drop(
        operator,
        "period.json",
        usage_file(
            "PERIOD",
            [
                record(
                    f"P-{day}",
                    msisdn=postpaid.msisdn,
                    start_time=f"2026-11-{day}T12:00:00Z",
                )
                for day in (20, 21, 22)
            ],
        ),
    )
    load(operator)

    rows = rated(
        operator,
        postpaid,
        start="2026-11-21T00:00:00.000000+00:00",
        end="2026-11-22T00:00:00.000000+00:00",
    )

    assert [row["id"] for row in rows] == ["P-21"]


def test_openet_and_ocs_samples_end_up_as_loaded_batches(operator: Operator) -> None:
    owner = operator.new_line()
    for msisdn, imsi in [
        ("447700900123", "234150000000001"),
        ("447700900124", "234150000000002"),
        ("447700900125", "234150000000003"),
    ]:
        operator.care.create_subscription(
            account_id=owner.account_id, msisdn=msisdn, imsi=imsi, actor="agent-1"
        )
    operator.settle()
    home = operator.platform.settings.home
    for name, sample, directory in [
        ("transform-openet", "openet-sample.csv", "openet"),
        ("transform-ocs", "ocs-sample.jsonl", "ocs"),
    ]:
        transformer = daemon(name, operator.platform)
        (home / "inbound" / directory).mkdir(parents=True, exist_ok=True)
        shutil.copy(SAMPLES / sample, home / "inbound" / directory / sample)
        (handled,) = transformer.scan_once()
        assert handled.outcome == "archived"
        # The sample's deliberately broken lines are reported beside the rest.
        errors = home / "quarantine" / name / f"{Path(sample).stem}.errors.json"
        assert json.loads(errors.read_text())["error_count"] >= 1

    handled = load(operator)

    assert sorted(h.outcome for h in handled) == ["archived", "archived"]
    batches = operator.platform.usage_views.batches.batches(None, None, 10, 0)
    for batch in batches:
        assert batch["status"] == "completed"
        assert batch["counts"]["loaded_postpaid"] == batch["counts"]["records"] > 0
        assert batch["errors_by_class"] == {
            "schema": 0,
            "configuration": 0,
            "duplicate": 0,
        }


def crash_on_third_chunk(
    operator: Operator, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., None]:
    """Make the loader die as it stages its third chunk; the loader's own
    staging, to put back."""
    loader = operator.platform.usage
    staged: Callable[..., None] = loader._stage
    calls = 0

    def crashing(*args: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OSError("the machine went down")
        staged(*args)

    monkeypatch.setattr(loader, "_stage", crashing)
    return staged


def test_a_load_interrupted_by_a_crash_resumes_without_loading_twice(
    operator: Operator, lines: tuple[Line, Line], monkeypatch: pytest.MonkeyPatch
) -> None:
    postpaid, _ = lines
    operator.platform.usage.chunk_records = 2
    drop(
        operator,
        "big.json",
        usage_file("BIG", [record(f"B-{n}", msisdn=postpaid.msisdn) for n in range(7)]),
    )
    loader = operator.platform.usage
    staged = crash_on_third_chunk(operator, monkeypatch)
    (handled,) = load(operator)
    assert handled.outcome == "retry"
    monkeypatch.setattr(loader, "_stage", staged)

    # A restarted daemon finds the file where the crash left it.
    (handled,) = daemon("load-rated-usage", operator.platform).scan_once()
    operator.platform.usage_views.catch_up()

    assert handled.outcome == "archived"
    assert [row["id"] for row in rated(operator, postpaid)] == [
        f"B-{n}" for n in range(7)
    ]
    batch = only_batch(operator)
    assert batch["counts"]["records"] == 7
    assert batch["counts"]["loaded_postpaid"] == 7
    assert batch["errors_by_class"]["duplicate"] == 0


def test_a_batch_still_loading_shows_the_records_read_so_far_refused_ones_included(
    operator: Operator, lines: tuple[Line, Line], monkeypatch: pytest.MonkeyPatch
) -> None:
    postpaid, _ = lines
    operator.platform.usage.chunk_records = 2
    records = [record(f"L-{n}", msisdn=postpaid.msisdn) for n in range(6)]
    records[1] = record("L-1", msisdn="447799000001")  # nobody's number
    drop(operator, "slow.json", usage_file("SLOW", records))
    crash_on_third_chunk(operator, monkeypatch)
    load(operator)
    operator.platform.usage_views.catch_up()

    batch = only_batch(operator)
    assert batch["status"] == "loading"
    assert batch["counts"]["records"] == 4  # two chunks of two
    assert batch["counts"]["loaded_postpaid"] == 3
    assert batch["counts"]["rejected_configuration"] == 1


def test_rebuilt_usage_views_equal_the_incremental_ones(
    operator: Operator, lines: tuple[Line, Line]
) -> None:
    postpaid, prepaid_line = lines
    drop(
        operator,
        "one.json",
        usage_file(
            "ONE",
            [
                record("X-1", msisdn=postpaid.msisdn),
                record("X-2", msisdn=prepaid_line.msisdn),
                record("X-3", msisdn="447799000003"),
            ],
        ),
    )
    drop(operator, "two.json", "not json")
    load(operator)
    batch_id = next(
        b["id"]
        for b in operator.platform.usage_views.batches.batches(None, None, 10, 0)
        if b["status"] == "completed"
    )
    operator.care.create_subscription(
        account_id=postpaid.account_id, msisdn="447799000003", actor="agent-1"
    )
    operator.settle()
    operator.platform.usage.reprocess(UUID(batch_id), "agent-1")
    views = operator.platform.usage_views
    views.catch_up()
    before = snapshot(operator)

    views.rebuild()

    assert snapshot(operator) == before


def snapshot(operator: Operator) -> dict[str, list[dict[str, Any]]]:
    tables = (
        "view_usage_batches",
        "view_usage_errors",
        "view_rated_usage",
        "view_prepaid_usage",
    )
    found = {}
    with operator.platform.usage_views.db.read() as tx:
        for table in tables:
            rows = tx.fetchall(f"SELECT * FROM {table}")  # noqa: S608
            found[table] = sorted(
                rows, key=lambda r: json.dumps(r, sort_keys=True, default=str)
            )
    return found
