"""``monetise`` commands for usage files: daemons, ingest, batches and usage."""

from __future__ import annotations

import getpass
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn
from uuid import UUID

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from api.stopping import stopped_by_signals
from application.platform import Platform
from application.settings import Settings
from application.usage import LoadResult, UnknownBatch
from domain.usage_batch import BatchNotReprocessable
from ingest.daemons import DAEMONS, daemon
from ingest.inbound import Handled, InboundDaemon
from projections.store import utc_text

Home = Annotated[Path | None, typer.Option(help="MONETISE_HOME for this run")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")]
Limit = Annotated[int, typer.Option(min=1, max=5000, help="At most this many rows")]

batches = typer.Typer(
    help="Usage batches: list, show, errors, reprocess.", no_args_is_help=True
)
usage = typer.Typer(help="The loaded usage of a subscription.", no_args_is_help=True)


Directory = StrEnum("Directory", ["rated", "unrated", "openet", "ocs"])
ErrorClass = StrEnum("ErrorClass", ["schema", "configuration", "duplicate"])
LOADERS = {"rated": "load-rated-usage", "unrated": "load-unrated-usage"}
PROGRESS = (
    TextColumn("{task.description}"),
    BarColumn(),
    TextColumn("{task.completed:,.0f} records"),
    TimeElapsedColumn(),
)


@contextmanager
def _platform(home: Path | None) -> Iterator[Platform]:
    platform = Platform(Settings(home=home) if home else Settings())
    try:
        yield platform
    except (UnknownBatch, BatchNotReprocessable, LookupError) as error:
        _refuse(f"Refused: {error}")
    finally:
        platform.close()


def _refuse(message: str, code: int = 2) -> NoReturn:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _print(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


def run_daemon(
    name: Annotated[str, typer.Argument(help=", ".join(DAEMONS))],
    home: Home = None,
) -> None:
    """Run one usage-file daemon in the foreground until Ctrl-C."""
    if name not in DAEMONS:
        _refuse(f"No daemon {name!r}; there are: {', '.join(DAEMONS)}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    # The file in hand is finished first; a second Ctrl-C interrupts it.
    with stopped_by_signals() as stop, _platform(home) as p:
        runner = daemon(name, p)
        typer.echo(f"{name}: watching {runner.inbound}; Ctrl-C stops it.")
        runner.run(stop)
    typer.echo(f"{name}: stopped.")


class _Ingest:
    """Loads files as their daemons would, with a progress bar per file."""

    def __init__(self, platform: Platform):
        self.platform = platform
        self.results: dict[str, LoadResult] = {}
        self.ok = True

    def loader(self, directory: str) -> InboundDaemon:
        """The loading daemon of ``directory`` (same folders), reporting progress."""

        def handler(path: Path) -> None:
            # On stderr, and gone before the file's report is printed.
            with Progress(
                *PROGRESS, console=Console(stderr=True), transient=True
            ) as bar:
                task = bar.add_task(path.name, total=None)
                self.results[path.name] = self.platform.usage.load_file(
                    path,
                    directory,
                    received_by="cli",
                    progress=lambda done: bar.update(task, completed=done),
                )

        home = self.platform.settings.home
        return InboundDaemon(LOADERS[directory], home, directory, handler)

    def file(self, path: Path, directory: str) -> None:
        try:
            if directory in LOADERS:
                self.report(self.loader(directory).handle_file(path))
                return
            transformer = daemon(f"transform-{directory}", self.platform)
            transformed = transformer.handle_file(path)
        except (ValueError, FileExistsError) as error:
            self.refuse(f"{path}: not taken: {error}")
            return
        self.report(transformed)
        if transformed.outcome != "archived":
            return
        for handled in self.loader("rated").scan_once():
            self.report(handled)

    def report(self, handled: Handled) -> None:
        where = handled.path.relative_to(self.platform.settings.home)
        result = self.results.pop(handled.name, None)
        if handled.outcome == "archived" and result is not None:
            counts = ", ".join(f"{k} {v}" for k, v in result.counts.items())
            typer.echo(f"{handled.name}: batch {result.batch_id} {result.status}")
            typer.echo(f"  {counts}")
        elif handled.outcome == "archived":
            typer.echo(f"{handled.name}: transformed; now {where}")
        elif handled.outcome == "quarantined":
            self.refuse(
                f"{handled.name}: refused ({handled.code}): {handled.reason}\n"
                f"  now {where}, the reason beside it in {where.name}.error.json"
            )
        else:
            self.refuse(
                f"{handled.name}: failed: {handled.reason}\n"
                f"  left in {where} for the daemon to retry"
            )

    def refuse(self, message: str) -> None:
        self.ok = False
        typer.secho(message, fg=typer.colors.RED, err=True)


def ingest(
    files: Annotated[
        list[Path],
        typer.Argument(exists=True, dir_okay=False, help="Usage files to load"),
    ],
    directory: Annotated[
        Directory, typer.Option(help="The inbound directory they belong to")
    ] = Directory.rated,
    home: Home = None,
) -> None:
    """Load usage files now, in the foreground, as their daemon would.

    Each file moves into processing/, then to archive/ or, if refused, to
    quarantine/ beside NAME.error.json. Exit code 1 if any file was refused.
    """
    # The daemon's own log lines would repeat the report below.
    quiet = logging.getLogger("monetise.inbound")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with _platform(home) as p:
            work = _Ingest(p)
            for path in files:
                work.file(path, directory.value)
    finally:
        quiet.setLevel(level)
    if not work.ok:
        raise typer.Exit(1)


@batches.command("list")
def list_batches(
    status: Annotated[str | None, typer.Option(help="e.g. completed, failed")] = None,
    kind: Annotated[str | None, typer.Option(help="rated or unrated")] = None,
    limit: Limit = 100,
    as_json: Json = False,
    home: Home = None,
) -> None:
    """Usage batches, newest first."""
    with _platform(home) as p:
        p.usage_views.catch_up()
        rows = p.usage_views.batches.batches(status, kind, limit, 0)
    if as_json:
        _print(rows)
        return
    for row in rows:
        counts = row["counts"]
        loaded = counts["loaded_postpaid"] + counts["loaded_prepaid"]
        rejected = sum(row["errors_by_class"].values())
        typer.echo(
            f"{row['id']}  {row['status']:<9} {row['kind']:<7} "
            f"{row['received_at'][:19]}  {row['file_name']}  records "
            f"{counts['records']}, loaded {loaded}, rejected {rejected}"
        )


@batches.command("show")
def show_batch(batch_id: UUID, home: Home = None) -> None:
    """A usage batch: counts, errors by class, failure."""
    with _platform(home) as p:
        p.usage_views.catch_up()
        found = p.usage_views.batches.batch(str(batch_id))
        if found is None:
            raise UnknownBatch(f"no usage batch {batch_id}")
    _print(found)


@batches.command("errors")
def batch_errors(
    batch_id: UUID,
    error_class: Annotated[
        ErrorClass | None, typer.Option("--class", help="Only this class")
    ] = None,
    limit: Limit = 1000,
    as_json: Json = False,
    home: Home = None,
) -> None:
    """The rejected records of a batch, in file order."""
    with _platform(home) as p:
        p.usage_views.catch_up()
        if p.usage_views.batches.batch(str(batch_id)) is None:
            raise UnknownBatch(f"no usage batch {batch_id}")
        rows = p.usage_views.batches.errors(
            str(batch_id), error_class and error_class.value, limit, 0
        )
    if as_json:
        _print(rows)
        return
    for row in rows:
        typer.echo(
            f"#{row['record_index']:<6} {row['record_id'] or '-':<16} "
            f"{row['error_class']:<13} {row['code']:<22} {row['path']}: "
            f"{row['message']}"
        )


@batches.command("reprocess")
def reprocess(
    batch_id: UUID,
    actor: Annotated[str, typer.Option(help="Who asks (audit)")] = (
        f"cli:{getpass.getuser()}"
    ),
    home: Home = None,
) -> None:
    """Re-run the records rejected for configuration errors, once fixed."""
    with _platform(home) as p:
        result = p.usage.reprocess(batch_id, requested_by=actor)
    typer.echo(f"batch {result.batch_id} {result.status}")
    typer.echo("  " + ", ".join(f"{k} {v}" for k, v in result.counts.items()))


def _time(text: str | None, option: str) -> datetime | None:
    from api.routes.usage import parse_instant  # not FastAPI for every command

    try:
        return None if text is None else parse_instant(text)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint=option) from None


def _show_usage(
    payment_type: str,
    subscription_id: UUID,
    start: str | None,
    end: str | None,
    limit: int,
    as_json: bool,
    home: Path | None,
) -> None:
    first, last = _time(start, "--from"), _time(end, "--to")
    if first is not None and last is not None and first >= last:
        raise typer.BadParameter("must be before --to", param_hint="--from")
    with _platform(home) as p:
        p.views.catch_up()
        if p.views.subscriptions.get(str(subscription_id)) is None:
            raise LookupError(f"no subscription {subscription_id}")
        p.usage_views.catch_up()
        period = utc_text(first), utc_text(last)
        rows, totals = p.usage_views.batches.usage(
            payment_type, str(subscription_id), *period, limit, 0
        )
    if as_json:
        page = dict(subscription_id=subscription_id, usage=rows, totals=totals)
        _print({"from": period[0], "to": period[1], **page})
        return
    typer.echo(
        f"{'usage date (UTC)':<20} {'record':<16} {'class':<10} dir {'quantity':>12} "
        f"{'charge':>10} {'discount':>10} {'net':>10}"
    )
    for row in rows:
        quantity = (
            f"{row['duration_seconds']} s"
            if row["duration_seconds"] is not None
            else f"{row['volume_bytes']} B"
            if row["volume_bytes"] is not None
            else f"{row['units'] or 0} units"
        )
        typer.echo(
            f"{row['usage_date'][:19]:<20} {row['id']:<16} {row['usage_class']:<10} "
            f"{row['direction']:<3} {quantity:>12} {row['charge'] or '':>10} "
            f"{row['discount'] or '':>10} {row['net'] or '':>10}"
        )
    typer.echo(
        f"{totals['records']} record(s); charge {totals['charge']}, discount "
        f"{totals['discount']}, net {totals['net']} {totals['currency'] or ''}".rstrip()
    )


From = Annotated[str | None, typer.Option("--from", help="RFC 3339, inclusive")]
To = Annotated[str | None, typer.Option("--to", help="RFC 3339, exclusive")]


def _usage_command(payment_type: str, name: str, what: str) -> None:
    def command(
        subscription_id: UUID,
        start: From = None,
        end: To = None,
        limit: Limit = 1000,
        as_json: Json = False,
        home: Home = None,
    ) -> None:
        _show_usage(payment_type, subscription_id, start, end, limit, as_json, home)

    command.__doc__ = f"{what} of a subscription in [from, to), oldest first."
    usage.command(name)(command)


_usage_command("postpaid", "rated", "Postpaid rated usage")
_usage_command("prepaid", "prepaid", "Prepaid usage")


def register(app: typer.Typer) -> None:
    app.command("daemon")(run_daemon)
    app.command("ingest")(ingest)
    app.add_typer(batches, name="batches")
    app.add_typer(usage, name="usage")
