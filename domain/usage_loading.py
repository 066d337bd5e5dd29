"""What the rated-usage job decides for each record: loaded or rejected, and why.

Pure: the job fetches what it needs (who held each MSISDN or IMSI, the usage
classes of the catalogue, which record ids are already loaded) and this module
turns a chunk of records into loaded rows (enriched with the subscription,
MCC/MNC, roaming and the discount) and rejections, in the column orders of
:mod:`domain.usage_batch`.

Who held a number when: the holders of an MSISDN (or IMSI) are kept in the
order they got it; each covers the time from the release (disconnection) of
the one before it until its own release, the first one all time before. So
usage that arrives after a late subscription set-up still finds its
subscription, and a recycled number charges whoever had it at the usage time.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, NamedTuple

from domain.bill_periods import Period, period_of
from domain.rating import (
    AllowanceState,
    CompiledTariff,
    RatingError,
    Tariff,
    TariffBook,
    Usage,
    quote,
)
from domain.repricing import TariffOf
from domain.usage_records import (
    QuickCheck,
    QuickRecord,
    RecordError,
    UsageRecord,
    UsualUnratedRecord,
    plain_record,
    usage_record,
    utc_text,
    validate_record,
)

# MCCs whose networks use three-digit MNCs (ITU-T E.212 list: North America
# and the Caribbean, India's newer ranges and a few others); elsewhere two.
THREE_DIGIT_MNC_MCCS: Final = frozenset(
    [
        "302",
        "310",
        "311",
        "312",
        "313",
        "314",
        "315",
        "316",
        "330",
        "332",
        "334",
        "338",
        "342",
        "344",
        "346",
        "348",
        "350",
        "352",
        "354",
        "356",
        "358",
        "360",
        "365",
        "366",
        "376",
        "405",
        "708",
        "722",
        "732",
        "750",
    ]
)


@dataclass(frozen=True)
class Holder:
    """One subscription that held a number, with its release time if released."""

    subscription_id: str
    account_id: str
    payment_type: str
    currency: str
    released_at: datetime | None
    rate_plan: str = ""


class AllowancesSoFar(NamedTuple):
    """What a subscription's allowances gave in a bill period: units by
    allowance code, and the latest start (UTC text) of usage that took any."""

    used: Mapping[str, int]
    latest: str | None


NONE_USED: Final = AllowancesSoFar({}, None)


@dataclass(frozen=True)
class HomeNetwork:
    mcc: str
    mnc: str


def holder_at(holders: Sequence[Holder], at: datetime) -> Holder | None:
    """The holder of a number at ``at``: holders in the order they got it."""
    for holder in holders:
        if holder.released_at is None or at < holder.released_at:
            return holder
    return None


def plmn_of_imsi(imsi: str) -> tuple[str, str]:
    """The MCC and MNC at the start of an IMSI (E.212)."""
    mcc = imsi[:3]
    return mcc, imsi[3:6] if mcc in THREE_DIGIT_MNC_MCCS else imsi[3:5]


Priced = tuple[str | None, str | None, str | None, Any]
"""Charge, discount, currency (decimal strings and a code) and a breakdown."""


@dataclass
class ChunkOutcome:
    loaded: list[list[Any]]
    rejected: list[list[Any]]


class RatedUsageRules:
    """The decisions of the rated-usage job for one batch.

    ``holders`` maps ``msisdn:…``/``imsi:…`` to holders; ``usage_classes`` is
    the set of active usage class codes; ``already_loaded`` tells which of
    some record ids other batches loaded. Record ids loaded by this batch are
    remembered across chunks, so a file repeating an id loads it once.
    """

    time_ordered = False  # records are decided in the file's order
    # Records of the usual shape skip the full checks (the quick check never
    # refuses one: it steps aside for the validator), and rated ones are
    # loaded on the quick lane, without the full decision.
    quick_check = True
    quick_lane = True

    def __init__(
        self,
        usage_classes: Collection[str],
        home: HomeNetwork,
        already_loaded: Callable[[Iterable[str]], Collection[str]],
    ):
        self.usage_classes = usage_classes
        self.home = home
        self.already_loaded = already_loaded
        self.seen: set[str] = set()
        self._checkers: dict[str, QuickCheck] = {}
        self._home = (home.mcc, home.mnc)

    def decide(
        self,
        kind: str,
        records: Sequence[tuple[int, object]],
        holders: Mapping[str, Sequence[Holder]],
    ) -> ChunkOutcome:
        """Validate and load ``records`` (index in the file, parsed value)."""
        outcome = ChunkOutcome([], [])
        rejected = outcome.rejected
        # In the file's order: the loaded row of a record the quick lane
        # vouched for (a list), or a valid record for the full decision with
        # its start as UTC text when the quick lane has made that already.
        valid: list[list[Any] | tuple[int, UsageRecord, str | None]] = []
        ids: set[str] = set()
        check = self._quick_check(kind)
        quick_lane = self.quick_lane
        for index, raw in records:
            if check is not None:
                fields = check(raw)
                if fields is not None:
                    quick = (
                        self._quick_load(index, fields, holders) if quick_lane else None
                    )
                    # The loaded row itself, or a valid record for the full
                    # decision (which prices it, offline) without the checks.
                    valid.append(quick or (index, usage_record(fields), fields[4]))
                    ids.add(fields[0])
                    continue
            checked = validate_record(plain_record(raw), kind, index)
            if isinstance(checked, RecordError):
                rejected.append(_rejection(index, checked))
            else:
                valid.append((index, checked, None))
                ids.add(checked.record_id)
        if self.time_ordered:
            valid.sort(key=_start)  # stable: the file's order among equal starts
        seen = self.seen
        elsewhere = set(self.already_loaded(ids - seen)) if ids else set()
        loaded = outcome.loaded
        for item in valid:
            row: list[Any] | None
            if isinstance(item, list):
                row, index, rid = item, item[0], item[1]
            else:
                row, (index, record, start) = None, item
                rid = record.record_id
            if rid in seen or rid in elsewhere:
                rejected.append(
                    [
                        index,
                        rid,
                        "duplicate",
                        "duplicate_record",
                        f"record {rid} is already loaded",
                        f"/records/{index}/record_id",
                    ]
                )
                continue
            if row is None:
                accepted, row = self._load(index, record, start, holders)
                if not accepted:
                    rejected.append(row)
                    continue
            seen.add(rid)
            loaded.append(row)
        if self.time_ordered:  # decided in time order; listed in the file's
            outcome.loaded.sort(key=_first)
            outcome.rejected.sort(key=_first)
        return outcome

    def _quick_check(self, kind: str) -> Callable[[object], QuickRecord | None] | None:
        """The quick check of records of ``kind`` (one per kind: it remembers
        the values that passed), or None where every record takes the full
        checks."""
        if not self.quick_check:
            return None
        checker = self._checkers.get(kind)
        if checker is None:
            checker = self._checkers[kind] = QuickCheck(kind)
        return checker.check

    def _quick_load(
        self, index: int, fields: QuickRecord, holders: Mapping[str, Sequence[Holder]]
    ) -> list[Any] | None:
        """The loaded row of a valid record in the usual case — a known usage
        class, a number that one subscription holds, the charge in its
        currency — as :meth:`_load` makes it; None for any other case."""
        (
            rid,
            msisdn,
            imsi,
            usage_class,
            start,
            duration,
            volume,
            units,
            direction,
            called,
            mcc,
            mnc,
            charge,
            currency,
            discount,
        ) = fields
        if msisdn is not None:
            found = holders.get("msisdn:" + msisdn)
        else:
            found = holders.get("imsi:" + imsi) if imsi is not None else None
        if not found:
            return None
        holder = found[0]
        if (
            holder.released_at is not None
            or usage_class not in self.usage_classes
            or (currency is not None and currency != holder.currency)
        ):
            return None
        if (mcc is None or mnc is None) and imsi is not None:
            from_imsi = plmn_of_imsi(imsi)
            mcc = mcc or from_imsi[0]
            mnc = mnc or from_imsi[1]
        roaming = None if mcc is None or mnc is None else (mcc, mnc) != self._home
        return [
            index,
            rid,
            holder.subscription_id,
            holder.account_id,
            holder.payment_type,
            msisdn,
            imsi,
            usage_class,
            start,
            duration,
            volume,
            units,
            direction,
            called,
            mcc,
            mnc,
            roaming,
            charge,
            discount,
            currency,
            None,
        ]

    def _load(
        self,
        index: int,
        record: UsageRecord,
        start: str | None,
        holders: Mapping[str, Sequence[Holder]],
    ) -> tuple[bool, list[Any]]:
        """(True, the loaded row) or (False, the rejection); ``start``: the
        record's start as :func:`utc_text` writes it, if already known."""
        rid = record.record_id
        if start is None:
            start = _utc(record.start_time)
        path = f"/records/{index}"
        if record.usage_class not in self.usage_classes:
            return False, [
                index,
                rid,
                "configuration",
                "unknown_usage_class",
                f"usage class {record.usage_class} is not in the catalogue "
                "(or is inactive)",
                f"{path}/usage_class",
            ]
        holder, field = self._holder(record, holders)
        if holder is None:
            number = record.msisdn if field == "msisdn" else record.imsi
            return False, [
                index,
                rid,
                "configuration",
                f"unknown_{field}",
                f"no subscription had {field.upper()} {number} at {start}",
                f"{path}/{field}",
            ]
        mcc, mnc = record.mcc, record.mnc
        if (mcc is None or mnc is None) and record.imsi is not None:
            from_imsi = plmn_of_imsi(record.imsi)
            mcc = mcc or from_imsi[0]
            mnc = mnc or from_imsi[1]
        priced = self._price(index, record, start, holder, mcc, mnc)
        if isinstance(priced, list):
            return False, priced
        charge, discount, currency, breakdown = priced
        if currency is not None and currency != holder.currency:
            return False, [
                index,
                rid,
                "configuration",
                "currency_mismatch",
                f"the charge is in {currency} but subscription "
                f"{holder.subscription_id} is billed in {holder.currency}",
                f"{path}/charge/currency",
            ]
        roaming = (
            None
            if mcc is None or mnc is None
            else (mcc, mnc) != (self.home.mcc, self.home.mnc)
        )
        return True, [
            index,
            rid,
            holder.subscription_id,
            holder.account_id,
            holder.payment_type,
            record.msisdn,
            record.imsi,
            record.usage_class,
            start,
            record.duration_seconds,
            record.volume_bytes,
            record.units,
            record.direction,
            record.called_number,
            mcc,
            mnc,
            roaming,
            charge,
            discount,
            currency,
            breakdown,
        ]

    def _price(
        self,
        index: int,
        record: UsageRecord,
        start: str,
        holder: Holder,
        mcc: str | None,
        mnc: str | None,
    ) -> Priced | list[Any]:
        """Charge, discount, currency and breakdown of a record (as the
        charging system priced it), or its rejection."""
        return (
            None if record.charge is None else str(record.charge),
            None if record.discount is None else str(record.discount),
            record.currency,
            None,
        )

    @staticmethod
    def _holder(
        record: UsageRecord, holders: Mapping[str, Sequence[Holder]]
    ) -> tuple[Holder | None, str]:
        if record.msisdn is not None:
            found = holder_at(
                holders.get("msisdn:" + record.msisdn, ()), record.start_time
            )
            if found is not None or record.imsi is None:
                return found, "msisdn"
        assert record.imsi is not None  # validation requires one of the two
        return holder_at(
            holders.get("imsi:" + record.imsi, ()), record.start_time
        ), "imsi"


