"""Wires the applications of monetise to the database the settings point at."""

from __future__ import annotations

from functools import cached_property

from application.catalogue import CatalogueService
from application.persistence import Database, database
from application.settings import Settings


class Platform:
    """The running set of applications for one database (built lazily)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.database: Database = database(settings)

    @cached_property
    def catalogue(self) -> CatalogueService:
        return CatalogueService(env=self.env_for(CatalogueService.name))

    def env_for(self, name: str) -> dict[str, str]:
        env = self.database.eventsourcing_env(name)
        # Another process (API, worker) may have changed an aggregate since it
        # was cached; fast-forwarding reads those newer events before use.
        env["AGGREGATE_CACHE_MAXSIZE"] = "100"
        env["AGGREGATE_CACHE_FASTFORWARD"] = "y"
        return env

    def close(self) -> None:
        if "catalogue" in self.__dict__:
            self.catalogue.close()
