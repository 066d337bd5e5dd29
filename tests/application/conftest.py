"""Fixtures of the application tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from application.settings import Settings
from tests.application.workflow_fixtures import Operator, operator_for


@pytest.fixture
def operator(settings: Settings) -> Iterator[Operator]:
    """The platform with the demo catalogue and a manual clock; retries a minute
    apart at first, then doubling."""
    settings.retry_base_seconds = 60
    yield from operator_for(settings)
