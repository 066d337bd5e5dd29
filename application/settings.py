"""The one place where monetise reads its configuration (prefix ``MONETISE_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Operator-facing settings; every field maps to ``MONETISE_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="MONETISE_", extra="ignore")

    home: Path = Field(
        default=Path("./var"),
        description="Directory for the embedded database, inbound files and outbox.",
    )
    database_url: str | None = Field(
        default=None,
        description=(
            "sqlite:///PATH or postgresql://user:pass@host:port/db; "
            "default: SQLite under MONETISE_HOME."
        ),
    )
    api_keys: Path | None = Field(
        default=None,
        description="File of API keys and roles; default: $MONETISE_HOME/api-keys.",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    smtp_url: str | None = Field(
        default=None, description="smtp://host:port for e-mail; else the outbox."
    )
    kafka_bootstrap: str | None = None
    network_timeout_seconds: float = Field(
        default=600.0,
        description="A network request unanswered this long is failed and retried.",
    )
    recovery_grace_seconds: float = Field(
        default=60.0,
        description="A message left 'sent' this long by a stopped worker is settled.",
    )
    retry_base_seconds: float = Field(
        default=30.0,
        description="First retry delay of a failed action; doubles each attempt.",
    )

    home_mcc: str = Field(
        default="234",
        pattern=r"^[0-9]{3}$",
        description="Mobile country code of the home network (roaming is elsewhere).",
    )
    home_mnc: str = Field(
        default="15",
        pattern=r"^[0-9]{2,3}$",
        description="Mobile network code of the home network.",
    )
    usage_chunk_records: int = Field(
        default=5000,
        ge=1,
        le=100_000,
        description="Records staged per event of a usage batch.",
    )

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite files under the home directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'db' / 'monetise.sqlite3').as_posix()}"

    @property
    def api_keys_file(self) -> Path:
        return self.api_keys or self.home / "api-keys"
