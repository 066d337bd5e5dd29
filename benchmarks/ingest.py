"""Usage records per second, end to end: a rated file dropped → records queryable.

    python benchmarks/ingest.py [--records 1000000] [--subscriptions 1000]
                                [--backend sqlite|postgres|both]
                                [--database-url postgresql://…]

Generates a generic rated usage file of N records (voice, data and SMS shaped
like the issue's example; a fifth of the subscriptions prepaid, a few records
roaming) for subscriptions created beforehand, drops it into
``inbound/rated/`` and times the ``load-rated-usage`` daemon taking it (sha256,
batch, chunks staged and loaded by the rated-usage job, prepaid balances
charged) while a worker process keeps the usage views up to date, as
``monetise up`` runs them on a second core; the clock stops when the
rated-usage and prepaid-usage views hold every record. Peak memory is the
loading process's maximum resident set size.

Same-run baselines on the same data: ``orjson`` parsing the whole file, and
PostgreSQL ``COPY`` of the loaded rows, prepared in memory, into a table with
the view's columns: once with only its key, and once with the view's key,
indexes and fill factor, the least work the server itself can do to make the
records queryable as the views do.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from multiprocessing import forkserver
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.cli import demo_catalogue  # noqa: E402
from application.platform import Platform  # noqa: E402
from application.settings import Settings  # noqa: E402
from ingest.daemons import daemon  # noqa: E402

SEED = 20261122


def settings_for(backend: str, home: Path, url: str | None) -> Settings:
    if backend == "sqlite":
        return Settings(home=home)
    assert url
    return Settings(home=home, database_url=url)


@contextlib.contextmanager
def database_url(backend: str, given: str | None) -> Iterator[str | None]:
    if backend == "sqlite" or given:
        yield given
        return
    from tests.harness.postgres import postgres_server

    with postgres_server() as server:
        yield server.create_database()


def prepare(settings: Settings, subscriptions: int) -> list[str]:
    """The demo catalogue and ``subscriptions`` lines; their MSISDNs."""
    platform = Platform(settings)
    try:
        platform.catalogue.import_document(demo_catalogue(), "benchmark")
        care = platform.care
        customer = care.register_customer(name="Bench Mark", actor="benchmark")
        account = care.open_account(customer_id=customer, actor="benchmark")
        numbers = [str(447000000000 + n) for n in range(subscriptions)]
        for n, msisdn in enumerate(numbers):
            care.create_subscription(
                account_id=account,
                msisdn=msisdn,
                payment_type="prepaid" if n % 5 == 0 else "postpaid",
                status="active",
                actor="benchmark",
            )
        platform.work_until_idle()
        return numbers
    finally:
        platform.close()


def write_file(path: Path, count: int, numbers: list[str]) -> None:
    """A generic rated file of ``count`` records, written as a stream."""
    rng = random.Random(SEED)
    header = {
        "file_id": "BENCH-0001",
        "source": "OCS1",
        "created_at": "2026-11-21T10:00:00Z",
        "kind": "rated",
        "record_count": count,
    }
    with path.open("w") as out:
        out.write('{"header": ' + json.dumps(header) + ', "records": [\n')
        for n in range(count):
            shape = n % 3
            record: dict[str, Any] = {
                "record_id": f"OCS1-{n:09d}",
                "msisdn": numbers[rng.randrange(len(numbers))],
                "usage_class": ("VOICE_NAT", "DATA_NAT", "SMS_NAT")[shape],
                "start_time": f"2026-11-{1 + n % 28:02d}T{rng.randrange(24):02d}:"
                f"{rng.randrange(60):02d}:{rng.randrange(60):02d}Z",
                "direction": "MO" if n % 4 else "MT",
                "mcc": "234",
                "mnc": "15",
                "charge": {
                    "amount": f"{rng.randrange(10**5) / 10**4:.4f}",
                    "currency": "GBP",
                },
            }
            if shape == 0:
                record["duration_seconds"] = rng.randrange(1, 3600)
                record["called_number"] = f"4416329{rng.randrange(10**5):05d}"
                record["discount"] = {"amount": "0.0100"}
            elif shape == 1:
                record["volume_bytes"] = rng.randrange(10**9)
                if n % 50 == 1:  # roaming in France
                    record["mcc"], record["mnc"] = "208", "01"
                    record["usage_class"] = "DATA_ROAM"
            else:
                record["units"] = 1
            out.write(("" if n == 0 else ",\n") + json.dumps(record))
        out.write("\n]}\n")


def cpu_seconds(pid: int | None = None) -> float:
    """CPU seconds (user and system) used so far by a process (this one by
    default), or with ``pid`` -1 by this process's reaped children and the
    fork server's (the pricing processes of a rerate are either)."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    if pid == -1:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        server = getattr(forkserver._forkserver, "_forkserver_pid", None)
        return usage.ru_utime + usage.ru_stime + (cpu_seconds(server) if server else 0)
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # its own time and that of the children it has reaped
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def server_cpu_seconds(url: str | None) -> float:
    """CPU seconds used so far by the PostgreSQL server of ``url`` (its
    postmaster, the backends it has reaped and those still running); 0 for
    SQLite."""
    if not url:
        return 0.0
    port = url.rsplit(":", 1)[1].split("/")[0]
    tick = os.sysconf("SC_CLK_TCK")
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            stats[int(entry.name)] = (stat, command)
    total = 0.0
    for pid, (stat, command) in stats.items():
        if b"postgres" in command and f"-p\0{port}".encode() in command:
            total += sum(int(value) for value in stat[11:15]) / tick
            total += sum(
                (int(child[11]) + int(child[12])) / tick
                for child, _ in stats.values()
                if int(child[1]) == pid
            )
    return total