def identities_of(records: Iterable[tuple[int, object]]) -> set[str]:
    """The ``msisdn:…``/``imsi:…`` keys a chunk refers to (before validation)."""
    msisdns: set[str] = set()
    imsis: set[str] = set()
    for _, raw in records:
        if isinstance(raw, UsualUnratedRecord):  # typed: a text or UNSET
            if type(raw.msisdn) is str:
                msisdns.add(raw.msisdn)
            if type(raw.imsi) is str:
                imsis.add(raw.imsi)
        elif type(raw) is dict:
            msisdn = raw.get("msisdn")
            if type(msisdn) is str:
                msisdns.add(msisdn)
            imsi = raw.get("imsi")
            if type(imsi) is str:
                imsis.add(imsi)
    return {"msisdn:" + m for m in msisdns} | {"imsi:" + i for i in imsis}


def _start(item: Any) -> datetime:
    record: UsageRecord = item[1]  # the quick lane is not taken in time order
    return record.start_time


def _first(row: list[Any]) -> int:
    index: int = row[0]
    return index


def _rejection(index: int, error: RecordError) -> list[Any]:
    return [index, error.record_id, "schema", error.code, error.message, error.path]


_utc = utc_text  # fixed width, as every view stores times


class OfflineRatingRules(RatedUsageRules):
    """The decisions of the offline rating job: those of the rated-usage job,
    with each record priced against the tariff of its subscription's rate plan
    in force at the usage time. Configuration errors (no tariff, no rate, no
    destination, no roaming zone) are rejections that reprocessing re-runs
    once the tariffs are fixed.

    Allowances are free units per bill period of the subscription's account
    (from its bill-cycle day). The records of a chunk are priced in time order
    (by start; the file's order among equal starts) and chunks and files in
    the order they are loaded, so each takes what the ones priced before it
    in the same period left. ``allowance_used(subscription, period)`` gives
    the units each allowance already gave in that period to usage loaded
    before this job, and the latest start of that usage; what this job takes
    is kept here, across its chunks. ``bill_cycle_day(account)`` gives the
    account's day (1-28).

    Free units belong to usage in time order. A record that starts before
    usage that took free units ahead of it (in an earlier file or chunk) is
    still priced with what is left, and its subscription's period is listed
    in ``reallocations`` from its start on: once the batch is loaded, the job
    prices the usage of that period from there on again, in time order.
    """

    time_ordered = True
    quick_lane = False  # every record is priced here

    def __init__(
        self,
        usage_classes: Collection[str],
        home: HomeNetwork,
        already_loaded: Callable[[Iterable[str]], Collection[str]],
        book: TariffBook,
        compiled: Callable[[Tariff], CompiledTariff],
        allowance_used: Callable[[str, Period], AllowancesSoFar] | None = None,
        bill_cycle_day: Callable[[str], int] | None = None,
    ):
        super().__init__(usage_classes, home, already_loaded)
        self.book = book
        self.compiled = compiled
        # The compiled tariff of a record's rate plan at its start: looked up
        # once for a plan whose tariff has a single version (see TariffOf).
        self.tariff_of = TariffOf(book, compiled)
        self.allowance_used = allowance_used or (lambda _s, _p: NONE_USED)
        self.bill_cycle_day = bill_cycle_day or (lambda _a: 1)
        self.used: dict[tuple[str, Period], dict[str, int]] = {}
        # The latest start (UTC text) of usage that took free units, by period.
        self.latest: dict[tuple[str, Period], str] = {}
        self.reallocations: dict[tuple[str, Period], str] = {}  # → from (UTC text)
        self.cycle_days: dict[str, int] = {}

    def cycle_day(self, account_id: str) -> int:
        """The bill-cycle day of an account (asked once per job)."""
        day = self.cycle_days.get(account_id)
        if day is None:
            day = self.cycle_days[account_id] = self.bill_cycle_day(account_id)
        return day

    def _allowances_used(
        self, holder: Holder, record: UsageRecord
    ) -> tuple[tuple[str, Period], dict[str, int]]:
        """The record's (subscription, bill period), and the units each
        allowance gave so far in it."""
        day = self.cycle_day(holder.account_id)
        key = (holder.subscription_id, period_of(day, record.start_time))
        used = self.used.get(key)
        if used is None:
            so_far = self.allowance_used(*key)
            used = self.used[key] = dict(so_far.used)
            if so_far.latest is not None:
                self.latest[key] = so_far.latest
        return key, used

    def _price(
        self,
        index: int,
        record: UsageRecord,
        start: str,
        holder: Holder,
        mcc: str | None,
        mnc: str | None,
    ) -> Priced | list[Any]:
        path = f"/records/{index}"
        try:
            compiled = self.tariff_of(holder.rate_plan, record.start_time)
            tariff = compiled.tariff
            used: dict[str, int] | None = None
            state = None
            if compiled.allowances.get(record.usage_class):
                key, used = self._allowances_used(holder, record)
                latest = self.latest.get(key)
                if latest is not None and start < latest:
                    since = self.reallocations.get(key)
                    if since is None or start < since:
                        self.reallocations[key] = start
                state = AllowanceState(
                    {
                        a.code: max(0, a.units - used.get(a.code, 0))
                        for a in tariff.allowances
                    }
                )
            home = self.home
            usage = Usage.from_record(record, home.mcc, home.mnc, (mcc, mnc))
            rated = quote(compiled, usage, state)
        except RatingError as error:
            where = _RATING_FIELDS.get(error.code, "")
            return [
                index,
                record.record_id,
                "configuration",
                error.code,
                error.message,
                path + where,
            ]
        if rated.currency != holder.currency:
            return [
                index,
                record.record_id,
                "configuration",
                "currency_mismatch",
                f"tariff {rated.tariff} charges in {rated.currency} but "
                f"subscription {holder.subscription_id} is billed in "
                f"{holder.currency}",
                path,
            ]
        if used is not None:  # the record is loaded: it takes its free units
            for use in rated.allowances:
                used[use.code] = used.get(use.code, 0) + use.units
            if rated.allowances and (latest is None or start > latest):
                self.latest[key] = start
        discount = None if not rated.discount else str(rated.discount)
        return str(rated.charge), discount, rated.currency, rated.as_json()


# Which field of a record a rating error points at.
_RATING_FIELDS: Final = {
    "no_rate": "/usage_class",
    "no_destination": "/called_number",
    "no_zone": "/mcc",
    "bad_usage": "",
}
