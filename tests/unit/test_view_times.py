"""Times in the read models: fixed-width ISO 8601 UTC text, so that text order
is time order, however often a time is written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from projections.store import utc_text


def test_a_time_is_written_in_utc_with_microseconds_always_present() -> None:
    on_the_second = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    in_paris = datetime(2026, 11, 23, 10, 0, 0, 5, tzinfo=timezone(timedelta(hours=1)))

    assert utc_text(on_the_second) == "2026-11-23T09:00:00.000000+00:00"
    assert utc_text(in_paris) == "2026-11-23T09:00:00.000005+00:00"
    assert utc_text(None) is None


def test_the_same_instant_reads_the_same_whichever_zone_wrote_it_first() -> None:
    in_new_york = datetime(2026, 11, 23, 4, 0, tzinfo=timezone(timedelta(hours=-5)))
    in_utc = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    naive = datetime(2026, 11, 23, 9, 0)  # noqa: DTZ001  (taken as UTC)

    texts = [utc_text(t) for t in (in_new_york, in_utc, naive, in_new_york)]

    assert texts == ["2026-11-23T09:00:00.000000+00:00"] * 4


def test_many_different_times_are_all_written_right() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    times = [start + timedelta(seconds=n, microseconds=n) for n in range(25_000)]

    texts = [utc_text(t) for t in times]

    assert texts == [t.isoformat(timespec="microseconds") for t in times]
    assert texts == sorted(texts)
