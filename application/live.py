"""The worker's own working copies of the aggregates it acts on.

Loading an aggregate from the library's cache costs a query (to fast-forward
past events other processes wrote) and a copy. The worker touches the same
subscriptions several times a second, so it keeps them between rounds and
relies on optimistic concurrency instead: a save that finds a newer version
in the store fails, the copies are forgotten, and the next round reloads
them. Every decision the worker takes is recorded on the aggregate it read,
so acting on a stale copy can never be saved.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError

if TYPE_CHECKING:
    from application.customer_care import CustomerCare, Owner


class LiveAggregates:
    """Working copies for one thread (the worker's); least recently used go."""

    def __init__(self, care: CustomerCare, maxsize: int = 50_000):
        self.care = care
        self.maxsize = maxsize
        self._copies: OrderedDict[UUID, Owner] = OrderedDict()

    def get(self, owner_id: UUID) -> Owner:
        owner = self._copies.get(owner_id)
        if owner is None:
            owner = self.care.owner(owner_id)
            self._copies[owner_id] = owner
            if len(self._copies) > self.maxsize:
                self._copies.popitem(last=False)
        else:
            self._copies.move_to_end(owner_id)
        return owner

    def at_least(self, owner_id: UUID, version: int) -> Owner:
        """A copy that holds at least ``version`` (read afresh when behind)."""
        owner = self.get(owner_id)
        if owner.version < version:
            del self._copies[owner_id]
            owner = self.get(owner_id)
        return owner

    def save(self, aggregates: Iterable[Any], **kwargs: Any) -> bool:
        """Save changed aggregates at once; on a conflict forget them all."""
        changed = {id(a): a for a in aggregates if a.pending_events}
        if not changed:
            return True
        try:
            self.care.save(*changed.values(), **kwargs)
        except IntegrityError:
            self.forget(a.id for a in changed.values())
            return False
        return True

    def forget(self, ids: Iterable[UUID]) -> None:
        for aggregate_id in ids:
            self._copies.pop(aggregate_id, None)

    def clear(self) -> None:
        self._copies.clear()
