"""A real PostgreSQL server for the test session, on a free loopback port.

``initdb`` refuses to run as root, so when the tests run as root the server is
initialised and run as the ``postgres`` OS user in a directory it owns.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.harness.ports import free_port

PG_BIN_CANDIDATES = [
    Path(os.environ.get("MONETISE_PG_BIN", "")),
    *sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True),
]
USER = "monetise"
PASSWORD = "monetise"


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int

    def url(self, dbname: str) -> str:
        return f"postgresql://{USER}:{PASSWORD}@{self.host}:{self.port}/{dbname}"

    def create_database(self) -> str:
        """A fresh, empty database; returns its URL."""
        name = "t_" + uuid.uuid4().hex[:16]
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _pg_bin() -> Path:
    for candidate in PG_BIN_CANDIDATES:
        if str(candidate) not in ("", ".") and (candidate / "initdb").exists():
            return candidate
    raise RuntimeError(
        "PostgreSQL server binaries not found (looked in /usr/lib/postgresql/*/bin); "
        "install them with: apt-get install -y postgresql"
    )


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start PostgreSQL in a temporary directory; stop and remove it afterwards."""
    bin_dir = _pg_bin()
    root = Path(tempfile.mkdtemp(prefix="monetise-pg-"))
    data, sockets, log = root / "data", root / "sockets", root / "server.log"
    sockets.mkdir()
    as_root = os.geteuid() == 0
    run_as: list[str] = ["runuser", "-u", "postgres", "--"] if as_root else []
    if as_root:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    password_file = root / "password"
    password_file.write_text(PASSWORD)
    if as_root:
        shutil.chown(password_file, "postgres")
    subprocess.run(
        [
            *run_as,
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            USER,
            "--pwfile",
            str(password_file),
            "-A",
            "scram-sha-256",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    options = (
        f"-p {port} -c listen_addresses=127.0.0.1 -k {sockets} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
        "-c max_connections=300"
    )
    subprocess.run(
        [
            *run_as,
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(log),
            "-w",
            "-t",
            "60",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    server = PostgresServer("127.0.0.1", port)
    try:
        _wait_until_ready(server, log)
        yield server
    finally:
        subprocess.run(
            [
                *run_as,
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def _wait_until_ready(server: PostgresServer, log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(server.url("postgres"), connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                tail = log.read_text()[-2000:] if log.exists() else ""
                raise RuntimeError(f"PostgreSQL did not start:\n{tail}") from None
            time.sleep(0.2)
