"""Workflow events per second, end to end: raised → every actioned item completed.

    python benchmarks/workflow.py [--events 2000] [--backend sqlite|postgres|both]

Each workflow event is `BFEA DBAR` from the demo catalogue: one bar action
(an internal handler) and, on resolve, one SMS written to the outbox. Events
are raised in bulk (`raise_workflow_events`, 500 a save, as a credit-control
run would) while a worker process runs the workflow processor, the read models
and the dispatcher; the clock stops when the read model shows every event
resolved with every item completed. A same-run baseline times the event store
alone: saving the same number of events, 500 a save, with nothing else.

PostgreSQL: `--database-url postgresql://…`, or a temporary server is started
(as the tests do) when none is given.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate

from api.cli import demo_catalogue
from application.platform import Platform
from application.settings import Settings

CHUNK = 500


class Probe(Aggregate):
    """Baseline: the cheapest event the store can save."""

    class Noted(Aggregate.Event):
        pass


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
    platform = Platform(settings)
    try:
        platform.catalogue.import_document(demo_catalogue(), "benchmark")
        care = platform.care
        customer = care.register_customer(name="Bench Mark", actor="benchmark")
        account = care.open_account(customer_id=customer, actor="benchmark")
        ids = [
            str(
                care.create_subscription(
                    account_id=account,
                    msisdn=str(447000000000 + n),
                    status="active",
                    actor="benchmark",
                )
            )
            for n in range(subscriptions)
        ]
        platform.work_until_idle()
        return ids
    finally:
        platform.close()


def run(settings: Settings, subscriptions: list[str], events: int) -> float:
    env = {**os.environ, "MONETISE_HOME": str(settings.home)}
    if settings.database_url:
        env["MONETISE_DATABASE_URL"] = settings.database_url
    worker = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    platform = Platform(settings)
    try:
        requests = [
            {
                "owner_id": subscriptions[n % len(subscriptions)],
                "level": "subscription",
                "event_type": "BFEA",
                "event_code": "DBAR" if (n // len(subscriptions)) % 2 == 0 else "DUNB",
            }
            for n in range(events)
        ]
        started = time.perf_counter()
        for offset in range(0, events, CHUNK):
            results = platform.care.raise_workflow_events(
                requests[offset : offset + CHUNK], actor="benchmark"
            )
            refused = [r for r in results if isinstance(r, str)]
            assert not refused, refused[:3]
        views = platform.views
        deadline = time.monotonic() + 600
        while True:
            views.catch_up()
            counts = views.actioned_items.counts()
            # Counted by the database: reading the rows back, 20 times a
            # second, cost this process more CPU than the worker's read models.
            resolved = views.workflow_events.counts().get("resolved", 0)
            if resolved >= events and counts.get("completed", 0) >= 2 * events:
                break
            if worker.poll() is not None:
                raise RuntimeError(worker.stderr.read().decode()[-2000:])
            if time.monotonic() > deadline:
                raise RuntimeError(f"not done after 600 s: {counts}, {resolved}")
            time.sleep(0.05)
        return time.perf_counter() - started
    finally:
        worker.terminate()
        worker.wait(30)
        platform.close()


def baseline(settings: Settings, events: int) -> float:
    """The event store alone: 8 events per workflow event, 500 a save."""
    env = Platform(settings).database.eventsourcing_env("baseline")
    app = Application(env=env)
    try:
        started = time.perf_counter()
        total = events * 8
        for _ in range(0, total, CHUNK):
            app.save(*(Probe() for _ in range(CHUNK)))
        return time.perf_counter() - started
    finally:
        app.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--subscriptions", type=int, default=500)
    parser.add_argument(
        "--backend", choices=["sqlite", "postgres", "both"], default="both"
    )
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    print(
        f"{args.events} workflow events (BFEA DBAR/DUNB: bar + SMS each) on "
        f"{args.subscriptions} subscriptions, {os.cpu_count()} cores"
    )
    for backend in backends:
        with (
            tempfile.TemporaryDirectory() as home,
            database_url(backend, args.database_url) as url,
        ):
            settings = settings_for(backend, Path(home), url)
            subscriptions = prepare(settings, args.subscriptions)
            elapsed = run(settings, subscriptions, args.events)
            store = baseline(settings, args.events)
        rate = args.events / elapsed
        print(
            f"{backend:9} end to end: {rate:8.0f} workflow events/s ({elapsed:.2f} s)"
        )
        print(
            f"{'':9} baseline:   {args.events * 8 / store:8.0f} bare events/s "
            f"saved 500 a save; the workflow stores ~8 events per workflow event "
            f"and a read-model row for each"
        )


if __name__ == "__main__":
    main()
