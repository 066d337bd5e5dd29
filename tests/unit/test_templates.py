"""Communication templates: placeholders filled in, translations chosen."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from domain.templates import TemplateError, choose_text, render

FIELDS: dict[str, dict[str, object]] = {
    "customer": {"name": "Ada Lovelace", "email": None, "language": "en"},
    "account": {"number": "A-1001", "balance": Decimal("12.50")},
    "subscription": {
        "msisdn": "447700900123",
        "prepaid_balance": Decimal("10.00"),
        "bars": ["OUTGOING", "DATA"],
        "services": [],
    },
    "event": {"raised_at": datetime(2024, 5, 1, 9, 30, tzinfo=UTC)},
}


def test_placeholders_are_replaced_with_the_values_of_their_objects() -> None:
    text = "Welcome, {customer.name}! Your number is {subscription.msisdn}."

    assert render(text, FIELDS) == (
        "Welcome, Ada Lovelace! Your number is 447700900123."
    )


def test_a_decimal_is_rendered_as_written_without_rounding_or_exponent() -> None:
    text = "Balance on {subscription.msisdn}: {subscription.prepaid_balance}."

    assert render(text, FIELDS) == "Balance on 447700900123: 10.00."


def test_a_list_is_joined_with_commas_and_an_empty_list_is_empty() -> None:
    assert render("Bars: {subscription.bars}.", FIELDS) == "Bars: OUTGOING, DATA."
    assert render("Services: {subscription.services}.", FIELDS) == "Services: ."


def test_none_is_rendered_as_empty_text() -> None:
    assert render("[{customer.email}]", FIELDS) == "[]"


def test_a_time_is_rendered_in_iso_8601() -> None:
    assert render("{event.raised_at}", FIELDS) == "2024-05-01T09:30:00+00:00"


def test_a_placeholder_may_appear_more_than_once() -> None:
    assert render("{account.number}/{account.number}", FIELDS) == "A-1001/A-1001"


def test_text_without_placeholders_is_returned_unchanged() -> None:
    assert render("Your data add-on is active.", {}) == "Your data add-on is active."


def test_an_unknown_field_raises_a_template_error_naming_it() -> None:
    with pytest.raises(TemplateError, match=r"\{customer\.nickname\}") as raised:
        render("Hi {customer.nickname}", FIELDS)

    assert raised.value.placeholders == ("customer.nickname",)
    assert isinstance(raised.value, ValueError)


def test_an_object_the_fields_do_not_have_raises_a_template_error() -> None:
    with pytest.raises(TemplateError, match=r"\{device\.imei\}"):
        render("Device {device.imei}", FIELDS)


def test_every_unknown_placeholder_is_named_once() -> None:
    with pytest.raises(TemplateError) as raised:
        render("{a.b} {customer.name} {nodot} {a.b} {}", FIELDS)

    assert raised.value.placeholders == ("a.b", "nodot", "")
    assert str(raised.value) == "unknown placeholders {a.b}, {nodot}, {}"


def test_a_value_that_looks_like_a_placeholder_is_not_expanded_again() -> None:
    fields = {"customer": {"name": "{account.number}"}, "account": {"number": "X"}}

    assert render("Dear {customer.name}", fields) == "Dear {account.number}"


TRANSLATIONS = {"pt": "Olá", "pt-BR": "Oi", "de": "Hallo"}


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("pt-BR", "Oi"),
        ("pt-br", "Oi"),
        ("pt_BR", "Oi"),
        ("pt-PT", "Olá"),
        ("pt", "Olá"),
        ("de-AT", "Hallo"),
        ("fr", "Hello"),
        ("", "Hello"),
        (None, "Hello"),
    ],
)
def test_the_translation_of_the_customers_language_is_chosen_else_the_body(
    language: str | None, expected: str
) -> None:
    assert choose_text("Hello", TRANSLATIONS, language) == expected


def test_a_blank_translation_falls_back_to_the_body() -> None:
    assert choose_text("Hello", {"de": "  "}, "de") == "Hello"


def test_a_regional_translation_is_not_used_for_another_region() -> None:
    assert choose_text("Hello", {"pt-BR": "Oi"}, "pt-PT") == "Hello"
