"""One typed settings object, read from the environment (and `.env` in development).

Every external base URL is a setting, so the same worker runs against the local sandbox,
a vendor test tenant or production. The README's settings table mirrors this class.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    # --- Dynamics Mobile ERP API -------------------------------------------------------------
    dm_api_url: str = Field(
        "https://api.portal.dynamicsmobile.com/mobile",
        description="Base URL of the ERP API, including the /mobile prefix working clients use.",
    )
    dm_app_area: str = Field("", description="Application area code (tenant).")
    dm_api_key: SecretStr = Field(SecretStr(""), description="API key of the application area.")
    dm_list_format: Literal["json", "xml"] = Field("json", description="Encoding of pull lists.")
    dm_done_format: Literal["json", "xml"] = Field("xml", description="Encoding of done bodies.")
    dm_http_timeout: float = Field(30.0, description="Seconds for connect/read/write/pool.")
    dm_http_retries: int = Field(5, description="Attempts on connection errors, 429 and 5xx.")
    dm_poll_interval: float = Field(30.0, description="Seconds between polls (clock process).")

    # --- Packet limits (hostile input) -------------------------------------------------------
    max_packet_bytes: int = Field(512 * 1024 * 1024, description="Largest packet body accepted.")
    max_field_bytes: int = Field(8 * 1024 * 1024, description="Largest single field value.")

    # --- Storage and broker ------------------------------------------------------------------
    redis_url: str = Field("redis://localhost:6379/0", description="Broker and ledger.")
    archive_url: str = Field(
        "file://./var/archive", description="file:///path or s3://bucket/prefix for raw packets."
    )
    s3_endpoint_url: str | None = Field(None, description="S3-compatible endpoint (MinIO, moto).")
    spool_dir: Path = Field(Path("./var/spool"), description="Where downloads are streamed to.")

    # --- Logging ----------------------------------------------------------------------------
    log_level: str = Field("INFO", description="Python logging level.")
    log_format: Literal["json", "text"] = Field("json", description="json for production.")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
