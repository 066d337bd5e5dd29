"""Reading untrusted catalogue documents field by field, collecting every problem."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a catalogue document, at a path inside it."""

    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


class CatalogueRejected(Exception):
    """A catalogue change was refused; nothing of it was applied."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = list(problems)
        super().__init__("; ".join(f"{p.path}: {p.message}" for p in self.problems))


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class Reader:
    """Reads one mapping of a document; every problem is kept, none raised."""

    def __init__(self, raw: object, path: str, problems: list[Problem]):
        self.path = path
        self.problems = problems
        self.ok = self.is_mapping = isinstance(raw, Mapping)
        self.raw: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        if not self.is_mapping:
            self.problems.append(
                Problem(path, f"must be a mapping, not {type_name(raw)}")
            )

    def fail(self, path: str, message: str) -> None:
        self.ok = False
        if self.is_mapping:  # a non-mapping is reported once, not field by field
            self.problems.append(Problem(path, message))

    def reject_unknown(self, known: Iterable[str]) -> None:
        allowed = set(known)
        for key in self.raw:
            if key not in allowed:
                self.fail(
                    join(self.path, str(key)),
                    f"unknown field; expected one of: {', '.join(sorted(allowed))}",
                )

    def text(
        self,
        key: str,
        *,
        default: str | None = None,
        pattern: re.Pattern[str] | None = None,
        rule: str = "",
        choices: Iterable[str] | None = None,
    ) -> str:
        path = join(self.path, key)
        if key not in self.raw or self.raw[key] is None:
            if default is None:
                self.fail(path, "is required")
                return ""
            return default
        value = self.raw[key]
        if not isinstance(value, str):
            self.fail(path, f"must be a string, not {type_name(value)}")
            return ""
        if pattern is not None and not pattern.fullmatch(value):
            self.fail(path, f"{value!r} is not valid: {rule}")
        if choices is not None:
            options = list(choices)
            if value not in options:
                self.fail(path, f"{value!r} is not one of: {', '.join(options)}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            self.fail(join(self.path, key), f"must be true or false, not {value!r}")
            return default
        return value

    def integer(self, key: str, default: int | None, low: int, high: int) -> int:
        path = join(self.path, key)
        value = self.raw.get(key, default)
        if value is None:
            self.fail(path, "is required")
            return low
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, f"must be a whole number, not {value!r}")
            return low
        if not low <= value <= high:
            self.fail(path, f"must be between {low} and {high}, not {value}")
        return value

    def items(self, key: str, *, required: bool = False) -> list[tuple[str, Any]]:
        """The elements of a list field, each with its path."""
        path = join(self.path, key)
        value = self.raw.get(key)
        if value is None:
            if required:
                self.fail(path, "is required")
            return []
        if not isinstance(value, list):
            self.fail(path, f"must be a list, not {type_name(value)}")
            return []
        return [(join(path, index), element) for index, element in enumerate(value)]

    def mapping(self, key: str) -> tuple[str, Mapping[str, Any]]:
        path = join(self.path, key)
        value = self.raw.get(key)
        if value is None:
            return path, {}
        if not isinstance(value, Mapping):
            self.fail(path, f"must be a mapping, not {type_name(value)}")
            return path, {}
        return path, value


def type_name(value: object) -> str:
    names = {
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "true/false",
        list: "a list",
        dict: "a mapping",
        type(None): "nothing",
    }
    return names.get(type(value), type(value).__name__)
