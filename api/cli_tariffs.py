"""``monetise tariffs import|export|list`` and ``monetise price``."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import yaml

from application.platform import Platform
from application.settings import Settings
from application.tariffs import (
    TariffService,
    TariffsRejected,
    UnknownTariff,
    price,
    read_document,
)
from domain.rating.errors import RatingError
from domain.rating.rated import Rated, Usage

Home = Annotated[Path | None, typer.Option(help="MONETISE_HOME for this run")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")]

tariffs_app = typer.Typer(
    help="Import, export and list the tariffs.", no_args_is_help=True
)
UNITS = {"voice": "s", "data": "B", "event": "units"}


def demo_tariffs() -> Any:
    """The demo tariffs shipped with monetise (for the demo catalogue)."""
    text = (
        resources.files("application.demo")
        .joinpath("tariffs.yaml")
        .read_text(encoding="utf-8")
    )
    return yaml.safe_load(text)


def _settings(home: Path | None) -> Settings:
    return Settings(home=home) if home else Settings()


@contextmanager
def _tariffs(home: Path | None) -> Iterator[TariffService]:
    """The tariff service for one command; the database closed after it."""
    platform = Platform(_settings(home))
    try:
        yield platform.tariffs
    finally:
        platform.close()


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _load(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        _fail(f"cannot read {path}: {error.strerror}")
    try:
        return yaml.safe_load(text)  # YAML is a superset of JSON
    except yaml.YAMLError as error:
        _fail(f"{path} is neither YAML nor JSON: {error}")


def _refused(error: TariffsRejected) -> NoReturn:
    lines = [f"Refused: {len(error.problems)} problem(s); nothing was applied."]
    lines += [f"  {p.path or '(document)'}: {p.message}" for p in error.problems]
    _fail("\n".join(lines))


@tariffs_app.command("import")
def import_tariffs(
    file: Annotated[Path, typer.Argument(help="Tariff document (YAML or JSON)")],
    actor: Annotated[str | None, typer.Option(help="Who makes the change")] = None,
    home: Home = None,
) -> None:
    """Import a tariff document, all or nothing (a repeat records nothing)."""
    document = _load(file)
    with _tariffs(home) as tariffs:
        try:
            counts = tariffs.import_document(
                document, actor or f"cli:{getpass.getuser()}"
            )
        except TariffsRejected as error:
            _refused(error)
    typer.echo(
        ", ".join(f"{v} {k}" for k, v in counts.items() if k != "events")
        + f" ({counts['events']} event(s) recorded)"
    )


@tariffs_app.command("export")
def export_tariffs(
    format: Annotated[str, typer.Option(help="yaml or json")] = "yaml",
    output: Annotated[Path | None, typer.Option(help="Write to this file")] = None,
    home: Home = None,
) -> None:
    """Print every tariff version and rate plan as one document."""
    if format not in ("yaml", "json"):
        raise typer.BadParameter("yaml or json", param_hint="--format")
    with _tariffs(home) as tariffs:
        document = tariffs.export()
    text = (
        json.dumps(document, indent=2) + "\n"
        if format == "json"
        else yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    )
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


@tariffs_app.command("list")
def list_tariffs(as_json: Json = False, home: Home = None) -> None:
    """Every tariff version: code, effective from, currency, rate plans."""
    with _tariffs(home) as tariffs:
        rows = tariffs.list_versions()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(f"{'tariff':<12} {'effective from':<22} {'currency':<8} rate plans")
    for row in rows:
        typer.echo(
            f"{row['code']:<12} {row['effective_from'] or '(always)':<22} "
            f"{row['currency']:<8} {', '.join(row['rate_plans']) or '-'}"
        )


def _instant(text: str | None) -> datetime:
    from api.routes.usage import parse_instant  # not FastAPI for every command

    if text is None:
        return datetime.now(UTC)
    try:
        return parse_instant(text)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--start") from None


def price_usage(
    tariff: Annotated[str, typer.Option(help="Tariff code, e.g. STD")],
    usage_class: Annotated[str, typer.Option(help="e.g. VOICE_NAT, DATA_NAT")],
    destination: Annotated[
        str | None, typer.Option(help="Called number, e.g. 441632960000")
    ] = None,
    start: Annotated[
        str | None, typer.Option(help="RFC 3339 with an offset; default: now")
    ] = None,
    duration: Annotated[int | None, typer.Option(min=0, help="Seconds")] = None,
    volume: Annotated[int | None, typer.Option(min=0, help="Bytes")] = None,
    units: Annotated[int | None, typer.Option(min=0, help="Units (SMS…)")] = None,
    mcc: Annotated[str | None, typer.Option(help="Serving network MCC")] = None,
    mnc: Annotated[str | None, typer.Option(help="Serving network MNC")] = None,
    tariff_file: Annotated[
        Path | None,
        typer.Option(help="Price with this document instead, without importing it"),
    ] = None,
    as_json: Json = False,
    home: Home = None,
) -> None:
    """What a usage costs with a tariff, and why; nothing is recorded.

    Prices with the stored version of the tariff in force at --start, or,
    with --tariff-file, with that document (what-if pricing). Exit code 2 for
    a usage that cannot be rated (no tariff, destination, zone or rate).
    """
    given = [q for q in (duration, volume, units) if q is not None]
    if len(given) != 1:
        raise typer.BadParameter(
            "give exactly one of --duration, --volume or --units",
            param_hint="--duration",
        )
    settings = _settings(home)
    usage = Usage(
        usage_class=usage_class,
        start=_instant(start),
        duration_seconds=duration,
        volume_bytes=volume,
        units=units,
        called_number=destination,
        mcc=mcc,
        mnc=mnc,
        home_mcc=settings.home_mcc,
        home_mnc=settings.home_mnc,
    )
    try:
        if tariff_file is not None:
            rated = price(read_document(_load(tariff_file)), tariff, usage)
        else:
            with _tariffs(home) as tariffs:
                rated = tariffs.quote(tariff, usage)
    except TariffsRejected as error:
        _refused(error)
    except UnknownTariff as error:
        _fail(f"no_tariff: {error}")
    except RatingError as error:
        _fail(f"{error.code}: {error.message}")
    if as_json:
        typer.echo(json.dumps(rated.as_dict(), indent=2))
    else:
        _show(rated)


def _show(rated: Rated) -> None:
    """The charge and a readable breakdown, part by part."""
    shown = rated.as_dict()
    unit = UNITS[rated.kind]
    where = f"roaming in zone {rated.zone}" if rated.zone else "home network"
    to = rated.destination or "-"
    if rated.prefix:
        to += f" (prefix {rated.prefix})"
    typer.echo(
        f"{rated.tariff} {rated.usage_class}: {rated.quantity} {unit} "
        f"from {shown['start']}, destination {to}, {where}"
    )
    typer.echo(
        f"  {'#':>2}  {'from':>10} {'to':>10}  {'clock':<8} {'band':<6} "
        f"{'rate':>4} {'slab':>4} {'billed':>14}  {'price / per':<22} {'cost':>10}"
    )
    for number, part in enumerate(shown["breakdown"], 1):
        clock = part["start"][11:19] if "start" in part else ""
        typer.echo(
            f"  {number:>2}  {part['from']:>10} {part['to']:>10}  {clock:<8} "
            f"{part['band']:<6} {part['rate']:>4} {part['slab']:>4} "
            f"{str(part['billed']) + ' ' + unit:>14}  "
            f"{part['price'] + ' / ' + str(part['per']) + ' ' + unit:<22} "
            f"{part['cost']:>10}"
        )
    rounding = shown["rounding"]
    rule = (
        f"rounded {rounding['method']} to {rounding['decimals']} decimals"
        if rounding["decimals"]
        else "not rounded"
    )
    if rated.capped:
        rule += f", capped at {shown['max_cost']}"
    typer.echo(
        f"connect fee {shown['connect_fee']}; subtotal {shown['subtotal']}, {rule}"
    )
    for use in shown["allowances"]:
        typer.echo(f"free: {use['units']} {unit} of {use['code']} ({use['left']} left)")
    typer.echo(
        f"charge {shown['charge']} {rated.currency}, discount {shown['discount']}, "
        f"net {shown['net']} {rated.currency}"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(tariffs_app, name="tariffs")
    app.command("price")(price_usage)
