"""Tariffs from the ``monetise`` command line, each step its own process, on
SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import yaml

from api.cli_tariffs import demo_tariffs
from application.settings import Settings
from domain.rating import Usage, quote, read_tariff_book
from tests.e2e.test_command_line import monetise
from tests.e2e.test_workflow_cli import ok

DEMO = Path(__file__).parents[2] / "application" / "demo" / "tariffs.yaml"
EVENING_CALL = (
    "--usage-class",
    "VOICE_NAT",
    "--destination",
    "441632960000",
    "--start",
    "2026-03-02T18:58:30Z",
    "--duration",
    "150",
)


def test_tariffs_are_imported_exported_and_listed(
    settings: Settings, tmp_path: Path
) -> None:
    first = ok(monetise(settings, "tariffs", "import", str(DEMO), "--actor", "ops"))
    again = ok(monetise(settings, "tariffs", "import", str(DEMO)))
    exported = ok(monetise(settings, "tariffs", "export"))
    (tmp_path / "exported.yaml").write_text(exported)
    reimported = ok(
        monetise(settings, "tariffs", "import", str(tmp_path / "exported.yaml"))
    )
    as_json = json.loads(
        ok(monetise(settings, "tariffs", "export", "--format", "json"))
    )
    listed = ok(monetise(settings, "tariffs", "list"))

    assert first.endswith("(5 event(s) recorded)")
    assert again.endswith("(0 event(s) recorded)")
    assert reimported.endswith("(0 event(s) recorded)")
    assert yaml.safe_load(exported) == as_json
    assert as_json["rate_plans"] == demo_tariffs()["rate_plans"]
    assert listed.splitlines()[1].split(None, 3) == [
        "STD",
        "(always)",
        "GBP",
        "BIZ10, PAYG, SIMO10, STD",
    ]


def test_an_invalid_tariff_file_is_refused_with_every_problem_and_exit_code_2(
    settings: Settings, tmp_path: Path
) -> None:
    document = demo_tariffs()
    document["tariffs"][0]["time_bands"][2]["start"] = "25:00"
    document["tariffs"][0]["rates"][1]["slabs"][0]["increment"] = 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document))

    result = monetise(settings, "tariffs", "import", str(bad))

    assert result.returncode == 2
    assert "nothing was applied" in result.stderr
    assert "tariffs[0].time_bands[2].start" in result.stderr
    assert "tariffs[0].rates[1].slabs[0].increment" in result.stderr
    assert (
        json.loads(ok(monetise(settings, "tariffs", "export", "--format", "json")))[
            "tariffs"
        ]
        == []
    )


def test_price_shows_the_charge_and_its_breakdown(settings: Settings) -> None:
    ok(monetise(settings, "tariffs", "import", str(DEMO)))

    table = ok(monetise(settings, "price", "--tariff", "STD", *EVENING_CALL))
    shown = json.loads(
        ok(monetise(settings, "price", "--tariff", "STD", *EVENING_CALL, "--json"))
    )

    lines = table.splitlines()
    assert lines[0].startswith("STD VOICE_NAT: 150 s")
    assert [line.split()[4] for line in lines[2:5]] == ["PEAK", "PEAK", "OFF"]
    assert lines[-1] == "charge 0.2800 GBP, discount 0.0000, net 0.2800 GBP"
    book, _ = read_tariff_book(demo_tariffs())
    start = datetime.fromisoformat("2026-03-02T18:58:30+00:00")
    usage = Usage(
        "VOICE_NAT",
        start,
        duration_seconds=150,
        called_number="441632960000",
        home_mcc=settings.home_mcc,
        home_mnc=settings.home_mnc,
    )
    assert shown == quote(book.in_force("STD", start), usage).as_dict()
    assert list(shown)[:2] == ["charge", "currency"]
    assert (shown["charge"], shown["currency"]) == ("0.2800", "GBP")


def test_price_with_a_tariff_file_prices_what_if_and_records_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    ok(monetise(settings, "tariffs", "import", str(DEMO)))
    cheaper = demo_tariffs()
    cheaper["tariffs"][0]["rates"][0]["connect_fee"] = "0"
    what_if = tmp_path / "cheaper.yaml"
    what_if.write_text(yaml.safe_dump(cheaper))
    before = ok(monetise(settings, "tariffs", "export", "--format", "json"))

    shown = json.loads(
        ok(
            monetise(
                settings,
                "price",
                "--tariff",
                "STD",
                *EVENING_CALL,
                "--tariff-file",
                str(what_if),
                "--json",
            )
        )
    )

    assert (shown["charge"], shown["connect_fee"]) == ("0.1800", "0")
    assert ok(monetise(settings, "tariffs", "export", "--format", "json")) == before


def test_a_usage_that_cannot_be_rated_exits_2_with_the_reason(
    settings: Settings,
) -> None:
    ok(monetise(settings, "tariffs", "import", str(DEMO)))
    roaming_at_home = (
        "--usage-class",
        "VOICE_ROAM",
        "--start",
        "2026-03-02T18:58:30Z",
        "--duration",
        "60",
    )

    no_rate = monetise(settings, "price", "--tariff", "STD", *roaming_at_home)
    no_tariff = monetise(settings, "price", "--tariff", "GOLD", *EVENING_CALL)
    no_destination = monetise(
        settings,
        "price",
        "--tariff-file",
        str(DEMO),
        "--tariff",
        "STD",
        "--usage-class",
        "VOICE_NAT",
        "--destination",
        "999",
        "--duration",
        "60",
    )

    assert (no_rate.returncode, no_tariff.returncode) == (2, 2)
    assert no_rate.stderr.startswith("no_rate: no rate for usage class VOICE_ROAM")
    assert no_tariff.stderr.startswith("no_tariff: there is no tariff 'GOLD'")
    assert no_destination.returncode == 2
    assert no_destination.stderr.startswith("no_destination:")