def run(settings: Settings, source: Path, records: int) -> tuple[float, int]:
    """Seconds from drop to every record queryable, and peak RSS in bytes;
    prints the CPU each process used meanwhile."""
    env = {**os.environ, "MONETISE_HOME": str(settings.home)}
    if settings.database_url:
        env["MONETISE_DATABASE_URL"] = settings.database_url
    worker = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "worker"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    platform = Platform(settings)
    try:
        loader = daemon("load-rated-usage", platform)
        inbound = settings.home / "inbound" / "rated" / source.name
        time.sleep(2)  # the worker is up and idle
        url = settings.database_url
        cpu = (cpu_seconds(), cpu_seconds(worker.pid), server_cpu_seconds(url))
        started = time.perf_counter()
        os.replace(source, inbound)
        (handled,) = loader.scan_once()
        assert handled.outcome == "archived", handled
        loaded = time.perf_counter()
        views = platform.usage_views
        while True:
            (batch,) = views.batches.batches(None, None, 1, 0)
            counts = batch["counts"]
            done = counts["loaded_postpaid"] + counts["loaded_prepaid"]
            if batch["status"] == "completed" and done == records:
                break
            if worker.poll() is not None:
                raise RuntimeError(worker.stderr.read().decode()[-2000:])  # type: ignore[union-attr]
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        print(
            f"          (loader done after {loaded - started:.2f} s; CPU "
            f"{cpu_seconds() - cpu[0]:.2f} s in the loader, "
            f"{cpu_seconds(worker.pid) - cpu[1]:.2f} s in the worker"
            + (
                f", {server_cpu_seconds(url) - cpu[2]:.2f} s in PostgreSQL"
                if url
                else ""
            )
            + ")"
        )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return elapsed, peak
    finally:
        worker.terminate()
        worker.wait(30)
        platform.close()


_ORJSON_PARSE = """
import gc, sys, time
import orjson
gc.disable()
started = time.perf_counter()
document = orjson.loads(open(sys.argv[1], "rb").read())
print(time.perf_counter() - started)
"""


