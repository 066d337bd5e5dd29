"""ISO 8601 durations as written in action schedules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.durations import Duration, parse_duration


@pytest.mark.parametrize(
    ("text", "duration"),
    [
        ("P3D", Duration(days=3)),
        ("PT12H", Duration(seconds=12 * 3600)),
        ("P1M", Duration(months=1)),
        ("P1W", Duration(days=7)),
        ("P2W3D", Duration(days=17)),
        ("P1Y", Duration(years=1)),
        ("PT30M", Duration(seconds=30 * 60)),
        ("PT45S", Duration(seconds=45)),
        ("P0D", Duration()),
        (
            "P1Y2M3DT4H5M6S",
            Duration(years=1, months=2, days=3, seconds=4 * 3600 + 5 * 60 + 6),
        ),
    ],
)
def test_an_iso_8601_duration_is_read_into_its_parts(
    text: str, duration: Duration
) -> None:
    assert parse_duration(text) == duration


@pytest.mark.parametrize(
    "text",
    ["", "P", "PT", "3D", "P1.5D", "p3d", "P3", "P1YT", "PT1D", "P3D ", "P-1D", "P3H"],
)
def test_a_text_that_is_not_an_iso_8601_duration_is_refused_with_an_example(
    text: str,
) -> None:
    with pytest.raises(ValueError) as refused:
        parse_duration(text)

    assert str(refused.value) == (
        f"{text!r} is not an ISO 8601 duration such as P3D, PT12H or P1M"
    )


def test_a_duration_followed_by_a_line_break_is_refused() -> None:
    with pytest.raises(ValueError, match="is not an ISO 8601 duration"):
        parse_duration("P3D\n")


@pytest.mark.parametrize(
    ("start", "text", "expected"),
    [
        (
            datetime(2025, 1, 31, 9, tzinfo=UTC),
            "P1M",
            datetime(2025, 2, 28, 9, tzinfo=UTC),
        ),
        (
            datetime(2024, 1, 31, 9, tzinfo=UTC),
            "P1M",
            datetime(2024, 2, 29, 9, tzinfo=UTC),
        ),
        (datetime(2025, 3, 31, tzinfo=UTC), "P1M", datetime(2025, 4, 30, tzinfo=UTC)),
        (datetime(2024, 11, 30, tzinfo=UTC), "P3M", datetime(2025, 2, 28, tzinfo=UTC)),
        (datetime(2024, 2, 29, tzinfo=UTC), "P1Y", datetime(2025, 2, 28, tzinfo=UTC)),
        (datetime(2025, 12, 15, tzinfo=UTC), "P1M", datetime(2026, 1, 15, tzinfo=UTC)),
    ],
)
def test_months_and_years_follow_the_calendar_and_clamp_to_the_month_end(
    start: datetime, text: str, expected: datetime
) -> None:
    assert parse_duration(text).after(start) == expected


def test_days_and_time_are_added_after_the_calendar_months() -> None:
    start = datetime(2025, 1, 31, 22, 30, tzinfo=UTC)

    moment = parse_duration("P1M1DT2H").after(start)

    assert moment == datetime(2025, 3, 2, 0, 30, tzinfo=UTC)


def test_a_duration_keeps_the_time_zone_of_the_moment_it_follows() -> None:
    start = datetime(2025, 6, 1, 12, tzinfo=UTC)

    assert parse_duration("P3D").after(start).tzinfo is UTC
