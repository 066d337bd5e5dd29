"""Wires the applications of monetise to the database the settings point at."""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING

from application.catalogue import CatalogueService
from application.channels import Channels
from application.clock import Clock, SystemClock
from application.customer_care import CustomerCare
from application.dispatcher import ActionDispatcher, Backoff
from application.live import LiveAggregates
from application.network import NetworkSimulator
from application.persistence import Database, database, schema_lock
from application.settings import Settings
from application.tariffs import TariffService

if TYPE_CHECKING:
    from application.rerating import Rerater
    from application.usage import UsageBatches, UsageLoader
    from projections.usage import UsageViews
    from projections.views import Views


class Platform:
    """The running set of applications for one database (built lazily)."""

    def __init__(self, settings: Settings, clock: Clock | None = None):
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.database: Database = database(settings)

    @cached_property
    def catalogue(self) -> CatalogueService:
        with schema_lock(self.database):
            return CatalogueService(env=self.env_for(CatalogueService.name))

    @cached_property
    def tariffs(self) -> TariffService:
        """The tariffs and rate plans that unrated usage is rated against."""
        with schema_lock(self.database):
            return TariffService(env=self.env_for(TariffService.name))

    @cached_property
    def care(self) -> CustomerCare:
        env = self.env_for(CustomerCare.name)
        env["AGGREGATE_CACHE_MAXSIZE"] = "20000"
        catalogue = self.catalogue
        with schema_lock(self.database):
            return CustomerCare(env, catalogue=catalogue, clock=self.clock)

    @cached_property
    def views(self) -> Views:
        from projections.views import Views  # read side: loaded when first asked

        care = self.care
        with schema_lock(self.database):
            return Views(care, self.database)

    @cached_property
    def network(self) -> NetworkSimulator:
        rules_file = self.settings.home / "network-simulator.yaml"
        rules = (
            NetworkSimulator.rules_from_file(rules_file) if rules_file.exists() else ()
        )
        with schema_lock(self.database):
            return NetworkSimulator(self.database, rules=rules)

    @cached_property
    def channels(self) -> Channels:
        return Channels(self.settings.home, self.settings.smtp_url)

    @cached_property
    def live(self) -> LiveAggregates:
        """The background worker's working copies (one worker thread only)."""
        return LiveAggregates(self.care)

    @cached_property
    def dispatcher(self) -> ActionDispatcher:
        return ActionDispatcher(
            self.care,
            self.live,
            self.views.actioned_items,
            self.views,
            self.views.catch_up,
            self.network,
            self.channels,
            self.clock,
            backoff=Backoff(base=timedelta(seconds=self.settings.retry_base_seconds)),
            network_timeout=timedelta(seconds=self.settings.network_timeout_seconds),
            recovery_grace=timedelta(seconds=self.settings.recovery_grace_seconds),
            catch_up_only=self.views.catch_up_only,
        )

    @cached_property
    def usage_batches(self) -> UsageBatches:
        from application.usage import UsageBatches

        env = self.env_for(UsageBatches.name)
        if self.database.backend == "postgres":
            from application.bulk_recorder import TOPIC

            env["APPLICATION_RECORDER_TOPIC"] = TOPIC
        # Big states compressed by the mapper, on both backends.
        from application.compression import TOPIC as COMPRESSOR

        env["COMPRESSOR_TOPIC"] = COMPRESSOR
        with schema_lock(self.database):
            batches = UsageBatches(env=env)
            if self.database.backend == "postgres":
                from application.bulk_recorder import store_states_as_given

                store_states_as_given(batches.recorder)
            return batches

    @cached_property
    def usage_views(self) -> UsageViews:
        from projections.usage import UsageViews

        batches = self.usage_batches
        with schema_lock(self.database):
            return UsageViews(batches, self.database)

    @cached_property
    def usage(self) -> UsageLoader:
        """The usage loader and rated-usage job."""
        from application.usage import UsageLoader
        from domain.usage_loading import HomeNetwork
        from ingest.keyring import KeyRing

        return UsageLoader(
            self.usage_batches,
            self.usage_views,
            self.care,
            self.views,
            self.catalogue,
            KeyRing.in_home(self.settings.home),
            HomeNetwork(self.settings.home_mcc, self.settings.home_mnc),
            lambda: self.tariffs,
            chunk_records=self.settings.usage_chunk_records,
        )

    @cached_property
    def rerater(self) -> Rerater:
        """Offline rerating of a usage class over a period."""
        from application.rerating import Rerater

        return Rerater(self.usage)

    def work(self, limit: int = 500) -> int:
        """One round of background work; returns how much was done."""
        dispatcher = self.dispatcher
        done = self.care.process_pending(limit, self.live, dispatcher.take_new_items)
        done += dispatcher.dispatch_due(limit)
        done += self.dispatcher.collect_responses(limit)
        return done

    def work_until_idle(self, max_rounds: int = 1000) -> int:
        """Work until nothing is left to do now (tests, seeding, the CLI)."""
        total = 0
        for _ in range(max_rounds):
            done = self.work()
            if not done:
                self.views.catch_up()
                return total
            total += done
        raise RuntimeError(f"still busy after {max_rounds} rounds")

    def env_for(self, name: str) -> dict[str, str]:
        env = self.database.eventsourcing_env(name)
        # Another process (API, worker) may have changed an aggregate since it
        # was cached; fast-forwarding reads those newer events before use.
        env["AGGREGATE_CACHE_MAXSIZE"] = "100"
        env["AGGREGATE_CACHE_FASTFORWARD"] = "y"
        return env

    def close(self) -> None:
        for name in (
            "usage_views",
            "usage_batches",
            "views",
            "network",
            "care",
            "tariffs",
            "catalogue",
        ):
            if name in self.__dict__:
                self.__dict__[name].close()
