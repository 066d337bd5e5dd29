"""``monetise rerate``: price usage of one class again with today's tariffs."""

from __future__ import annotations

import getpass
import json
from typing import Annotated

import typer
from rich.progress import Progress

from api.cli_usage import PROGRESS, Home, _time
from application.platform import Platform
from application.settings import Settings


def rerate(
    usage_class: Annotated[str, typer.Option("--usage-class", help="e.g. VOICE_NAT")],
    start: Annotated[
        str | None, typer.Option("--from", help="RFC 3339; default: all time")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="RFC 3339, exclusive")] = None,
    actor: Annotated[str | None, typer.Option(help="Who asks (audit)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    home: Home = None,
) -> None:
    """Rerun the pricing of a usage class over a period (all time by default);
    each changed charge is recorded with old charge, new charge and delta."""
    first, last = _time(start, "--from"), _time(end, "--to")
    if first is not None and last is not None and first >= last:
        raise typer.BadParameter("must be before --to", param_hint="--from")
    platform = Platform(Settings(home=home) if home else Settings())
    try:
        with Progress(*PROGRESS, transient=True) as bar:
            task = bar.add_task(f"Rerating {usage_class}", total=None)
            result = platform.rerater.rerate(
                usage_class,
                first,
                last,
                actor or getpass.getuser(),
                progress=lambda done: bar.update(task, completed=done),
            )
    finally:
        platform.close()
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    typer.echo(
        f"Rerating run {result['id']}: {result['selected']} record(s) selected, "
        f"{result['changed']} changed, {result['unchanged']} unchanged, "
        f"{result['refused']} refused."
    )


def register(app: typer.Typer) -> None:
    app.command("rerate")(rerate)


__all__ = ["register"]
