"""Records per second through the streaming usage-file reader, and its memory.

    python benchmarks/reader.py [--records 1000000] [--chunk 1000]
                                [--block-size 1048576] [--repeat 3]

Writes a rated usage file of ``--records`` records shaped like the example file
of the generic usage format (one record a line, as a sender would write it) to
a temporary file, then times ``UsageFileReader`` over it, reading from disk
(the page cache, after the first pass) in chunks of ``--chunk`` records. The
same-run baselines parse the whole file at once: ``json.loads`` and, when
installed, ``orjson.loads`` (of the bytes, read beforehand, so reading is not
timed; the reader's figure includes reading). Each figure is the best of
``--repeat`` passes on one core.

The reader is timed twice: reading plain JSON values, and reading typed (the
loader's way: ``shape=UsualRatedRecord``); then each again with every record
through ``QuickCheck`` (what the loader does with them next), so that the
figures show what typed reading saves the loader, in the same run.

Memory: the peak of Python allocations during a reader pass (``tracemalloc``,
a separate, slower pass), and the process's peak RSS measured before the
baselines run (they hold the whole file and every record at once).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from domain.usage_records import QuickCheck, UsualRatedRecord  # noqa: E402
from ingest.reader import UsageFileReader  # noqa: E402


def record(number: int, rng: random.Random) -> dict[str, Any]:
    """The issue's example voice call, varied."""
    return {
        "record_id": f"OCS1-{number:06d}",
        "msisdn": f"4477009{rng.randrange(10**5):05d}",
        "usage_class": "VOICE_NAT",
        "start_time": f"2026-11-21T09:{rng.randrange(60):02d}:{rng.randrange(60):02d}Z",
        "duration_seconds": rng.randrange(3600),
        "direction": rng.choice(["MO", "MT"]),
        "called_number": f"4416329{rng.randrange(10**5):05d}",
        "mcc": "234",
        "mnc": "15",
        "charge": {"amount": f"{rng.randrange(10**6) / 10**4:.4f}", "currency": "GBP"},
        "discount": {"amount": "0.0500"},
    }


def write_file(path: Path, count: int, seed: int = 20261121) -> int:
    """Write a usage file of ``count`` records to ``path``; its size in bytes."""
    rng = random.Random(seed)
    header = {
        "file_id": "OCS1-20261121-0001",
        "source": "OCS1",
        "created_at": "2026-11-21T10:00:00Z",
        "kind": "rated",
        "record_count": count,
    }
    with path.open("w", encoding="utf-8") as out:
        out.write('{"header": ' + json.dumps(header) + ',\n "records": [\n')
        batch: list[str] = []
        for number in range(count):
            batch.append(json.dumps(record(number + 1, rng)))
            if len(batch) == 10_000:
                out.write(",\n".join(batch))
                batch = []
                if number + 1 < count:
                    out.write(",\n")
        out.write(",\n".join(batch))
        out.write("\n]}\n")
    return path.stat().st_size


def read_all(
    path: Path,
    chunk: int,
    block_size: int,
    typed: bool = False,
    checked: bool = False,
) -> int:
    """Read the file through the reader (``typed``: as the loader does), and
    with ``checked`` each record through the quick check; the number of
    records read (and, checked, vouched for)."""
    counted = 0
    check = QuickCheck("rated").check
    with path.open("rb") as binary:
        reader = UsageFileReader(
            binary, block_size=block_size, shape=UsualRatedRecord if typed else None
        )
        for records in reader.chunks(chunk):
            if checked:
                counted += sum(check(value) is not None for value, _ in records)
            else:
                counted += len(records)
        assert isinstance(reader.header, dict)  # as a loader would read it
    return counted


def best_time(repeat: int, run: Callable[[], int]) -> tuple[float, int]:
    """Seconds of the fastest of ``repeat`` runs, and what it counted."""
    best = float("inf")
    counted = 0
    for _ in range(repeat):
        started = time.perf_counter()
        counted = run()
        best = min(best, time.perf_counter() - started)
    return best, counted


def peak_rss_mib() -> float:
    """The process's peak resident set size so far, in MiB (Linux: KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=1000)
    parser.add_argument("--block-size", type=int, default=1 << 20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    count = args.records

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "usage.json"
        size = write_file(path, count)
        mib = size / 2**20
        print(
            f"{count:,} rated records, {mib:,.1f} MiB, chunks of {args.chunk:,}, "
            f"blocks of {args.block_size:,} bytes, best of {args.repeat}, one core"
        )
        rss_before = peak_rss_mib()

        for name, typed, checked in (
            ("UsageFileReader", False, False),
            ("... typed", True, False),
            ("... + QuickCheck", False, True),
            ("... typed + check", True, True),
        ):
            seconds, counted = best_time(
                args.repeat,
                lambda typed=typed, checked=checked: read_all(
                    path, args.chunk, args.block_size, typed, checked
                ),
            )
            assert counted == count, (counted, count)
            print(
                f"  {name:<18}{count / seconds:>11,.0f} records/s  "
                f"{mib / seconds:>7,.1f} MiB/s  ({seconds:.2f} s)"
            )
        rss_after = peak_rss_mib()

        tracemalloc.start()
        read_all(path, args.chunk, args.block_size)
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(
            f"  reader memory    peak {traced_peak / 2**20:,.1f} MiB of Python "
            f"allocations (tracemalloc); process peak RSS {rss_after:,.1f} MiB "
            f"({rss_before:,.1f} MiB before reading)"
        )

        document = path.read_bytes()
        parsers: list[tuple[str, Callable[[bytes], Any]]] = [("json.loads", json.loads)]
        try:
            import orjson

            parsers.append(("orjson.loads", orjson.loads))
        except ImportError:
            print("  (orjson is not installed: no orjson baseline)")
        for name, parse in parsers:

            def whole(parse: Callable[[bytes], Any] = parse) -> int:
                return len(parse(document)["records"])

            seconds, _ = best_time(args.repeat, whole)
            print(
                f"  {name:<16} {count / seconds:>12,.0f} records/s  "
                f"{mib / seconds:>7,.1f} MiB/s  ({seconds:.2f} s, whole file)"
            )
        print(f"  peak RSS with the baselines {peak_rss_mib():,.1f} MiB")


if __name__ == "__main__":
    main()
