"""Offline rating: the engine alone, end to end, and a rerate.

    python benchmarks/rating.py [--records 1000000] [--subscriptions 1000]
                                [--backend sqlite|postgres|both]

1. The engine alone: ``benchmarks/rating_engine.py`` (one core, its own
   baseline) — run it for that figure.
2. End to end: an unrated file of N records (national voice, data and SMS for
   subscriptions on the demo tariff STD) dropped into ``inbound/unrated/``
   and taken by the ``load-unrated-usage`` daemon (validation, the
   subscription at the usage time, pricing with breakdowns) while a worker
   process keeps the usage views up to date; the clock stops when the usage
   views (which the detailed bill reads) hold every record.
3. A rerate of every national voice record after a tariff change: the clock
   runs from the request to the run completed and its corrections applied to
   the views.

Same-run baseline: the usage file's parse with ``orjson``.
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.cli_tariffs import demo_tariffs  # noqa: E402
from application.platform import Platform  # noqa: E402
from application.settings import Settings  # noqa: E402
from benchmarks.ingest import (  # noqa: E402
    database_url,
    orjson_baseline,
    prepare,
    settings_for,
    write_file,
)
from ingest.daemons import daemon  # noqa: E402


def unrated_file(path: Path, records: int, numbers: list[str]) -> None:
    """The rated benchmark file without charges: an unrated file."""
    rated = path.with_suffix(".rated")
    write_file(rated, records, numbers)
    import orjson

    document = orjson.loads(rated.read_bytes())
    rated.unlink()
    document["header"]["kind"] = "unrated"
    for record in document["records"]:
        record.pop("charge", None)
        record.pop("discount", None)
    path.write_bytes(orjson.dumps(document))


def worker(settings: Settings) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MONETISE_HOME": str(settings.home)}
    if settings.database_url:
        env["MONETISE_DATABASE_URL"] = settings.database_url
    return subprocess.Popen(
        [sys.executable, "-m", "api.cli", "worker"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_for(platform: Platform, done: Any, process: subprocess.Popen[bytes]) -> None:
    while not done():
        if process.poll() is not None:
            raise RuntimeError(process.stderr.read().decode()[-2000:])  # type: ignore[union-attr]
        time.sleep(0.02)


def run(settings: Settings, source: Path, records: int) -> tuple[float, float, int]:
    """Seconds end to end, seconds of the rerate, and records rerated."""
    background = worker(settings)
    platform = Platform(settings)
    try:
        platform.tariffs.import_document(demo_tariffs(), "benchmark")
        loader = daemon("load-unrated-usage", platform)
        time.sleep(2)
        started = time.perf_counter()
        os.replace(source, settings.home / "inbound" / "unrated" / source.name)
        (handled,) = loader.scan_once()
        assert handled.outcome == "archived", handled

        def loaded() -> bool:
            (batch,) = platform.usage_views.batches.batches(None, None, 1, 0)
            counts = batch["counts"]
            done = counts["loaded_postpaid"] + counts["loaded_prepaid"]
            rejected = sum(batch["errors_by_class"].values())
            return bool(batch["status"] == "completed" and done + rejected == records)

        wait_for(platform, loaded, background)
        end_to_end = time.perf_counter() - started
        (batch,) = platform.usage_views.batches.batches(None, None, 1, 0)
        if sum(batch["errors_by_class"].values()):
            errors = platform.usage_views.batches.errors(batch["id"], None, 3, 0)
            raise AssertionError(errors)

        changed = copy.deepcopy(demo_tariffs())
        for rate in changed["tariffs"][0]["rates"]:
            if rate["usage_class"] == "VOICE_NAT":
                rate["connect_fee"] = "0.0700"
        platform.tariffs.import_document(changed, "benchmark")
        started = time.perf_counter()
        result = platform.rerater.rerate("VOICE_NAT", None, None, "benchmark")

        def applied() -> bool:
            run = platform.usage_views.batches.rerate_run(result["id"], 1, 0)
            return run is not None and run["status"] == "completed"

        wait_for(platform, applied, background)
        rerate = time.perf_counter() - started
        return end_to_end, rerate, result["selected"]
    finally:
        background.terminate()
        background.wait(30)
        platform.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--subscriptions", type=int, default=1000)
    parser.add_argument(
        "--backend", choices=["sqlite", "postgres", "both"], default="both"
    )
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    print(f"{args.records:,} unrated records, {args.subscriptions:,} subscriptions")
    for backend in backends:
        with (
            tempfile.TemporaryDirectory() as home,
            database_url(backend, args.database_url) as url,
        ):
            settings = settings_for(backend, Path(home), url)
            numbers = prepare(settings, args.subscriptions)
            source = Path(home) / "UNRATED-0001.json"
            unrated_file(source, args.records, numbers)
            spare = Path(home) / "baseline.json"
            spare.write_bytes(source.read_bytes())
            end_to_end, rerate, rerated = run(settings, source, args.records)
            parse = orjson_baseline(spare)
            print(
                f"{backend:9} end to end: {args.records / end_to_end:9,.0f} records/s "
                f"({end_to_end:.2f} s); orjson parse baseline "
                f"{args.records / parse:,.0f} records/s"
            )
            print(
                f"          rerate of {rerated:,} VOICE_NAT records: {rerate:.2f} s "
                f"({rerated / rerate:,.0f} records/s)"
            )


if __name__ == "__main__":
    main()
