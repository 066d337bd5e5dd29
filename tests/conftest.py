"""Fixtures shared by every test: real servers and the two storage backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from api.app import create_app
from api.keys import KeyRing
from application.platform import Platform
from application.settings import Settings
from tests.harness.kafka import kafka_broker  # noqa: F401  (fixture)
from tests.harness.postgres import PostgresServer, postgres_server
from tests.harness.smtp import smtp_server  # noqa: F401  (fixture)

BACKENDS = ["sqlite", "postgres"]

# Property tests check behaviour, not speed: on a busy 2-core CI machine the
# generation of a large input can be slow, and that is no failure.
settings.register_profile(
    "monetise", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("monetise")

KEYS = {
    "admin": "test-admin-key",
    "agent": "test-agent-key",
    "auditor": "test-auditor-key",
    "ingest": "test-ingest-key",
}


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the whole session."""
    with postgres_server() as server:
        yield server


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Runs the test once on SQLite and once on PostgreSQL (see the test id)."""
    return str(request.param)


@pytest.fixture
def settings(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Settings]:
    """Settings for a fresh, empty database of the backend under test."""
    home = tmp_path / "home"
    if backend == "sqlite":
        yield Settings(home=home)
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    url = server.create_database()
    yield Settings(home=home, database_url=url)
    server.drop_database(url)


@pytest.fixture
def platform(settings: Settings) -> Iterator[Platform]:
    platform = Platform(settings)
    yield platform
    platform.close()


@pytest.fixture
def keys() -> KeyRing:
    return KeyRing.parse(
        "\n".join(f"{key} {role} {role}-user" for role, key in KEYS.items())
    )


@pytest.fixture
def api(platform: Platform, keys: KeyRing) -> Iterator[TestClient]:
    """The HTTP API over the platform, with the caller's key left to each test."""
    with TestClient(create_app(platform, keys)) as client:
        yield client


def auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[role]}"}
