"""The Customer aggregate: a person or organisation with an agreement."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate, event


class Customer(Aggregate):
    TOPIC = "monetise.customer:Customer"
    class_version = 1

    class Created(Aggregate.Created):
        """The customer was registered."""

        TOPIC = "monetise.customer:Customer.Created"
        class_version = 1
        name: str
        email: str
        phone: str
        language: str
        address: str
        registered_by: str

    class ContactDetailsChanged(Aggregate.Event):
        TOPIC = "monetise.customer:Customer.ContactDetailsChanged"
        class_version = 1
        changes: dict[str, Any]
        changed_by: str

    @event(Created)
    def __init__(
        self,
        name: str,
        email: str,
        phone: str,
        language: str,
        address: str,
        registered_by: str,
    ) -> None:
        self.name = name
        self.email = email
        self.phone = phone
        self.language = language
        self.address = address

    @event(ContactDetailsChanged)
    def change_contact_details(self, changes: dict[str, Any], changed_by: str) -> None:
        for name, value in changes.items():
            setattr(self, name, value)

    def fields(self) -> dict[str, Any]:
        """The customer's fields as communication templates see them."""
        return {
            "id": str(self.id),
            "name": self.name,
            "email": self.email,
            "phone": self.phone,
            "language": self.language,
            "address": self.address,
        }
