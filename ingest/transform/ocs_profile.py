"""The OCS transformation's configuration: rating groups, home network, variants.

``ingest/profiles/ocs-default.yaml`` documents every key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.transform.generic import MCC, MNC, USAGE_CLASS
from ingest.transform.profiles import Checker, at, join, read_document

DEFAULT_PROFILE = (
    Path(__file__).resolve().parent.parent / "profiles" / ("ocs-default.yaml")
)

QUANTITIES = ("time", "volume", "units")
DIRECTIONS = ("MO", "MT")


@dataclass(frozen=True)
class RatingGroupRule:
    """What the usage of one rating group is, at home and when roaming."""

    rating_group: int
    usage_class: str
    roaming_usage_class: str
    quantity: str | None
    """``time``, ``volume`` or ``units``: the one a container must carry."""
    direction: str | None


@dataclass(frozen=True)
class OcsProfile:
    """A checked OCS profile; build it with :func:`load_profile`."""

    name: str
    home_plmns: frozenset[tuple[str, str]]
    rating_groups: Mapping[int, RatingGroupRule]
    default_direction: str
    role_of_node: Mapping[str, str]
    sm_message_type: Mapping[str, str]
    nai_patterns: tuple[re.Pattern[str], ...]
    three_digit_mnc_mccs: frozenset[str]
    missing_plmn_is_home: bool


def load_profile(path: str | os.PathLike[str] = DEFAULT_PROFILE) -> OcsProfile:
    """Read and check an OCS profile; raise ``ProfileError`` naming each bad key."""
    document, origin = read_document(path)
    return parse_profile(document, origin)


def parse_profile(document: Mapping[str, Any], origin: str = "profile") -> OcsProfile:
    """Check an OCS profile given as a mapping (the YAML document, already read)."""
    check = Checker()
    check.keys(
        document,
        "",
        required=("name", "home_plmn", "rating_groups"),
        optional=("description", "roaming", "direction", "subscriber", "plmn"),
    )
    name = check.text(document.get("name"), "name")
    home = _home_plmns(document.get("home_plmn"), check)
    national, roaming = _roaming(document.get("roaming", {}), check)
    direction = check.mapping(document.get("direction", {}), "direction") or {}
    check.keys(
        direction, "direction", optional=("default", "role_of_node", "sm_message_type")
    )
    default_direction = check.choice(
        direction.get("default", "MO"), "direction.default", DIRECTIONS
    )
    rating_groups = _rating_groups(
        document.get("rating_groups"), check, national, roaming
    )
    role_of_node = _direction_table(direction, "role_of_node", check)
    sm_message_type = _direction_table(direction, "sm_message_type", check)
    subscriber = check.mapping(document.get("subscriber", {}), "subscriber") or {}
    check.keys(subscriber, "subscriber", optional=("nai_patterns",))
    nai_patterns = _nai_patterns(subscriber.get("nai_patterns", []), check)
    plmn = check.mapping(document.get("plmn", {}), "plmn") or {}
    check.keys(plmn, "plmn", optional=("three_digit_mnc_mccs", "missing"))
    three_digit = _mccs(plmn.get("three_digit_mnc_mccs", []), check)
    missing = check.choice(
        plmn.get("missing", "home"), "plmn.missing", ("home", "error")
    )
    check.raise_if_any(origin)
    assert name is not None and default_direction is not None
    return OcsProfile(
        name=name,
        home_plmns=frozenset(home),
        rating_groups=rating_groups,
        default_direction=default_direction,
        role_of_node=role_of_node,
        sm_message_type=sm_message_type,
        nai_patterns=nai_patterns,
        three_digit_mnc_mccs=three_digit,
        missing_plmn_is_home=missing == "home",
    )


def _home_plmns(value: object, check: Checker) -> list[tuple[str, str]]:
    entries = value if isinstance(value, list) else [value]
    plmns: list[tuple[str, str]] = []
    for index, entry in enumerate(entries):
        path = at("home_plmn", index) if isinstance(value, list) else "home_plmn"
        plmn = check.mapping(entry, path)
        if plmn is None or not check.keys(plmn, path, required=("mcc", "mnc")):
            continue
        mcc = check.text(plmn["mcc"], join(path, "mcc"))
        mnc = check.text(plmn["mnc"], join(path, "mnc"))
        if mcc is not None and not MCC.fullmatch(mcc):
            check.fail(join(path, "mcc"), "must be 3 digits")
        elif mnc is not None and not MNC.fullmatch(mnc):
            check.fail(join(path, "mnc"), "must be 2 or 3 digits, quoted")
        elif mcc is not None and mnc is not None:
            plmns.append((mcc, mnc))
    if not entries:
        check.fail("home_plmn", "needs at least one PLMN")
    return plmns


def _roaming(value: object, check: Checker) -> tuple[str, str]:
    roaming = check.mapping(value, "roaming") or {}
    check.keys(roaming, "roaming", optional=("national_suffix", "roaming_suffix"))
    national = check.text(
        roaming.get("national_suffix", "_NAT"), "roaming.national_suffix"
    )
    suffix = check.text(
        roaming.get("roaming_suffix", "_ROAM"), "roaming.roaming_suffix"
    )
    return national or "_NAT", suffix or "_ROAM"


def _rating_groups(
    value: object, check: Checker, national: str, roaming: str
) -> dict[int, RatingGroupRule]:
    groups = check.mapping(value, "rating_groups")
    rules: dict[int, RatingGroupRule] = {}
    if groups is not None and not groups:
        check.fail("rating_groups", "needs at least one rating group")
    for key, entry in (groups or {}).items():
        path = join("rating_groups", key)
        number = key
        if isinstance(key, str) and key.isdigit() and key.isascii():
            number = int(key)
        number = check.integer(number, path, minimum=0, maximum=2**32 - 1)
        if isinstance(entry, str):
            entry = {"usage_class": entry}
        entry = check.mapping(entry, path)
        if number is None or entry is None:
            continue
        check.keys(
            entry,
            path,
            required=("usage_class",),
            optional=("roaming_usage_class", "quantity", "direction"),
        )
        usage_class = None
        if "usage_class" in entry:
            usage_class = _usage_class(
                entry["usage_class"], join(path, "usage_class"), check
            )
        roaming_class = entry.get("roaming_usage_class")
        if roaming_class is not None:
            roaming_class = _usage_class(
                roaming_class, join(path, "roaming_usage_class"), check
            )
        elif usage_class is not None:
            base = usage_class.removesuffix(national)
            roaming_class = base + roaming
            if not USAGE_CLASS.fullmatch(roaming_class):
                check.fail(path, f"roaming class {roaming_class!r} is too long")
        quantity = entry.get("quantity")
        if quantity is not None:
            quantity = check.choice(quantity, join(path, "quantity"), QUANTITIES)
        direction = entry.get("direction")
        if direction is not None:
            direction = check.choice(direction, join(path, "direction"), DIRECTIONS)
        if usage_class is None or roaming_class is None:
            continue
        if number in rules:
            check.fail(path, "is given twice")
        rules[number] = RatingGroupRule(
            number, usage_class, roaming_class, quantity, direction
        )
    return rules


def _usage_class(value: object, path: str, check: Checker) -> str | None:
    text = check.text(value, path)
    if text is not None and not USAGE_CLASS.fullmatch(text):
        check.fail(path, "must be a usage class code: A-Z 0-9 _, up to 32")
        return None
    return text


def _direction_table(
    direction: Mapping[str, Any], key: str, check: Checker
) -> dict[str, str]:
    path = join("direction", key)
    table = check.mapping(direction.get(key, {}), path) or {}
    result: dict[str, str] = {}
    for value, meaning in table.items():
        where = join(path, value)
        if check.text(value, where) is not None and check.choice(
            meaning, where, DIRECTIONS
        ):
            result[value.upper()] = meaning
    return result


def _nai_patterns(value: object, check: Checker) -> tuple[re.Pattern[str], ...]:
    items = check.sequence(value, "subscriber.nai_patterns") or []
    patterns: list[re.Pattern[str]] = []
    for index, item in enumerate(items):
        path = at("subscriber.nai_patterns", index)
        text = check.text(item, path)
        if text is None:
            continue
        try:
            pattern = re.compile(text)
        except re.error as error:
            check.fail(path, f"is not a regular expression: {error}")
            continue
        if not {"imsi", "msisdn"} & set(pattern.groupindex):
            check.fail(path, "needs a named group (?P<imsi>…) or (?P<msisdn>…)")
            continue
        patterns.append(pattern)
    return tuple(patterns)


def _mccs(value: object, check: Checker) -> frozenset[str]:
    items = check.sequence(value, "plmn.three_digit_mnc_mccs") or []
    mccs: set[str] = set()
    for index, item in enumerate(items):
        path = at("plmn.three_digit_mnc_mccs", index)
        text = check.text(item, path)
        if text is not None and not MCC.fullmatch(text):
            check.fail(path, "must be an MCC of 3 digits, quoted")
        elif text is not None:
            mccs.add(text)
    return frozenset(mccs)
