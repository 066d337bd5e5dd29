"""Workflow events per second, end to end: raised → every actioned item completed.

    python benchmarks/workflow.py [--events 2000] [--subscriptions N]
                                  [--backend sqlite|postgres|both]
                                  [--views apart|together] [--cpu]
                                  [--profile DIR] [--rounds 1]

Each workflow event is `BFEA DBAR` from the demo catalogue: one bar action
(an internal handler) and, on resolve, one SMS written to the outbox. Events
are raised in bulk (`raise_workflow_events`, 500 a save, as a credit-control
run would: by default one on each subscription; `--subscriptions N` fewer
subscriptions, so that each has several workflow events raised while the
worker is still working on the ones before, and the raises and the worker
collide on them) while the background processes work: with `--views apart` (the
default) `monetise worker --no-views` runs the workflow processor and the
dispatcher and `monetise projections follow` the read models; with
`--views together` one `monetise worker` runs all three. The clock stops when
the read model shows every event resolved with every item completed. A
same-run baseline times the event store alone: saving the same number of
events, 500 a save, with nothing else.

PostgreSQL: `--database-url postgresql://…`, or a temporary server is started
(as the tests do) when none is given.

`--cpu` also reports the CPU time per workflow event of each process (this
one, the worker with its helper, the read models' process when apart, the
PostgreSQL server): on a shared machine
it varies far less than the wall clock. Of the worker's, it shows the part
of its helper writing the outbox files: creating and syncing a file is
kernel work, which on this machine's ext4 varied from 0.09 to 0.84 ms a file
from run to run (more after many files of the same file system had been
deleted, as the previous run's cleanup does: see the README). It also shows
how the worker's loop spent the wall clock: running, waiting for a core, or
blocked. `--profile DIR` runs
the worker under cProfile and writes `DIR/worker-BACKEND.prof` (and this
process's profile).

`--rounds R` runs the same measure R times on the same subscriptions, each
round with a new worker, so that each finds the history the rounds before
left (`--events` / `--subscriptions` more workflow events a subscription
each round): the rate should not fall as the history grows.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
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
UNFINISHED = (
    "SELECT COUNT(*) FROM view_actioned_items"
    " WHERE status IN ('awaiting', 'sent', 'error', 'dead')"
)
POLL_INTERVAL = 0.1  # seconds; at most this much is added to the time measured
# Runs the worker under cProfile; SIGTERM ends it as Ctrl-C would.
PROFILED_WORKER = """
import cProfile, signal, sys, time
from api.cli import app
def stop(*_):
    raise KeyboardInterrupt
signal.signal(signal.SIGTERM, stop)
profile = cProfile.Profile(time.thread_time)
try:
    profile.runcall(app, ["worker", *sys.argv[2:]], standalone_mode=False)
except (KeyboardInterrupt, SystemExit):
    pass
finally:
    profile.dump_stats(sys.argv[1])
