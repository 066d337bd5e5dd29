"""Offline rating: the engine alone, end to end, and a rerate.

    python benchmarks/rating.py [--records 1000000] [--subscriptions 1000]
                                [--backend sqlite|postgres|both]
                                [--voice-only]

1. The engine alone: ``benchmarks/rating_engine.py`` (one core, its own
   baseline) — run it for that figure.
2. End to end: an unrated file of N records (national voice, data and SMS for
   subscriptions on the demo tariff STD) dropped into ``inbound/unrated/``
   and taken by the ``load-unrated-usage`` daemon (validation, the
   subscription at the usage time, pricing with breakdowns) while a worker
   process keeps the usage views up to date; the clock stops when the usage
   views (which the detailed bill reads) hold every record.
3. A rerate of every national voice record after a tariff change (a third
   of the records; all of them with ``--voice-only``, so that ``--records
   1000000 --voice-only`` is the rerate of a million records): the clock runs
   from the request to the run completed and its corrections applied to the
   views by the worker process.

Same-run baselines: the usage file's parse with ``orjson``; for the rerate,
the rating engine alone on the same records in this process (``quote`` of
usages built beforehand), and the engine with the breakdown every correction
records (``quote`` then ``Rated.as_dict()``): no rerate can beat the second.
"""

from __future__ import annotations

import argparse
import copy
import os
import random
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
    cpu_seconds,
    database_url,
    orjson_baseline,
    prepare,
    server_cpu_seconds,
    settings_for,
    write_file,
)
from ingest.daemons import daemon  # noqa: E402


def unrated_file(
    path: Path, records: int, numbers: list[str], voice_only: bool = False
) -> None:
    """The rated benchmark file without charges: an unrated file; with
    ``voice_only`` every record a national call (at home, to a UK number)."""
    rated = path.with_suffix(".rated")
    write_file(rated, records, numbers)
    import orjson

    document = orjson.loads(rated.read_bytes())
    rated.unlink()
    document["header"]["kind"] = "unrated"
    rng = random.Random(20261203)
    for record in document["records"]:
        record.pop("charge", None)
        record.pop("discount", None)
        if voice_only and record["usage_class"] != "VOICE_NAT":
            record.pop("volume_bytes", None)
            record.pop("units", None)
            record.update(
                usage_class="VOICE_NAT",
                mcc="234",
                mnc="15",
                duration_seconds=rng.randrange(1, 3600),
                called_number=f"4416329{rng.randrange(10**5):05d}",
            )
    path.write_bytes(orjson.dumps(document))


def engine_baselines(platform: Platform, limit: int = 200_000) -> tuple[float, float]:
    """Records/s of the engine alone, and with the breakdown, on (up to
    ``limit`` of) the national voice records just rerated, in this process."""
    from datetime import datetime

    from domain.rating import Usage, quote

    tariffs = platform.tariffs
    book = tariffs.book()  # once: read from the store, it took a query a record
    home = platform.usage.home_network
    with platform.views.db.read() as tx:
        plans = {
            r["id"]: r["rate_plan"]
            for r in tx.fetchall("SELECT id, rate_plan FROM view_subscriptions")
        }
    usages = []
    with platform.usage_views.db.read() as tx:
        for table in ("view_rated_usage", "view_prepaid_usage"):
            usages += [
                (
                    tariffs.compiled(
                        book.for_rate_plan(
                            plans[row["subscription_id"]],
                            datetime.fromisoformat(row["start_time"]),
                        )
                    ),
                    Usage(
                        usage_class="VOICE_NAT",
                        start=datetime.fromisoformat(row["start_time"]),
                        duration_seconds=row["duration_seconds"],
                        called_number=row["called_number"],
                        mcc=row["mcc"],
                        mnc=row["mnc"],
                        home_mcc=home.mcc,
                        home_mnc=home.mnc,
                    ),
                )
                for row in tx.fetchall(
                    f"SELECT subscription_id, start_time, duration_seconds, "  # noqa: S608
                    f"called_number, mcc, mnc FROM {table} "
                    f"WHERE usage_class = 'VOICE_NAT' LIMIT {limit}"
                )
            ]
    usages = usages[:limit]
    started = time.perf_counter()
    for tariff, usage in usages:
        quote(tariff, usage)
    engine = time.perf_counter() - started
    started = time.perf_counter()
    for tariff, usage in usages:
        quote(tariff, usage).as_dict()
    with_breakdown = time.perf_counter() - started
    return len(usages) / engine, len(usages) / with_breakdown


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


