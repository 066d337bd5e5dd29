"""The workflow read models, by the names the rest of monetise imports them.

- ``ActionedItemsView`` (``projections.queue``): the actioned-item queue.
- ``WorkflowEventsView`` (``projections.history``): workflow events and the
  history of each account and subscription.
- ``SubscriptionsView``, ``AccountsView``, ``CustomersView``
  (``projections.customers``): what agents list and find.

No owners table: ``WorkflowEventRaised`` records its ``level`` (account or
subscription), which is the owner's kind; each view keeps what it needs about
workflow events in tables of its own, so each is rebuildable on its own.
"""

from projections.customers import AccountsView, CustomersView, SubscriptionsView
from projections.history import WorkflowEventsView
from projections.queue import ActionedItemsView

__all__ = [
    "AccountsView",
    "ActionedItemsView",
    "CustomersView",
    "SubscriptionsView",
    "WorkflowEventsView",
]
