"""Reading a YAML transformation profile and reporting its mistakes by key.

Both transformations are configured by a profile file. A profile is checked as
a whole when it is loaded: every problem is listed with the path of the key
that causes it (``fields.start_time.convert[0].timezone``), so that an operator
can fix the file without reading code.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml


class ProfileError(ValueError):
    """A profile that cannot be used; ``problems`` name the offending keys."""

    def __init__(self, origin: str, problems: Sequence[str]) -> None:
        self.origin = origin
        self.problems = list(problems)
        listed = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"{origin}: invalid profile:\n{listed}")


def read_document(path: str | os.PathLike[str]) -> tuple[dict[str, Any], str]:
    """Load a profile file as a mapping; return it with its name for messages."""
    origin = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ProfileError(origin, [f"cannot be read: {error.strerror}"]) from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ProfileError(origin, [f"is not valid YAML: {error}"]) from None
    if not isinstance(document, dict):
        raise ProfileError(origin, ["is not a YAML mapping of keys to values"])
    return document, origin


def join(path: str, key: object) -> str:
    """The path of mapping key ``key`` inside ``path`` (``fields.msisdn``)."""
    return f"{path}.{key}" if path else str(key)


def at(path: str, index: int) -> str:
    """The path of list item ``index`` inside ``path`` (``convert[0]``)."""
    return f"{path}[{index}]"


class Checker:
    """Collects the problems of one profile while it is being read."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(f"{path or '(top level)'}: {message}")

    def raise_if_any(self, origin: str) -> None:
        if self.problems:
            raise ProfileError(origin, self.problems)

    def keys(
        self,
        mapping: Mapping[Any, Any],
        path: str,
        *,
        required: Iterable[str] = (),
        optional: Iterable[str] = (),
    ) -> bool:
        """Check that ``mapping`` has the required keys and no unknown ones."""
        required = tuple(required)
        known = set(required) | set(optional)
        fine = True
        for key in mapping:
            if key not in known:
                expected = ", ".join(sorted(known)) or "none"
                self.fail(join(path, key), f"unknown key (expected: {expected})")
                fine = False
        for key in required:
            if key not in mapping:
                self.fail(join(path, key), "is required")
                fine = False
        return fine

    def mapping(self, value: object, path: str) -> dict[Any, Any] | None:
        if isinstance(value, dict):
            return value
        self.fail(path, f"must be a mapping of keys to values, not {_kind(value)}")
        return None

    def sequence(self, value: object, path: str) -> list[Any] | None:
        if isinstance(value, list):
            return value
        self.fail(path, f"must be a list, not {_kind(value)}")
        return None

    def text(self, value: object, path: str, *, empty: bool = False) -> str | None:
        if isinstance(value, str) and (empty or value):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            self.fail(
                path, f"must be text; write it quoted ('{value}') so YAML keeps it"
            )
        else:
            self.fail(path, f"must be {'' if empty else 'non-empty '}text")
        return None

    def boolean(self, value: object, path: str) -> bool | None:
        if isinstance(value, bool):
            return value
        self.fail(path, f"must be true or false, not {_kind(value)}")
        return None

    def integer(
        self,
        value: object,
        path: str,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, f"must be a whole number, not {_kind(value)}")
            return None
        if (minimum is not None and value < minimum) or (
            maximum is not None and value > maximum
        ):
            low = "" if minimum is None else f"from {minimum} "
            high = "" if maximum is None else f"to {maximum}"
            self.fail(path, f"must be a whole number {low}{high}".rstrip())
            return None
        return value

    def choice(self, value: object, path: str, options: Sequence[str]) -> str | None:
        if isinstance(value, str) and value in options:
            return value
        self.fail(path, f"must be one of {', '.join(options)}, not {value!r}")
        return None


def _kind(value: object) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)
