"""Communication templates: ``{object.field}`` placeholders and translations.

The catalogue checks at import time that a template names only known
placeholders (``domain.catalogue.rules.PLACEHOLDERS``); this module fills them
in when a communication is sent, from the fields the dispatcher gathered.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal

# The same pattern the catalogue rules check, so that what passed the import
# check is exactly what is substituted here.
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


class TemplateError(ValueError):
    """A template names a placeholder for which there is no value."""

    def __init__(self, placeholders: tuple[str, ...]) -> None:
        self.placeholders = placeholders
        named = ", ".join(f"{{{placeholder}}}" for placeholder in placeholders)
        noun = "placeholder" if len(placeholders) == 1 else "placeholders"
        super().__init__(f"unknown {noun} {named}")


def render(text: str, fields: Mapping[str, Mapping[str, object]]) -> str:
    """``text`` with every ``{object.field}`` replaced by its value in ``fields``.

    ``fields`` maps an object name to its fields, e.g.
    ``{"customer": {"name": "Ada"}, "subscription": {"msisdn": "447700900123"}}``.
    Values are rendered as plain text: ``Decimal`` as ``str(value)``, lists as
    ``", "``-joined items, ``None`` as the empty string, times in ISO 8601.
    A placeholder with no entry in ``fields`` raises ``TemplateError`` naming
    it, rather than sending a customer a message with a hole in it.
    """
    unknown = tuple(
        dict.fromkeys(
            placeholder
            for placeholder in _PLACEHOLDER.findall(text)
            if _lookup(placeholder, fields) is _MISSING
        )
    )
    if unknown:
        raise TemplateError(unknown)
    # One pass over the template: a value that itself contains "{…}" (a
    # customer's name, say) is copied as it is, never expanded again.
    return _PLACEHOLDER.sub(
        lambda match: _text_of(_lookup(match.group(1), fields)), text
    )


def choose_text(
    body: str, translations: Mapping[str, str], language: str | None
) -> str:
    """The text in the customer's preferred language, else ``body``.

    An exact language tag wins (``pt-BR``), then its primary subtag (``pt``).
    Tags compare case-insensitively and ``_`` counts as ``-``, as BCP 47 and
    the usual locale spellings (``pt_BR``) allow. A blank translation is
    treated as missing.
    """
    if not language:
        return body
    by_tag = {
        _normalised(tag): text for tag, text in translations.items() if text.strip()
    }
    wanted = _normalised(language)
    for tag in (wanted, wanted.split("-", 1)[0]):
        if tag in by_tag:
            return by_tag[tag]
    return body


class _Missing:
    """Marks a placeholder with no value (``None`` is a value: empty text)."""


_MISSING = _Missing()


def _lookup(
    placeholder: str, fields: Mapping[str, Mapping[str, object]]
) -> object | _Missing:
    obj, dot, attribute = placeholder.partition(".")
    values = fields.get(obj)
    if not dot or values is None or attribute not in values:
        return _MISSING
    return values[attribute]


def _text_of(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return ", ".join(_text_of(item) for item in value)
    if isinstance(value, set | frozenset):
        # Sets have no order of their own; sort so that a message reads the same
        # on every retry.
        return ", ".join(sorted(_text_of(item) for item in value))
    return str(value)


def _normalised(tag: str) -> str:
    return tag.strip().replace("_", "-").lower()


__all__ = ["TemplateError", "choose_text", "render"]
