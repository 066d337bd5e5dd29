"""Usage records per second through the hot-path validator and through jsonschema.

    python benchmarks/validator.py [--records 100000] [--kind rated|unrated]
                                   [--repeat 3]

Generates the same records for both (seeded: voice calls, data sessions and
SMS shaped like the example file of the generic usage format, a third of them
with a non-UTC offset) and times ``validate_record`` over them, then the
published schema through ``jsonschema`` (Draft 2020-12 with its format
checker, one ``is_valid`` per record) over the same records: the same-run
baseline. Each figure is the best of ``--repeat`` passes on one core. Parsing
is timed apart (the whole file with ``json``, and ``orjson`` when installed), as
it is the other large cost of loading a file.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jsonschema  # noqa: E402

from domain.usage_records import (  # noqa: E402
    QuickCheck,
    RecordError,
    validate_record,
)


def generate(count: int, kind: str, seed: int = 20261121) -> list[dict[str, Any]]:
    """``count`` valid records of ``kind``."""
    rng = random.Random(seed)
    records = []
    for number in range(count):
        shape = number % 3
        offset = rng.choice(["Z", "Z", "+01:00"])
        hour = 9 if offset == "Z" else 10
        record: dict[str, Any] = {
            "record_id": f"OCS1-{number:08d}",
            "usage_class": ["VOICE_NAT", "DATA_ROAM", "SMS_NAT"][shape],
            "start_time": f"2026-11-21T{hour:02d}:{rng.randrange(60):02d}:"
            f"{rng.randrange(60):02d}{offset}",
            "direction": rng.choice(["MO", "MT"]),
            "mcc": "234",
            "mnc": "15",
        }
        if shape == 1:
            record["imsi"] = f"23415{rng.randrange(10**10):010d}"
            record["volume_bytes"] = rng.randrange(10**10)
        else:
            record["msisdn"] = f"4477009{rng.randrange(10**5):05d}"
            record["called_number"] = f"4416329{rng.randrange(10**5):05d}"
            if shape == 0:
                record["duration_seconds"] = rng.randrange(3600)
            else:
                record["units"] = 1
        if kind == "rated":
            pence = rng.randrange(10**6)
            record["charge"] = {"amount": f"{pence / 10**4:.4f}", "currency": "GBP"}
            if shape == 0:
                record["discount"] = {"amount": "0.0500"}
        records.append(record)
    return records


def best_rate(count: int, repeat: int, run: Callable[[], int]) -> tuple[float, int]:
    """Records per second of the fastest of ``repeat`` runs, and what it counted."""
    best = float("inf")
    counted = 0
    for _ in range(repeat):
        started = time.perf_counter()
        counted = run()
        best = min(best, time.perf_counter() - started)
    return count / best, counted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--kind", choices=["rated", "unrated"], default="rated")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    count, kind = args.records, args.kind
    records = generate(count, kind)

    def ours() -> int:
        return sum(
            not isinstance(validate_record(raw, kind, index), RecordError)
            for index, raw in enumerate(records)
        )

    path = ROOT / "ingest" / "schemas" / f"usage-{kind}.schema.json"
    schema = json.loads(path.read_text("utf-8"))
    reference = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).evolve(schema=schema["$defs"]["record"])

    def theirs() -> int:
        return sum(reference.is_valid(raw) for raw in records)

    def quick() -> int:
        # The loader's quick lane, the full validator for what it steps aside on.
        check = QuickCheck(kind).check
        return sum(
            check(raw) is not None
            or not isinstance(validate_record(raw, kind, index), RecordError)
            for index, raw in enumerate(records)
        )

    print(f"{count:,} {kind} records, best of {args.repeat}, one core")
    rate, accepted = best_rate(count, args.repeat, ours)
    print(f"  validate_record  {rate:>12,.0f} records/s  ({accepted:,} accepted)")
    fast, accepted = best_rate(count, args.repeat, quick)
    print(f"  QuickCheck first {fast:>12,.0f} records/s  ({accepted:,} accepted)")
    baseline, accepted = best_rate(count, args.repeat, theirs)
    print(f"  jsonschema       {baseline:>12,.0f} records/s  ({accepted:,} accepted)")
    print(f"  ratio            {rate / baseline:>12.1f} x")

    document = json.dumps({"records": records}).encode()
    parsers: list[tuple[str, Callable[[bytes], Any]]] = [("json.loads", json.loads)]
    try:
        import orjson

        parsers.append(("orjson.loads", orjson.loads))
    except ImportError:
        pass
    for name, parse in parsers:
        rate, _ = best_rate(
            count, args.repeat, lambda p=parse: len(p(document)["records"])
        )
        print(f"  {name:<16} {rate:>12,.0f} records/s  (parsing alone)")


if __name__ == "__main__":
    main()
