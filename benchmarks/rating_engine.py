"""Usage records rated per second by the rating engine alone, on one core.

    python benchmarks/rating_engine.py [--records 200000] [--repeat 3]

Three workloads against one compiled tariff in Europe/London with weekday
NIGHT/PEAK/OFF bands, weekend and holiday bands, slabs, a connect fee, a cap
and rounding:

- voice: national calls of 1 s to 30 min starting anywhere in a fortnight
  (some cross a band start or midnight);
- voice, all band splits: calls of 20 to 60 min starting on a weekday in the
  20 minutes before 08:00, 19:00 or midnight, so that every one is cut at a band start
  or midnight (and at PEAK's slab) and priced in several parts;
- data: sessions of up to 200 MiB (two volume slabs);
- sms: 1 to 3 units.

Records are built before the clock starts; the clock times ``quote`` on each
(the full result with its breakdown). The same-run baseline is the cheapest
pricing imaginable: one ``Decimal`` multiply of each record's quantity by a
price. The best of ``--repeat`` runs is printed.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from domain.rating import Usage, compile_tariff, quote, read_tariffs

MIB = 1_048_576
WEEKDAYS = [1, 2, 3, 4, 5]
WEEKDAYS_OF_A_FORTNIGHT = [0, 1, 2, 3, 4, 7, 8, 9, 10, 11]  # from Monday 2 March


def per_minute(price: str, increment: int) -> dict[str, object]:
    return {"from": 0, "price": price, "per": 60, "increment": increment}


def national(
    band: str, slabs: list[dict[str, object]], **more: object
) -> dict[str, object]:
    return {
        "usage_class": "VOICE_NAT",
        "destination": "NAT",
        "time_band": band,
        "weight": 10,
        "slabs": slabs,
        "rounding": {"method": "half_up", "decimals": 4},
        **more,
    }


DOCUMENT = {
    "tariffs": [
        {
            "code": "STD",
            "currency": "GBP",
            "timezone": "Europe/London",
            "time_bands": [
                {"code": "NIGHT", "weekdays": WEEKDAYS, "start": "00:00"},
                {"code": "PEAK", "weekdays": WEEKDAYS, "start": "08:00"},
                {"code": "OFF", "weekdays": WEEKDAYS, "start": "19:00"},
                {"code": "WKD", "weekdays": [6, 7], "start": "00:00"},
                {"code": "HOL", "dates": ["12-25", "01-01"], "start": "00:00"},
            ],
            "destinations": {"NAT": ["441", "442"], "MOB": ["447"]},
            "rates": [
                national(
                    "PEAK",
                    [
                        per_minute("0.10", 60),
                        {"from": 60, "price": "0.05", "per": 60, "increment": 1},
                    ],
                    connect_fee="0.10",
                    max_cost={"amount": "2.00"},
                ),
                national("OFF", [per_minute("0.02", 1)]),
                national("NIGHT", [per_minute("0.01", 1)]),
                national("WKD", [per_minute("0.035", 30)]),
                national("HOL", [per_minute("0.01", 1)], weight=20),
                {
                    "usage_class": "DATA",
                    "slabs": [
                        {"from": 0, "price": "0.01", "per": MIB, "increment": 1024},
                        {
                            "from": 100 * MIB,
                            "price": "0.005",
                            "per": MIB,
                            "increment": 1024,
                        },
                    ],
                    "rounding": {"method": "half_up", "decimals": 4},
                },
                {
                    "usage_class": "SMS_NAT",
                    "slabs": [{"from": 0, "price": "0.04", "per": 1, "increment": 1}],
                    "rounding": {"method": "half_up", "decimals": 2},
                },
            ],
        }
    ]
}

HOME = {"mcc": "234", "mnc": "15", "home_mcc": "234", "home_mnc": "15"}


def workloads(count: int, seed: int = 7) -> dict[str, list[Usage]]:
    chance = random.Random(seed)
    first = datetime(2026, 3, 2, tzinfo=ZoneInfo("Europe/London"))

    def start() -> datetime:
        return first + timedelta(seconds=chance.randrange(14 * 86_400))

    def before_a_band_start() -> datetime:
        day = first + timedelta(days=chance.choice(WEEKDAYS_OF_A_FORTNIGHT))
        hour = chance.choice([7, 18, 23])
        return day.replace(hour=hour, minute=chance.randrange(40, 60))

    return {
        "voice": [
            Usage(
                "VOICE_NAT",
                start(),
                duration_seconds=chance.randrange(1, 1800),
                called_number=f"44{chance.choice('12')}{chance.randrange(10**9):09d}",
                **HOME,
            )
            for _ in range(count)
        ],
        "voice, all band splits": [
            Usage(
                "VOICE_NAT",
                before_a_band_start(),
                duration_seconds=chance.randrange(1200, 3600),
                called_number=f"44{chance.choice('12')}{chance.randrange(10**9):09d}",
                **HOME,
            )
            for _ in range(count)
        ],
        "data": [
            Usage("DATA", start(), volume_bytes=chance.randrange(1, 200 * MIB), **HOME)
            for _ in range(count)
        ],
        "sms": [
            Usage(
                "SMS_NAT",
                start(),
                units=chance.randint(1, 3),
                called_number="447700900123",
                **HOME,
            )
            for _ in range(count)
        ],
    }


def best_rate(run: Callable[[], object], records: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        began = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - began)
    return records / best


def quantity(usage: Usage) -> int:
    return usage.duration_seconds or usage.volume_bytes or usage.units or 0


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    tariffs, problems = read_tariffs(DOCUMENT)
    assert not problems, problems
    compiled = compile_tariff(tariffs[0])
    loads = workloads(args.records)
    price = Decimal("0.0123")
    print(f"{args.records:,} records per workload, best of {args.repeat}")
    print(
        f"{'workload':<22}{'engine rec/s':>14}{'baseline rec/s':>16}{'parts/rec':>11}"
    )
    everything: list[Usage] = []
    for name, usages in loads.items():
        everything.extend(usages)
        amounts = [quantity(usage) for usage in usages]
        parts = sum(len(quote(compiled, usage).parts) for usage in usages)

        def engine(usages: list[Usage] = usages) -> None:
            for usage in usages:
                quote(compiled, usage)

        def baseline(amounts: list[int] = amounts) -> None:
            for amount in amounts:
                price * amount  # the work being timed

        rate = best_rate(engine, len(usages), args.repeat)
        floor = best_rate(baseline, len(usages), args.repeat)
        print(f"{name:<24}{rate:>14,.0f}{floor:>16,.0f}{parts / len(usages):>11.2f}")
    random.Random(1).shuffle(everything)

    def mixed() -> None:
        for usage in everything:
            quote(compiled, usage)

    rate = best_rate(mixed, len(everything), args.repeat)
    print(f"{'all, shuffled':<24}{rate:>14,.0f}")


if __name__ == "__main__":
    main()
