"""How the usage views are stored, on both backends: what keeps a rerate's
corrections cheap to apply and bills quick to read."""

from __future__ import annotations

from application.platform import Platform
from projections.bills import CORRECTED


def test_a_rerate_finds_room_on_the_pages_of_the_usage_rows_it_rewrites(
    platform: Platform,
) -> None:
    with platform.usage_views.db.read() as tx:
        if tx.backend == "sqlite":
            # A new views file has pages larger than SQLite's default.
            assert tx.fetchone("PRAGMA page_size") == {"page_size": 16384}
            return
        rows = tx.fetchall(
            "SELECT relname, reloptions FROM pg_class "
            "WHERE relname IN ('view_rated_usage', 'view_prepaid_usage') "
            "ORDER BY relname"
        )

    # PostgreSQL: half of each page free, for HOT updates of the rows.
    assert [(r["relname"], r["reloptions"]) for r in rows] == [
        ("view_prepaid_usage", ["fillfactor=50"]),
        ("view_rated_usage", ["fillfactor=50"]),
    ]


def test_bills_find_corrections_through_the_usage_rows_of_their_subscriptions(
    platform: Platform,
) -> None:
    query = "SELECT c.record_id " + CORRECTED.format(
        table="view_rated_usage", payment="postpaid", ids="?"
    )
    with platform.usage_views.db.read() as tx:
        if tx.backend == "sqlite":
            plan = [
                row[3] for row in tx.fetch_tuples("EXPLAIN QUERY PLAN " + query, ["S"])
            ]
            assert plan == [
                "SEARCH u USING INDEX view_rated_usage_subscription_id_start_time "
                "(subscription_id=?)",
                "SEARCH c USING INDEX view_charge_corrections_record_id (record_id=?)",
            ]
            return
        # PostgreSQL plans by the statistics of the rows it holds: the
        # indexes that plan needs are there, with the columns it searches by.
        indexes = {
            row["indexname"]: row["indexdef"]
            for row in tx.fetchall(
                "SELECT indexname, indexdef FROM pg_indexes WHERE indexname IN "
                "('view_rated_usage_subscription_id_start_time', "
                "'view_charge_corrections_record_id')"
            )
        }

    assert sorted(indexes) == [
        "view_charge_corrections_record_id",
        "view_rated_usage_subscription_id_start_time",
    ]
    assert (
        "(subscription_id, start_time)"
        in indexes["view_rated_usage_subscription_id_start_time"]
    )
    assert "(record_id)" in indexes["view_charge_corrections_record_id"]
