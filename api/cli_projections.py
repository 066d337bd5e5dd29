"""``monetise projections status|rebuild|follow``: the read models, their
positions, rebuilding them, and keeping them up to date in a process of their
own.

Two facades hold the read models: the care views (``platform.views``, built
from the customer-care events) and the usage views (``platform.usage_views``,
built from the usage batches). Both are listed and rebuilt here as one set;
a projection is named with its version (``subscriptions_v1``) or without it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from eventsourcing.application import Application
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from api.stopping import stopped_by_signals
from application.platform import Platform
from application.settings import Settings
from application.worker import ViewsFollower
from projections.runner import ProjectionRunner, catch_up_together

Home = Annotated[Path | None, typer.Option(help="MONETISE_HOME for this run")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")]

projections_app = typer.Typer(
    help="The read models: their positions, and rebuilding them from the events.",
    no_args_is_help=True,
)
PROGRESS = (
    TextColumn("{task.description}"),
    BarColumn(),
    TextColumn("{task.completed:,.0f} of {task.total:,.0f} notifications"),
    TimeElapsedColumn(),
)
POLL_SECONDS = 0.2


@dataclass
class _Facade:
    """One application's read models as this module sees them."""

    label: str  # "care" or "usage", shown in the status table
    app: Application[Any]
    runners: dict[str, ProjectionRunner]
    catch_up: Callable[[], int]  # every view of the facade, its own batch size


@contextmanager
def _platform(home: Path | None) -> Iterator[Platform]:
    platform = Platform(Settings(home=home) if home else Settings())
    try:
        yield platform
    finally:
        platform.close()


def _facades(platform: Platform) -> list[_Facade]:
    views, usage = platform.views, platform.usage_views
    return [
        _Facade("care", views.app, views.runners, views.catch_up),
        _Facade("usage", usage.app, usage.runners, usage.catch_up),
    ]


def _refuse(message: str, code: int = 2) -> NoReturn:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _named(name: str, full_name: str) -> bool:
    """Whether ``name`` names the projection ``full_name`` (version optional).

    The rule of ``Views.runner``, applied to the usage views as well.
    """
    return name in (full_name, full_name.rsplit("_v", 1)[0])


def _chosen(facade: _Facade, name: str | None) -> list[ProjectionRunner]:
    """The runners of ``facade`` named ``name``, or all of them for None."""
    return [
        runner
        for full_name, runner in facade.runners.items()
        if name is None or _named(name, full_name)
    ]


@projections_app.command("status")
def status(as_json: Json = False, home: Home = None) -> None:
    """Every projection: its position, the log's end, the lag, up to date or not."""
    rows: list[dict[str, Any]] = []
    with _platform(home) as platform:
        for facade in _facades(platform):
            for runner in facade.runners.values():
                rows.append({"application": facade.label, **runner.status()})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    width = max(len("projection"), *(len(row["projection"]) for row in rows))
    typer.echo(
        f"{'projection':<{width}}  {'app':<5}  {'position':>10}  "
        f"{'max id':>10}  {'lag':>8}  up to date"
    )
    for row in rows:
        typer.echo(
            f"{row['projection']:<{width}}  {row['application']:<5}  "
            f"{row['position']:>10}  {row['max_notification_id']:>10}  "
            f"{row['lag']:>8}  {'yes' if row['up_to_date'] else 'NO'}"
        )


@projections_app.command("rebuild")
def rebuild(
    name: Annotated[
        str | None,
        typer.Argument(help="Projection, with or without its version (_v1)"),
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Rebuild every projection")] = (
        False
    ),
    home: Home = None,
) -> None:
    """Drop a projection's tables (or every one's) and replay the events into them."""
    if (name is None) == (not all_):
        _refuse("Give a projection NAME or --all (not both).")
    with _platform(home) as platform:
        facades = _facades(platform)
        chosen = [
            (facade, runners)
            for facade in facades
            if (runners := _chosen(facade, None if all_ else name))
        ]
        if not chosen:
            names = [n for facade in facades for n in facade.runners]
            _refuse(f"No projection {name!r}; there are: {', '.join(names)}")
        started = time.perf_counter()
        total = 0
        for facade, runners in chosen:
            began = time.perf_counter()
            applied = _rebuild(facade, runners)
            total += applied
            typer.echo(
                f"{', '.join(r.name for r in runners)}: {applied:,} event(s) "
                f"applied in {time.perf_counter() - began:.2f} s"
            )
        count = sum(len(runners) for _, runners in chosen)
        typer.echo(
            f"Rebuilt {count} projection(s): {total:,} event(s) applied in "
            f"{time.perf_counter() - started:.2f} s"
        )


def _rebuild(facade: _Facade, runners: list[ProjectionRunner]) -> int:
    """Rebuild ``runners`` of one facade with a progress bar; events applied.

    What ``Views.rebuild`` does, in two steps so that the bar starts from
    zero: reset every view (empty tables, position 0), then catch them up
    together, reading and decoding each event once for all of them. The
    catch-up runs in a worker thread while this one follows the stored
    positions (committed with each chunk of rows) up to the log's end.
    """
    last = facade.app.recorder.max_notification_id() or 0
    for runner in runners:
        runner.reset()
    if len(runners) == len(facade.runners):
        catch_up = facade.catch_up
    else:

        def catch_up() -> int:
            return catch_up_together(facade.app, runners)

    label = f"rebuilding {facade.label} views"
    console = Console(stderr=True)
    # On a terminal the bar goes once done; in a log its last state stays.
    transient = console.is_terminal
    with (
        ThreadPoolExecutor(1, thread_name_prefix="rebuild") as pool,
        Progress(*PROGRESS, console=console, transient=transient) as bar,
    ):
        task = bar.add_task(label, total=last)
        future = pool.submit(catch_up)
        while True:
            try:
                applied = future.result(timeout=POLL_SECONDS)
            except TimeoutError:
                done = max(runner.position() for runner in runners)
                bar.update(task, completed=min(done, last))
                continue
            bar.update(task, completed=last)
            return applied


@projections_app.command("follow")
def follow(home: Home = None) -> None:
    """Keep every read model up to date until stopped, beside a
    `monetise worker --no-views` that leaves them to this process."""
    # Ctrl-C lets the round in hand finish; a second one interrupts it.
    with stopped_by_signals() as stop, _platform(home) as platform:
        follower = ViewsFollower(platform, stopping=stop)
        typer.echo(
            f"Following the read models (database: {platform.database.backend});"
            " Ctrl-C stops it."
        )
        try:
            follower.run()
        except KeyboardInterrupt:
            typer.echo("Interrupted.")
            return
    typer.echo("Stopped following the read models.")


def register(app: typer.Typer) -> None:
    app.add_typer(projections_app, name="projections")