def run(
    settings: Settings, source: Path, records: int, processes: int | None = None
) -> tuple[float, float, float, int, tuple[float, float], tuple[float, ...]]:
    """Seconds end to end; seconds of the rerate until the request returned
    and until the views held its corrections; records rerated; the engine
    baselines (records/s); CPU seconds of the rerate in this process, in the
    processes pricing its pages and in the worker keeping the views."""
    background = worker(settings)
    platform = Platform(settings)
    try:
        platform.tariffs.import_document(demo_tariffs(), "benchmark")
        loader = daemon("load-unrated-usage", platform)
        time.sleep(2)
        load_cpu = (
            cpu_seconds(),
            cpu_seconds(background.pid),
            server_cpu_seconds(settings.database_url),
        )
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
        print(
            f"{'':9} CPU of the load: {cpu_seconds() - load_cpu[0]:.2f} s in the "
            f"loader, {cpu_seconds(background.pid) - load_cpu[1]:.2f} s in the "
            "worker keeping the views, "
            f"{server_cpu_seconds(settings.database_url) - load_cpu[2]:.2f} s in "
            "PostgreSQL"
        )
        (batch,) = platform.usage_views.batches.batches(None, None, 1, 0)
        if sum(batch["errors_by_class"].values()):
            errors = platform.usage_views.batches.errors(batch["id"], None, 3, 0)
            raise AssertionError(errors)

        changed = copy.deepcopy(demo_tariffs())
        for rate in changed["tariffs"][0]["rates"]:
            if rate["usage_class"] == "VOICE_NAT":
                rate["connect_fee"] = "0.0700"
        platform.tariffs.import_document(changed, "benchmark")
        if processes:
            platform.rerater.processes = processes
        url = settings.database_url
        cpu = (
            cpu_seconds(),
            cpu_seconds(-1),
            cpu_seconds(background.pid),
            server_cpu_seconds(url),
        )
        started = time.perf_counter()
        result = platform.rerater.rerate("VOICE_NAT", None, None, "benchmark")
        returned = time.perf_counter() - started

        def applied() -> bool:
            run = platform.usage_views.batches.rerate_run(result["id"], 1, 0)
            return run is not None and run["status"] == "completed"

        wait_for(platform, applied, background)
        rerate = time.perf_counter() - started
        cpu = (
            cpu_seconds() - cpu[0],
            cpu_seconds(-1) - cpu[1],
            cpu_seconds(background.pid) - cpu[2],
            server_cpu_seconds(url) - cpu[3],
        )
        assert result["changed"] > 0, result
        background.terminate()
        background.wait(30)
        baselines = engine_baselines(platform)
        return end_to_end, returned, rerate, result["selected"], baselines, cpu
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
    parser.add_argument(
        "--voice-only",
        action="store_true",
        help="every record national voice: the rerate takes all of them",
    )
    parser.add_argument(
        "--rerate-processes",
        type=int,
        default=None,
        help="processes pricing the rerate's pages (default: one per core)",
    )
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
            unrated_file(source, args.records, numbers, args.voice_only)
            spare = Path(home) / "baseline.json"
            spare.write_bytes(source.read_bytes())
            end_to_end, returned, rerate, rerated, (engine, breakdown), cpu = run(
                settings, source, args.records, args.rerate_processes
            )
            parse = orjson_baseline(spare)
            print(
                f"{backend:9} end to end: {args.records / end_to_end:9,.0f} records/s "
                f"({end_to_end:.2f} s); orjson parse baseline "
                f"{args.records / parse:,.0f} records/s"
            )
            print(
                f"          rerate of {rerated:,} VOICE_NAT records: {rerate:.2f} s "
                f"({rerated / rerate:,.0f} records/s; the request returned after "
                f"{returned:.2f} s, the worker's views had caught up "
                f"{rerate - returned:.2f} s later)"
            )
            print(
                f"          CPU of the rerate: {cpu[0]:.2f} s in the rerating "
                f"process, {cpu[1]:.2f} s in its pricing processes, {cpu[2]:.2f} s "
                f"in the worker keeping the views, {cpu[3]:.2f} s in PostgreSQL "
                f"({os.cpu_count()} cores; load "
                f"{os.getloadavg()[0]:.1f})"
            )
            print(
                f"          baselines: the engine alone {engine:,.0f} records/s, "
                f"with the breakdown (as_dict) {breakdown:,.0f} records/s — the "
                f"rerate is {rerated / rerate / breakdown:.2f}x the latter"
            )


if __name__ == "__main__":
    main()