"""


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


def run(
    settings: Settings,
    subscriptions: list[str],
    events: int,
    cpu: dict[str, float] | None = None,
    profile: Path | None = None,
    done_before: int = 0,
    views_apart: bool = True,
) -> float:
    """Seconds from the first raise to the last completion; with ``cpu``,
    CPU seconds by process are added to it. ``done_before``: workflow events
    finished by earlier rounds."""
    env = {**os.environ, "MONETISE_HOME": str(settings.home)}
    if settings.database_url:
        env["MONETISE_DATABASE_URL"] = settings.database_url
    backend = "postgres" if settings.database_url else "sqlite"
    command = [sys.executable, "-m", "api.cli", "worker"]
    follower = None
    if views_apart:
        command.append("--no-views")
        follower = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "projections", "follow"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert follower.stdout is not None and follower.stderr is not None
        if b"Following the read models" not in follower.stdout.readline():
            raise RuntimeError(follower.stderr.read().decode()[-2000:])
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
        output = profile / f"worker-{backend}.prof"
        command = [sys.executable, "-c", PROFILED_WORKER, str(output), *command[4:]]
    worker = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    platform = Platform(settings)
    views = platform.views
    # The clock starts once the worker runs: its start (imports, connections)
    # is not workflow work.
    assert worker.stdout is not None and worker.stderr is not None
    if b"Worker running" not in worker.stdout.readline():
        raise RuntimeError(worker.stderr.read().decode()[-2000:])
    server = _postmaster(settings.database_url)
    own = cProfile.Profile() if profile is not None else None
    before = (
        time.process_time(),
        _tree_cpu(worker.pid),
        _tree_cpu(server) if server else 0.0,
        _tree_cpu(follower.pid) if follower else 0.0,
    )
    before_loop = _schedstat(worker.pid)
    before_files = _files_cpu(worker.pid)
    try:
        if own is not None:
            own.enable()
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
        deadline = time.monotonic() + 600
        while True:
            # Only counted, by the database: the worker keeps the read models
            # up to date. (Catching them up here too decoded every event twice,
            # and reading the rows back cost more CPU than the worker's views.)
            # The items not yet finished are counted by the status index; the
            # whole views only once none is left (a count by status scans a
            # view: at 60,000 items, polled every 0.1 s, it was a quarter of
            # the PostgreSQL time of a round, beside the work measured).
            with views.db.read() as tx:
                [(unfinished,)] = tx.fetch_tuples(UNFINISHED)
            counts: dict[str, int] = {"unfinished": int(unfinished)}
            resolved = -1
            if not unfinished:
                counts = views.actioned_items.counts()
            if counts.get("completed", 0) >= 2 * (done_before + events):
                resolved = views.workflow_events.counts().get("resolved", 0)
                if resolved >= done_before + events:
                    break
            for process in (worker, follower):
                if process is not None and process.poll() is not None:
                    assert process.stderr is not None
                    raise RuntimeError(process.stderr.read().decode()[-2000:])
            if time.monotonic() > deadline:
                raise RuntimeError(f"not done after 600 s: {counts}, {resolved}")
            time.sleep(POLL_INTERVAL)
        elapsed = time.perf_counter() - started
        if own is not None:
            own.disable()
            assert profile is not None
            own.dump_stats(profile / f"benchmark-{backend}.prof")
        if cpu is not None:
            cpu["benchmark"] = time.process_time() - before[0]
            cpu["worker"] = _tree_cpu(worker.pid) - before[1]
            cpu["its file writer"] = _files_cpu(worker.pid) - before_files
            if follower is not None:
                cpu["views"] = _tree_cpu(follower.pid) - before[3]
            if server:
                cpu["postgres"] = _tree_cpu(server) - before[2]
            # The worker's loop: running, waiting for a core (other processes
            # had them), or blocked (on the database, the disk, a sleep).
            after = _schedstat(worker.pid)
            running, runnable = (b - a for a, b in zip(before_loop, after, strict=True))
            print(
                f"{'':9} worker loop over {elapsed:.2f} s: running {running:.2f} s,"
                f" waiting for a core {runnable:.2f} s,"
                f" blocked {elapsed - running - runnable:.2f} s"
            )
        return elapsed
    finally:
        for process in (worker, follower):
            if process is not None:
                process.terminate()
                process.wait(30)
        platform.close()


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its living descendants (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    used: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        # utime, stime, and those of children already reaped
        used[int(entry.name)] = sum(int(f) for f in fields[11:15]) / tick
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += used.get(current, 0.0)
        todo += children.get(current, [])
    return total


def _processes() -> Iterator[tuple[int, int, str]]:
    """(process id, parent's id, command line) of each living process."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                parent = int(stat[stat.rindex(")") + 2 :].split()[1])
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
                yield int(entry.name), parent, command.decode()


def _files_cpu(pid: int) -> float:
    """CPU seconds of the helper process writing the outbox files for the
    worker ``pid`` (0 before it has started)."""
    for child, parent, command in _processes():
        if parent == pid and "application.files" in command:
            return _tree_cpu(child)
    return 0.0


def _schedstat(pid: int) -> tuple[float, float]:
    """Seconds the main thread of a process ran, and waited to run (Linux)."""
    try:
        ran, waited, _ = Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()
    except (OSError, ValueError):
        return 0.0, 0.0
    return int(ran) / 1e9, int(waited) / 1e9


def _postmaster(url: str | None) -> int | None:
    """The process id of the PostgreSQL server on the URL's port, if local."""
    if not url:
        return None
    port = f"-p {url.rsplit(':', 1)[1].split('/')[0]} "
    for pid, _, line in _processes():
        if "postgres" in line and port in line and "-D" in line:
            return pid
    return None


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
    parser.add_argument(
        "--subscriptions",
        type=int,
        default=None,
        help="subscriptions to raise on (default: one per workflow event)",
    )
    parser.add_argument(
        "--backend", choices=["sqlite", "postgres", "both"], default="both"
    )
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--cpu", action="store_true", help="CPU time per workflow event by process"
    )
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR")
    parser.add_argument(
        "--rounds", type=int, default=1, help="measure again on the history left"
    )
    parser.add_argument(
        "--views",
        choices=["apart", "together"],
        default="apart",
        help="read models in a process of their own, or in the worker's loop",
    )
    args = parser.parse_args()
    args.subscriptions = args.subscriptions or args.events
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    print(
        f"{args.events} workflow events (BFEA DBAR/DUNB: bar + SMS each) on "
        f"{args.subscriptions} subscriptions, {os.cpu_count()} cores, "
        f"read models {args.views}"
    )
    # Every backend's files are deleted at the end only: deleting thousands
    # of files made creating the next backend's outbox files cost several
    # times the kernel time (ext4), and charged that to the next backend.
    with tempfile.TemporaryDirectory() as homes:
        for backend in backends:
            report(args, backend, Path(homes) / backend)


