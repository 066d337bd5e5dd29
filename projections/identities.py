"""Who held each MSISDN and IMSI, and until when: how usage finds its subscription.

One row per (number, holder) in the order the holders got it; a holder's
``released_at`` is its disconnection. The rated-usage job reads the rows of the
numbers in a chunk with one query and picks the holder at each usage time
(:func:`domain.usage_loading.holder_at`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from domain.subscription import Subscription
from domain.usage_loading import Holder
from projections.runner import Batch, Projection, topics_of
from projections.store import Table, Transaction, utc_text


class SubscriberIdentitiesView(Projection):
    name = "subscriber_identities_v2"  # v2: the rate plan, for offline rating
    table = Table(
        "view_subscriber_identities",
        (
            ("identity", "TEXT NOT NULL"),  # msisdn:447700900123 or imsi:2341…
            ("holder", "INTEGER NOT NULL"),  # 1 for the first holder, then 2…
            ("subscription_id", "TEXT NOT NULL"),
            ("account_id", "TEXT NOT NULL"),
            ("payment_type", "TEXT NOT NULL"),
            ("currency", "TEXT NOT NULL"),
            ("rate_plan", "TEXT NOT NULL"),
            ("released_at", "TEXT"),
            ("position", "BIGINT NOT NULL"),
        ),
        key=("identity", "holder"),
        indexes=(("subscription_id",),),
    )
    tables = (table,)
    topics = topics_of(Subscription.Created, Subscription.Disconnected)

    def process(self, tx: Transaction, notification_id: int, domain_event: Any) -> None:
        self.process_batch(tx, [(notification_id, domain_event)])

    def process_batch(self, tx: Transaction, events: Batch) -> None:
        for position, event in events:
            if isinstance(event, Subscription.Created):
                for identity in _identities(event.msisdn, event.imsi):
                    found = tx.fetchone(
                        "SELECT MAX(holder) AS last FROM view_subscriber_identities "
                        "WHERE identity = ?",
                        (identity,),
                    )
                    holder = int(found["last"] or 0) + 1 if found else 1
                    self.table.write(
                        tx,
                        [
                            (
                                identity,
                                holder,
                                str(event.originator_id),
                                str(event.account_id),
                                event.payment_type,
                                event.currency,
                                event.rate_plan,
                                None,
                                position,
                            )
                        ],
                    )
            else:
                tx.execute(
                    "UPDATE view_subscriber_identities SET released_at = ?, "
                    "position = ? WHERE subscription_id = ? AND released_at IS NULL",
                    (utc_text(event.timestamp), position, str(event.originator_id)),
                )

    def holders(self, identities: Iterable[str]) -> dict[str, list[Holder]]:
        """The holders of each number, in the order they got it."""
        with self.db.read() as tx:
            rows = tx.select_in("view_subscriber_identities", "identity", identities)
        found: dict[str, list[Holder]] = {}
        for row in sorted(rows, key=lambda r: (r["identity"], r["holder"])):
            released = row["released_at"]
            found.setdefault(row["identity"], []).append(
                Holder(
                    subscription_id=row["subscription_id"],
                    account_id=row["account_id"],
                    payment_type=row["payment_type"],
                    currency=row["currency"],
                    rate_plan=row["rate_plan"],
                    released_at=datetime.fromisoformat(released) if released else None,
                )
            )
        return found


def _identities(msisdn: str, imsi: str) -> list[str]:
    return [f"msisdn:{msisdn}"] + ([f"imsi:{imsi}"] if imsi else [])
