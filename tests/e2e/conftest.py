"""Fixtures of the end-to-end tests beyond those every test shares."""

from __future__ import annotations

import pytest

from application.settings import Settings


@pytest.fixture
def retry_at_once(settings: Settings) -> Settings:
    """Failed actions are retried at once rather than after 30 s, 60 s, 120 s…

    Ask for it before ``api`` or ``platform``: the platform reads the setting
    when it is built.
    """
    settings.retry_base_seconds = 0
    return settings
