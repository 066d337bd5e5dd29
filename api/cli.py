"""The ``monetise`` command line."""

from __future__ import annotations

import getpass
import json
import sys
import threading
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from api import (
    cli_bills,
    cli_care,
    cli_projections,
    cli_rerating,
    cli_tariffs,
    cli_usage,
)
from api.keys import KeyFileError, KeyRing, write_new_key_file
from api.stopping import stopped_by_signals
from application.catalogue import CatalogueService, ItemNotFound, UnknownKind
from application.demo import seed as seeding
from application.platform import Platform
from application.settings import Settings
from application.worker import Worker
from domain.catalogue.fields import CatalogueRejected
from ingest import daemons

app = typer.Typer(
    help="monetise: event-sourced customer care and billing.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
catalogue_app = typer.Typer(
    help="Import, export and inspect the catalogue.", no_args_is_help=True
)
app.add_typer(catalogue_app, name="catalogue")
cli_care.register(app)
cli_usage.register(app)
cli_tariffs.register(app)
cli_bills.register(app)
cli_projections.register(app)
cli_rerating.register(app)

Home = Annotated[Path | None, typer.Option(help="MONETISE_HOME for this run")]
Actor = Annotated[str | None, typer.Option(help="Who makes the change (audit)")]


def _settings(home: Path | None = None) -> Settings:
    return Settings(home=home) if home else Settings()


def _actor(actor: str | None) -> str:
    return actor or f"cli:{getpass.getuser()}"


def demo_catalogue() -> Any:
    """The demo catalogue shipped with monetise."""
    text = (
        resources.files("application.demo")
        .joinpath("catalogue.yaml")
        .read_text(encoding="utf-8")
    )
    return yaml.safe_load(text)


def _load_document(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        _fail(f"cannot read {path}: {error.strerror}")
    try:
        # YAML is a superset of JSON: one reader serves both.
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        _fail(f"{path} is neither YAML nor JSON: {error}")


def _fail(message: str, code: int = 2) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _report_rejection(error: CatalogueRejected) -> None:
    typer.secho(
        f"Refused: {len(error.problems)} problem(s); nothing was applied.",
        fg=typer.colors.RED,
        err=True,
    )
    for problem in error.problems:
        typer.echo(f"  {problem.path or '(document)'}: {problem.message}", err=True)
    raise typer.Exit(2)


def _keys(settings: Settings, *, create: bool) -> KeyRing:
    path = settings.api_keys_file
    if not path.exists() and create:
        keys = write_new_key_file(path)
        typer.echo(f"Created API keys in {path}:")
        for role, key in keys.items():
            typer.echo(f"  {role:8} {key}")
    try:
        return KeyRing.from_file(path)
    except KeyFileError as error:
        _fail(f"{error}. Set MONETISE_API_KEYS or run 'monetise up' once.")
        raise


def _serve(settings: Settings, platform: Platform, keys: KeyRing) -> None:
    import uvicorn

    from api.app import create_app

    uvicorn.run(
        create_app(platform, keys),
        host=settings.host,
        port=settings.port,
        log_level="info",
    )


@app.command()
def up(
    home: Home = None,
    port: Annotated[int | None, typer.Option(help="HTTP port")] = None,
    demo: Annotated[bool, typer.Option(help="Import the demo catalogue")] = True,
) -> None:
    """Start the whole platform on this machine (SQLite under ./var by default)."""
    settings = _settings(home)
    if port:
        settings.port = port
    settings.home.mkdir(parents=True, exist_ok=True)
    keys = _keys(settings, create=True)
    if demo:
        seeding.write_simulator_rules(settings.home)
    platform = Platform(settings)
    if demo:
        counts = platform.catalogue.import_document(demo_catalogue(), "demo")
        typer.echo(f"Demo catalogue: {counts['events']} change(s) recorded.")
        counts = platform.tariffs.import_document(cli_tariffs.demo_tariffs(), "demo")
        typer.echo(f"Demo tariffs: {counts['events']} change(s) recorded.")
        if seeding.seed(platform):
            typer.echo("Demo customers, subscriptions and workflow events created.")
    background = Worker(platform)
    background.start()
    stop_daemons = threading.Event()
    daemons.run_all(platform, stop_daemons)
    typer.echo(
        f"Daemons watching {settings.home / 'inbound'}: {', '.join(daemons.DAEMONS)}"
    )
    typer.echo(
        f"API on http://{settings.host}:{settings.port} "
        f"(database: {platform.database.backend}, home: {settings.home})"
    )
    try:
        _serve(settings, platform, keys)
    finally:
        stop_daemons.set()
        background.stop()
        platform.close()


@app.command()
def worker(
    home: Home = None,
    views: Annotated[
        bool,
        typer.Option(
            help="Keep the read models up to date here too; --no-views leaves "
            "them to `monetise projections follow` in another process (on "
            "PostgreSQL the two keep two cores busy)."
        ),
    ] = True,
) -> None:
    """Run the background work alone: workflow processor, read models, dispatcher."""
    settings = _settings(home)
    # Ctrl-C lets the round in hand finish, and the messages being written
    # be recorded (even while the platform is still being set up); a second
    # Ctrl-C interrupts them.
    with stopped_by_signals() as stop:
        platform = Platform(settings)
        try:
            background = Worker(platform, views=views, stopping=stop)
            apart = "" if views else "; read models left to `projections follow`"
            typer.echo(
                f"Worker running (database: {platform.database.backend}{apart});"
                " Ctrl-C stops it."
            )
            background.run()
        except KeyboardInterrupt:
            typer.echo("Worker interrupted.")
            return
        finally:
            platform.close()
    typer.echo("Worker stopped.")


@app.command()
def serve(
    home: Home = None,
    host: Annotated[str | None, typer.Option(help="Interface to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port")] = None,
) -> None:
    """Serve the HTTP API only."""
    settings = _settings(home)
    if host:
        settings.host = host
    if port:
        settings.port = port
    _serve(settings, Platform(settings), _keys(settings, create=False))


keys_app = typer.Typer(
    help="Keys for encrypted usage files (*.enc).", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")


@keys_app.command("generate")
def keys_generate(
    key_id: Annotated[str, typer.Argument(help="Key id, e.g. ocs1-2026-11")],
    home: Home = None,
) -> None:
    """Add a key pair to the key ring; give the .pub file to the sender."""
    from ingest.keyring import KeyRing as FileKeyRing
    from ingest.keyring import KeyRingError

    ring = FileKeyRing.in_home(_settings(home).home)
    try:
        private, public = ring.generate(key_id)
    except KeyRingError as error:
        _fail(str(error))
        raise
    typer.echo(f"Private key: {private} (keep it here)")
    typer.echo(f"Public key:  {public} (give it to the sender)")


@app.command()
def encrypt(
    file: Annotated[Path, typer.Argument(help="The file to encrypt")],
    key_id: Annotated[str, typer.Option(help="Key id in the recipient's key ring")],
    public_key: Annotated[
        Path | None, typer.Option(help="The recipient's .pub file")
    ] = None,
    output: Annotated[Path | None, typer.Option(help="Default: FILE.enc")] = None,
    home: Home = None,
) -> None:
    """Encrypt a file for monetise with only its public key (senders, tests)."""
    from ingest.envelope import EnvelopeError
    from ingest.keyring import KeyRing as FileKeyRing
    from ingest.keyring import KeyRingError, encrypt_file

    ring = FileKeyRing.in_home(_settings(home).home)
    target = output or file.with_name(file.name + ".enc")
    try:
        key = public_key or ring.public_key(key_id)
        encrypt_file(file, target, key, key_id)
    except (KeyRingError, EnvelopeError, OSError) as error:
        _fail(str(error))
    typer.echo(str(target))


@catalogue_app.command("import")
def catalogue_import(
    file: Annotated[Path, typer.Argument(help="Catalogue document (YAML or JSON)")],
    prune: Annotated[
        bool, typer.Option(help="Deactivate items missing from the document")
    ] = False,
    actor: Actor = None,
    home: Home = None,
) -> None:
    """Import a catalogue document, all or nothing (a repeat records nothing)."""
    document = _load_document(file)
    with _catalogue(home) as catalogue:
        try:
            counts = catalogue.import_document(document, _actor(actor), prune=prune)
        except CatalogueRejected as error:
            _report_rejection(error)
    typer.echo(
        ", ".join(f"{v} {k}" for k, v in counts.items() if k != "events")
        + f" ({counts['events']} event(s) recorded)"
    )


@catalogue_app.command("export")
def catalogue_export(
    format: Annotated[str, typer.Option(help="yaml or json")] = "yaml",
    output: Annotated[Path | None, typer.Option(help="Write to this file")] = None,
    home: Home = None,
) -> None:
    """Print the whole catalogue as one document."""
    with _catalogue(home) as catalogue:
        document = catalogue.export_document()
    text = (
        json.dumps(document, indent=2) + "\n"
        if format == "json"
        else yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    )
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


@catalogue_app.command("history")
def catalogue_history(
    kind: Annotated[str, typer.Argument(help="e.g. action-codes, event-codes")],
    code: Annotated[
        list[str], typer.Argument(help="the code (event codes: TYPE CODE)")
    ],
    home: Home = None,
) -> None:
    """Every change of one item: version, time, actor, what changed."""
    with _catalogue(home) as catalogue:
        try:
            changes = catalogue.history(kind, " ".join(code))
        except (ItemNotFound, UnknownKind) as error:
            _fail(str(error))
    for change in changes:
        what = ", ".join(change.get("fields", [])) or change.get("reason", "")
        typer.echo(
            f"v{change['version']:<5} {change['at']}  {change['actor']:<16} "
            f"{change['change']:<12} {what}"
        )


class _catalogue:
    """Opens the catalogue for one command and closes the database after it."""

    def __init__(self, home: Path | None):
        self.platform = Platform(_settings(home))

    def __enter__(self) -> CatalogueService:
        return self.platform.catalogue

    def __exit__(self, *_: object) -> None:
        self.platform.close()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