def orjson_baseline(path: Path) -> float:
    """Seconds to read and parse the whole file, in a fresh process with the
    garbage collector paused, as the loader pauses it. (With the collector,
    its passes over the records already parsed took two thirds of the time
    for 1,000,000 records; and in the process that had just loaded them the
    parse took 1.8 times as long as before the load. A child process also
    keeps the parsed document out of this process's peak RSS.)"""
    parsed = subprocess.run(
        [sys.executable, "-c", _ORJSON_PARSE, str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(parsed.stdout)


def copy_baseline(
    settings: Settings, path: Path, *, indexed: bool = False
) -> tuple[float, float]:
    """Seconds of a COPY of the rows the views hold, prepared in memory
    beforehand, into a table with the view's columns and key (``indexed``:
    and its indexes and fill factor, with each record's subscription as its
    own id), and the server's CPU seconds meanwhile."""
    import uuid

    import orjson
    import psycopg

    from projections.usage import RATED_USAGE

    document = orjson.loads(path.read_bytes())
    rows = [
        (
            r["record_id"],
            "batch",
            n,
            # The index by subscription takes entries at a thousand places,
            # as the view's; a subscription's ids are texts of that shape.
            str(uuid.uuid5(uuid.NAMESPACE_OID, r["msisdn"])) if indexed else "s",
            "account",
            r["msisdn"],
            None,
            r["usage_class"],
            r["start_time"],
            r.get("duration_seconds"),
            r.get("volume_bytes"),
            r.get("units"),
            r["direction"],
            r.get("called_number"),
            r["mcc"],
            r["mnc"],
            0,
            r["charge"]["amount"],
            r.get("discount", {}).get("amount"),
            "GBP",
            None,  # breakdown: rated usage has none
            n,
        )
        for n, r in enumerate(document["records"])
    ]
    del document
    assert settings.database_url
    table = "copy_baseline_indexed" if indexed else "copy_baseline"
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        if indexed:  # as RATED_USAGE.create declares the view
            columns = RATED_USAGE.column_sql("postgres")
            storage = f" WITH (fillfactor = {RATED_USAGE.fillfactor})"
        else:
            columns = ", ".join(f"{name} {kind}" for name, kind in RATED_USAGE.columns)
            storage = ""
        conn.execute(
            f"CREATE TABLE {table} ({columns}, PRIMARY KEY (record_id)){storage}"
        )
        for index in RATED_USAGE.indexes if indexed else ():
            conn.execute(f"CREATE INDEX ON {table} ({', '.join(index)})")
        server = server_cpu_seconds(settings.database_url)
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cursor:
            names = ", ".join(RATED_USAGE.column_names)
            with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return (
            time.perf_counter() - started,
            server_cpu_seconds(settings.database_url) - server,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--subscriptions", type=int, default=1000)
    parser.add_argument(
        "--backend", choices=["sqlite", "postgres", "both"], default="both"
    )
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    if args.backend == "both":
        # Each backend in a process of its own: the peak RSS printed is the
        # maximum over a process's life, and the first backend's baselines
        # parse the whole file.
        for backend in ("sqlite", "postgres"):
            subprocess.run(
                [sys.executable, __file__, *sys.argv[1:], "--backend", backend],
                check=True,
            )
        return
    print(
        f"{args.records:,} rated records for {args.subscriptions:,} subscriptions "
        f"(a fifth prepaid), {os.cpu_count()} cores"
    )
    backend = args.backend
    with (
        tempfile.TemporaryDirectory() as home,
        database_url(backend, args.database_url) as url,
    ):
        settings = settings_for(backend, Path(home), url)
        numbers = prepare(settings, args.subscriptions)
        source = Path(home) / "BENCH-0001.json"
        write_file(source, args.records, numbers)
        size = source.stat().st_size
        spare = Path(home) / "baseline.json"
        spare.write_bytes(source.read_bytes())
        elapsed, peak = run(settings, source, args.records)
        parse = orjson_baseline(spare)
        rate = args.records / elapsed
        print(
            f"{backend:9} end to end: {rate:9,.0f} records/s ({elapsed:.2f} s, "
            f"file {size / 1e6:.0f} MB, peak RSS {peak / 1e6:.0f} MB)"
        )
        print(
            f"          baseline orjson parse: {args.records / parse:11,.0f} "
            f"records/s ({parse:.2f} s) — end to end is {parse / elapsed:.2f}x"
        )
        if backend == "postgres":
            copy, _ = copy_baseline(settings, spare)
            print(
                f"          baseline COPY of the rows: {args.records / copy:9,.0f} "
                f"records/s ({copy:.2f} s) — end to end is {copy / elapsed:.2f}x"
            )
            copy, server = copy_baseline(settings, spare, indexed=True)
            print(
                f"          baseline COPY with the view's indexes: "
                f"{args.records / copy:9,.0f} records/s ({copy:.2f} s, "
                f"{server:.2f} s CPU in PostgreSQL) — end to end is "
                f"{copy / elapsed:.2f}x"
            )


if __name__ == "__main__":
    main()
