"""One typed settings object, read from the environment (and `.env` in development).

Every external base URL is a setting, so the same worker runs against the local sandbox,
a vendor test tenant or production. The README's settings table mirrors this class.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _http_timeout(service: str) -> Any:
    """A CRM client's read timeout setting (30 s)."""
    return Field(30.0, gt=0, description=f"Seconds a {service} call may take (read timeout).")


def _in_doubt_window(service: str, why: str) -> Any:
    """How long a CRM create in doubt waits before it may be re-sent: 600 s, `why` says why."""
    return Field(
        600.0,
        ge=0,
        description=f"Seconds after sending before a {service} create in doubt may be re-sent "
        f"({why}).",
    )


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
    dm_packet_rendition: Literal["xml", "as-listed"] = Field(
        "xml",
        description="Packet rendition downloaded: xml (the listed json url rewritten, as the "
        "vendor's clients do) or as-listed (the XML rendition is still tried before giving up).",
    )
    dm_storage_http_hosts: str = Field(
        "",
        description="Storage hosts (comma-separated) allowed although internal, also over "
        "plain http: the sandbox's 127.0.0.1. Links to other internal or http hosts are refused.",
    )
    dm_download_deadline: float = Field(
        300.0, gt=0, description="Seconds one packet download may take in total."
    )
    dm_poll_max_entries: int = Field(
        1000, ge=1, description="Entries taken per list type and poll; the rest come next poll."
    )

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
    ledger_namespace: str = Field("pw", description="Prefix of every ledger key in Redis.")
    ledger_retention_days: int = Field(
        30, description="Days an applied/duplicate packet stays in the ledger (and dedupe index)."
    )
    max_attempts: int = Field(5, description="Processing runs per packet before it quarantines.")
    apply_batch_size: int = Field(
        500,
        ge=1,
        description="Records handed to the target per call, cut between documents (about 45 "
        "orders of 10 lines: one BC $batch of inserts); a packet this small is read once.",
    )
    apply_batch_chars: int = Field(
        1_000_000,
        ge=1,
        description="Characters of field names and values handed to the target per call, "
        "whatever APPLY_BATCH_SIZE allows: bounds a worker's memory when records are large.",
    )
    apply_group_size: int = Field(
        100,
        ge=1,
        description="Pending packets of an app area processed together, so the target shares "
        "look-ups and writes across them (BC: one $batch per 100 documents); 1 = one at a time.",
    )
    group_prepare_concurrency: int = Field(
        8,
        ge=1,
        description="Packets of a group processed at once (downloaded, archived, settled), by "
        "threads of the group's own, within the portal's request budget; 1 = one after the other.",
    )
    stale_after: float = Field(
        900.0, description="Seconds without progress after which a poll re-enqueues a packet."
    )
    packet_lock_ttl: float = Field(
        600.0, description="Seconds a per-packet lock lives without being refreshed."
    )
    link_attempts: int = Field(3, description="Fresh download links tried when one has expired.")
    target: str = Field(
        "bc",
        description="Where records go: bc, dataverse, crmaas, dynamics-portal (each refuses to "
        "start without its settings), plan, recording, or an emulator by name (bc-emulator, …).",
    )
    plan_output: str = Field(
        "./var/plan.jsonl", description="JSON-lines file of the plan target ('-' = stdout)."
    )
    recording_path: Path | None = Field(
        None, description="Shared JSON-lines store of the recording target (None = in memory)."
    )

    # --- Pipeline (Dramatiq worker and clock) ------------------------------------------------
    # Durations are integer milliseconds, like Dramatiq's own options.
    redis_tls_insecure: bool = Field(
        False, description="Skip TLS certificate checks for rediss:// (Heroku Redis self-signed)."
    )
    broker_url: str = Field(
        "",
        description="amqp://… selects RabbitMQ as the broker (queues only: the ledger, locks and "
        "request budgets stay on REDIS_URL); empty = the Redis broker on REDIS_URL.",
    )
    broker_namespace: str = Field("packetworker", description="Prefix of every broker key.")
    broker_heartbeat_timeout_ms: int = Field(
        60_000, description="Silence after which a worker's un-acked messages are requeued."
    )
    broker_maintenance_chance: int = Field(
        1000, description="Per-million chance a broker command also recovers dead workers."
    )
    worker_processes: int = Field(2, description="dramatiq --processes for the worker.")
    worker_threads: int = Field(4, description="dramatiq --threads for the worker.")
    worker_shutdown_timeout_ms: int = Field(
        25_000, lt=30_000, description="Grace for in-flight work on SIGTERM (Heroku kills at 30 s)."
    )
    poll_lock_ttl_ms: int = Field(
        300_000, description="TTL of the one-poll-per-app-area lock; poll time limit stays below."
    )
    process_time_limit_ms: int = Field(600_000, description="Time limit of one packet.")
    process_max_age_ms: int = Field(
        86_400_000, description="Older packet messages are dropped; the portal re-lists them."
    )
    process_max_retries: int = Field(10, description="Retries of a packet on transient errors.")
    retry_min_backoff_ms: int = Field(5_000, description="First retry delay (doubles per retry).")
    retry_max_backoff_ms: int = Field(300_000, description="Longest retry delay.")
    prometheus_enabled: bool = Field(
        False, description="Export Dramatiq metrics (needs the `metrics` extra)."
    )
    dm_poll_jitter: float = Field(3.0, description="Seconds of random delay added to each poll.")

    # --- Business Central -------------------------------------------------------------------
    bc_tenant: str = Field("", description="Entra tenant id or domain (e.g. contoso.com).")
    bc_environment: str = Field("production", description="BC environment name.")
    bc_client_id: str = Field("", description="Entra app (client) id.")
    bc_client_secret: SecretStr = Field(SecretStr(""), description="Entra app client secret.")
    bc_refresh_token: SecretStr = Field(
        SecretStr(""), description="Delegated set-ups: refresh token from the auth-code flow."
    )
    bc_auth_grant: Literal["auto", "client_credentials", "authorization_code"] = Field(
        "auto",
        description="OAuth grant: client_credentials, or authorization_code (a BC user signs "
        "in with `packetworker bc login`; the refresh token is kept in Redis); auto = "
        "authorization_code when BC_REFRESH_TOKEN is set.",
    )
    bc_authorize_url: str = Field(
        "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize",
        description="OAuth authorize endpoint of `bc login`; {tenant} is replaced by bc_tenant.",
    )
    bc_redirect_uri: str = Field(
        "",
        description="Redirect (callback) URI registered on the Entra app, for `bc login`; "
        "http://localhost:PORT/... is received by a local listener, others are pasted.",
    )
    bc_token_url: str = Field(
        "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
        description="OAuth token endpoint; {tenant} is replaced by bc_tenant.",
    )
    bc_api_url: str = Field(
        "https://api.businesscentral.dynamics.com/v2.0",
        description="API root; tenant, environment and api/v2.0 are appended.",
    )
    bc_company: str = Field("", description="Company id or name (empty: the only company).")
    bc_scope: str = Field(
        "https://api.businesscentral.dynamics.com/.default", description="OAuth scope."
    )
    bc_max_concurrency: int = Field(
        5,
        description="Requests in flight, across all workers (BC processes 5/user).",
    )
    bc_mapping: str = Field(
        "bc-field-sales", description="Mapping of the bc target: a shipped name or a .toml path."
    )
    bc_payment_journal: str = Field(
        "GENERAL", description="Code of the customer payment journal payments are posted to."
    )
    bc_http_timeout: float = Field(
        30.0, gt=0, description="Seconds a BC call may take (read timeout); then it is in doubt."
    )
    bc_in_doubt_seconds: float = Field(
        600.0,
        ge=0,
        description="Seconds after sending before a BC write in doubt may be re-sent "
        "(BC's longest request).",
    )
    bc_company_map: str = Field(
        "",
        description="Pull-list companyId → BC company id or name, e.g. 'ACME_MAIN=CRONUS,"
        "ACME_EU=CRONUS EU' (empty: every packet goes to BC_COMPANY; else unmapped ones are held).",
    )
    bc_hold_retry_interval: float = Field(
        600.0,
        gt=0,
        description="Seconds between retries of a held packet (a document whose customer is "
        "blocked or missing; a packet of an unmapped company).",
    )
    bc_hold_max_hours: float = Field(
        72.0, gt=0, description="Hours a packet may stay held before it is quarantined."
    )

    # --- Outbound and webhooks ---------------------------------------------------------------
    outbound_users: str = Field(
        "",
        description="Mobile users that get master-data pushes, each with its company: "
        "'user1@ACME_MAIN,user2@ACME_EU' (routed by BC_COMPANY_MAP; without @COMPANY: "
        "BC_COMPANY, only while the map is empty).",
    )
    outbound_interval: float = Field(
        900.0, description="Seconds between scheduled (incremental) pushes per user."
    )
    outbound_complete_cron: str = Field(
        "0 2 * * *",
        description="Crontab line (UTC) of the complete push per user, which also sends "
        "deletions found by comparing key sets; empty = none.",
    )
    outbound_stock_interval: float = Field(
        1_800.0,
        ge=0,
        description="Seconds between stock refreshes per user (items whose inventory changed; "
        "BC does not bump lastModifiedDateTime for it); 0 = none.",
    )
    outbound_item_variants: bool = Field(False, description="Also push item variants.")
    outbound_mapping: Path | None = Field(
        None,
        description="BC → mobile table mapping (TOML path); None = the shipped "
        "mapping_files/outbound/bc-field-sales.toml.",
    )
    outbound_app_area: str = Field(
        "", description="App area pushes go to (empty: the first of dm_app_area)."
    )
    bc_user_map: str = Field(
        "", description="BC salesperson code → mobile user for documents, e.g. 'SP1=user1,SP2=u2'."
    )
    webhook_url: str = Field(
        "", description="Public notificationUrl of the web process, e.g. https://host/bc/webhook."
    )
    webhook_client_state: SecretStr = Field(
        SecretStr(""), description="Shared secret BC echoes in every notification (clientState)."
    )
    webhook_resources: str = Field(
        "items,customers,salesInvoices,salesShipments",
        description="BC entity sets to subscribe to; those BC's webhookSupportedResources "
        "lacks (or refused) are polled instead.",
    )
    outbound_poll_interval: float = Field(
        300.0, description="Seconds between polls of resources BC refuses webhooks for."
    )
    webhook_renew_before: float = Field(
        86_400.0, description="Renew a subscription when fewer seconds than this are left."
    )
    webhook_check_interval: float = Field(
        3_600.0, description="Seconds between subscription checks (create/renew/recreate)."
    )
    web_port: int = Field(
        8000,
        validation_alias=AliasChoices("PORT", "WEB_PORT"),
        description="Port of the web process (Heroku sets PORT).",
    )
    web_threads: int = Field(4, description="Request threads of the web process (waitress).")
    web_host: str = Field(
        "0.0.0.0",  # noqa: S104 - Heroku routes outside traffic to $PORT on every interface
        description="Interface the web process listens on (0.0.0.0 for Heroku; 127.0.0.1 "
        "behind a local proxy).",
    )
    web_channel_timeout: int = Field(
        10,
        ge=1,
        description="Seconds an idle or half-sent connection to the web process is kept open.",
    )
    web_console_token: SecretStr = Field(
        SecretStr(""),
        description="Token that opens the web console at /console (off when neither it nor "
        "WEB_CONSOLE_USER/WEB_CONSOLE_PASSWORD is set).",
    )
    web_console_user: str = Field("", description="Basic-auth user of the web console.")
    web_console_password: SecretStr = Field(
        SecretStr(""), description="Basic-auth password of the web console."
    )

    # --- CRMs -------------------------------------------------------------------------------
    dataverse_url: str = Field(
        "", description="Dataverse environment URL, e.g. https://org.crm4.dynamics.com."
    )
    dataverse_tenant: str = Field("", description="Entra ID tenant id of the Dataverse app.")
    dataverse_client_id: str = Field("", description="Application (client) id of the app user.")
    dataverse_client_secret: SecretStr = Field(
        SecretStr(""), description="Client secret of the Dataverse app registration."
    )
    dataverse_token_url: str = Field(
        "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
        description="OAuth2 token endpoint ({tenant} is filled in); override for the sandbox.",
    )
    dataverse_max_concurrency: int = Field(
        8,
        ge=1,
        le=52,
        description="In-flight Dataverse requests, across all workers (limit is 52).",
    )
    dataverse_http_timeout: float = _http_timeout("Dataverse")
    # crm.md A.2: Microsoft's samples time out after 2 minutes; a 2-minute server cap is only
    # reported by a third party (unconfirmed), so the window allows five times that.
    dataverse_in_doubt_seconds: float = _in_doubt_window(
        "Dataverse", "its longest request is unconfirmed; Microsoft's samples wait 2 minutes"
    )
    dynamics_portal_url: str = Field(
        "", description="Base URL of the Dynamics portal proxy (paths per its API contract)."
    )
    dynamics_portal_client_id: str = Field("", description="Service account of the proxy.")
    dynamics_portal_scope: str = Field(
        "Dynamics365.ReadWrite", description="Scope requested when authenticating to the proxy."
    )
    dynamics_portal_http_timeout: float = _http_timeout("portal proxy")
    # The proxy's contract states no limit; it fronts Dataverse (crm.md A.2, unconfirmed 2 min).
    dynamics_portal_in_doubt_seconds: float = _in_doubt_window(
        "portal proxy", "no limit documented; the proxy cannot be queried, so it is re-sent blind"
    )
    crmaas_url: str = Field(
        "", description="CRM as a Service base URL (unconfirmed upstream; set per region)."
    )
    crmaas_primary_key: SecretStr = Field(
        SecretStr(""), description="CRM as a Service primary Ocp-Apim-Subscription-Key."
    )
    crmaas_secondary_key: SecretStr = Field(
        SecretStr(""), description="Secondary key, used when the primary is refused (401)."
    )
    crmaas_http_timeout: float = _http_timeout("CRM as a Service")
    # Its API reference and crm.md B.4 state no request limit (unconfirmed): BC's window.
    crmaas_in_doubt_seconds: float = _in_doubt_window("CRM as a Service", "no limit documented")
    dataverse_mapping: str = Field(
        "dataverse-field-sales", description="Mapping (name or .toml path) of the dataverse target."
    )
    crmaas_mapping: str = Field(
        "crmaas-field-sales", description="Mapping (name or .toml path) of the crmaas target."
    )
    dynamics_portal_mapping: str = Field(
        "dataverse-field-sales",
        description="Mapping of the dynamics-portal target (the proxy speaks Dataverse endpoints).",
    )
    contact_mapping: str = Field(
        "ipaas-contact",
        description="Mapping the CRM targets apply to its tables (Contact, ContactAddress).",
    )
    crm_record_errors: Literal["quarantine", "skip"] = Field(
        "quarantine",
        description="A record a CRM refuses (invalid/missing email, duplicate, company not "
        "found): quarantine the packet, or skip the record and report it.",
    )

    # --- Request budgets (shared by every worker process through Redis) ------------------
    bc_requests_per_5_min: int = Field(
        6000,
        ge=0,
        description="BC requests started per 5-minute sliding window, across all workers "
        "(BC allows 6,000 per user; 0 = no window).",
    )
    dataverse_requests_per_5_min: int = Field(
        6000,
        ge=0,
        description="Dataverse requests per 5-minute sliding window, across all workers "
        "(6,000 per user; 0 = no window).",
    )
    dm_max_concurrency: int = Field(
        10,
        ge=1,
        description="Portal API requests in flight, across all workers (no documented limit).",
    )
    dm_requests_per_5_min: int = Field(
        0,
        ge=0,
        description="Portal API requests per 5-minute sliding window, across all workers "
        "(0 = no window; the ERP API documents none).",
    )
    request_slot_wait: float = Field(
        30.0,
        gt=0,
        description="Seconds a request waits for a slot of its budget; then its packet is "
        "rescheduled (not a failed attempt).",
    )

    # --- Logging ----------------------------------------------------------------------------
    log_level: str = Field("INFO", description="Python logging level.")
    log_format: Literal["json", "text"] = Field("json", description="json for production.")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()


def env_example() -> str:
    """`.env.example`: every setting as a commented-out `NAME=default` under its description.

    Commented out, so a copy used as `.env` sets nothing by accident (an explicit TARGET or
    LOG_LEVEL changes what commands do); uncomment what you change.
    """
    lines = [
        "# Every packetworker setting with its default; the README's settings table explains",
        "# them. Generated by `python -m packetworker.settings --env-example > .env.example`",
        "# (a test keeps it in sync). Copy to .env (read in development) and uncomment what",
        "# you change. Never commit a .env: it holds secrets.",
    ]
    for name, field in Settings.model_fields.items():
        default = field.default
        secret = isinstance(default, SecretStr)
        value = default.get_secret_value() if secret else default
        shown = "" if value is None else str(value)
        lines += ["", f"# {field.description}{' (secret)' if secret else ''}"]
        lines.append(f"# {name.upper()}={shown}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--env-example"]:
        sys.exit("usage: python -m packetworker.settings --env-example > .env.example")
    sys.stdout.write(env_example())