def report(args: argparse.Namespace, backend: str, home: Path) -> None:
    """Measure one backend with its files in ``home`` (made here) and print
    the figures."""
    apart = args.views == "apart"
    before_gauge = gauge()
    with database_url(backend, args.database_url) as url:
        home.mkdir()
        settings = settings_for(backend, home, url)
        subscriptions = prepare(settings, args.subscriptions)
        cpu: dict[str, float] = {}
        elapsed = run(
            settings,
            subscriptions,
            args.events,
            cpu,
            args.profile,
            views_apart=apart,
        )
        later = []
        for n in range(1, args.rounds):
            used: dict[str, float] = {}
            seconds = run(
                settings,
                subscriptions,
                args.events,
                used if args.cpu else None,
                done_before=n * args.events,
                views_apart=apart,
            )
            later.append((seconds, used))
        store = baseline(settings, args.events)
    rate = args.events / elapsed
    print(f"{backend:9} end to end: {rate:8.0f} workflow events/s ({elapsed:.2f} s)")
    print(
        f"{'':9} machine gauge: {before_gauge:.0f} ms before, {gauge():.0f} ms"
        " after (a fixed loop; lower is faster)"
    )
    print(
        f"{'':9} baseline:   {args.events * 8 / store:8.0f} bare events/s "
        f"saved 500 a save; the workflow stores ~8 events per workflow event "
        f"and a read-model row for each"
    )
    if args.cpu:
        print(f"{'':9} CPU ms per workflow event: {cpu_split(cpu, args.events)}")
    for n, (seconds, used) in enumerate(later, start=2):
        history = (n - 1) * args.events / args.subscriptions
        print(
            f"{'':9} round {n}: {args.events / seconds:8.0f} workflow events/s"
            f" ({seconds:.2f} s) after {history:.0f} a subscription"
        )
        if used:
            split = cpu_split(used, args.events)
            print(f"{'':9}   CPU ms per workflow event: {split}")


def gauge() -> float:
    """CPU milliseconds of a fixed piece of pure Python: this machine's speed
    at the moment (a shared VM's varies by half from minute to minute), to
    compare runs by."""
    started = time.process_time()
    total = 0
    for n in range(1_000_000):
        total += n * n
    return (time.process_time() - started) * 1000


def cpu_split(cpu: dict[str, float], events: int) -> str:
    """``name ms, …; total ms``; "its file writer" is shown in brackets
    after the worker, whose CPU includes it."""
    parts: list[str] = []
    for name, seconds in cpu.items():
        if name == "its file writer":
            parts[-1] += f" ({name} {seconds * 1000 / events:.2f})"
        else:
            parts.append(f"{name} {seconds * 1000 / events:.2f}")
    total = sum(s for name, s in cpu.items() if name != "its file writer")
    return f"{', '.join(parts)}; total {total * 1000 / events:.2f}"


if __name__ == "__main__":
    main()
