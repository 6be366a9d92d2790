from __future__ import annotations

import enum
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values shipped for development only; outside `ENVIRONMENT=development` the service refuses them.
PLACEHOLDER_JWT_SECRET = "dev-only-jwt-secret-change-me-0123456789abcdef"  # noqa: S105
# A valid Fernet key (url-safe base64 of 32 bytes), so dev mode can encrypt OAuth tokens.
PLACEHOLDER_ENCRYPTION_KEY = "ZGV2LW9ubHktZW5jcnlwdGlvbi1rZXktY2hhbmdlISE="
# The sandbox signs its status webhooks with this; Meta signs with the app's App Secret.
PLACEHOLDER_WHATSAPP_APP_SECRET = "sandbox-app-secret"  # noqa: S105
PLACEHOLDER_WHATSAPP_VERIFY_TOKEN = "sandbox-verify-token"  # noqa: S105


class Environment(enum.StrEnum):
    development = "development"
    test = "test"
    production = "production"


class Settings(BaseSettings):
    """Every knob, read from the environment (names are the field names in upper case)."""

    # hide_input_in_errors: a validation error must not print the other values (secrets, URLs).
    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", frozen=True, hide_input_in_errors=True
    )

    environment: Environment = Environment.development
    data_dir: Path = Path(".data")

    # Postgres. Required in production; in development the `longtasks` command starts an
    # embedded server (a development tool) under DATA_DIR/pgdata when it is unset.
    database_url: str | None = None
    # The owner's URL, for `longtasks migrate` (and `rotate-keys`): it runs the migrations and
    # creates the application's role named in DATABASE_URL, which owns nothing and cannot
    # bypass row-level security. Unset: DATABASE_URL (one role, no second wall).
    migration_database_url: str | None = None
    db_pool_size: int = 10

    # Temporal
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "longtasks"
    temporal_ui_port: int = 8233

    # API
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_base_url: str = "http://127.0.0.1:8000"
    # Bearer tokens (longtasks.auth.tokens). A host application signs them with its private
    # keys; longtasks verifies with the public ones: {"kid": "<PEM or a PEM file's path>", ...}.
    jwt_public_keys: dict[str, str] = Field(default_factory=dict)
    # HS256 with JWT_SECRET (tokens without a kid; `longtasks token` signs them). Unset: on in
    # development and test, and in production only while no public key is configured.
    jwt_hs256: bool | None = None
    jwt_secret: str = PLACEHOLDER_JWT_SECRET
    jwt_issuer: str = "longtasks"
    jwt_audience: str = "longtasks"
    # Lifetime of tokens from `longtasks token`; no token may live longer than the maximum.
    jwt_ttl_s: int = Field(default=7 * 24 * 3600, gt=0)
    jwt_max_lifetime_s: int = Field(default=7 * 24 * 3600, gt=0)
    # Clock skew tolerated on exp, nbf and iat: bounded, so an expired token stays expired.
    jwt_leeway_s: int = Field(default=30, ge=0, le=300)
    # Stream and download tickets (`POST /api/tickets`): how long one may be used to open its URL.
    ticket_ttl_s: int = Field(default=60, gt=0, le=300)
    # Secrets at rest (OAuth tokens, webhook secrets) and ticket signatures. Rotation: the new
    # key here, the old ones in ENCRYPTION_OLD_KEYS (they still decrypt and verify), then
    # `longtasks rotate-keys`, then drop the old ones.
    encryption_key: str = PLACEHOLDER_ENCRYPTION_KEY
    encryption_old_keys: list[str] = Field(default_factory=list)
    cors_origins: list[str] = Field(default_factory=list)
    max_body_bytes: int = 8 * 1024 * 1024
    max_recipients_per_broadcast: int = 100_000
    api_rate_limit_per_s: float = 50.0
    api_rate_limit_burst: int = 200
    stall_after_s: int = 30
    # A task over its business's approval threshold expires unapproved after this long.
    approval_ttl_s: float = Field(default=24 * 3600.0, gt=0)
    sse_keepalive_s: float = 15.0
    sse_coalesce_s: float = 0.25
    default_phone_region: str = "IL"

    # Audiences: customer lists uploaded as CSV (`POST /api/audiences`, streamed, never read
    # whole). Over either cap the upload is refused with 413 and nothing is kept.
    max_audience_rows: int = 1_000_000
    max_audience_bytes: int = 256 * 1024 * 1024
    # Rows per staging chunk, which is also one page of the import task.
    audience_import_page_size: int = 5000
    # Processes per worker normalizing phone numbers (CPU-bound: ~20-90 us a number here);
    # unset: one per CPU; 0: a thread of the worker itself.
    audience_import_processes: int | None = None

    # WhatsApp Cloud API (the sandbox by default)
    whatsapp_api_base: str = "http://127.0.0.1:8090"
    whatsapp_api_version: str = "v21.0"
    whatsapp_access_token: str = "sandbox-token"  # noqa: S105
    whatsapp_request_timeout_s: float = 10.0
    # Messages/s per sender number when the business sets none; 0 sends as fast as allowed.
    whatsapp_default_messages_per_s: float = 0.0
    # Status webhooks: where Meta (or the sandbox) POSTs them (unset: this API's
    # `{PUBLIC_BASE_URL}/webhooks/whatsapp`), the App Secret their signature is keyed with, and
    # the token of Meta's subscription handshake.
    whatsapp_webhook_url: str | None = None
    whatsapp_app_secret: str = PLACEHOLDER_WHATSAPP_APP_SECRET
    whatsapp_verify_token: str = PLACEHOLDER_WHATSAPP_VERIFY_TOKEN
    # Meta's payloads are at most 3 MB.
    whatsapp_webhook_max_bytes: int = 3 * 1024 * 1024
    # A send whose answer never came (worker killed mid-call, a timeout, a dropped connection)
    # is `unconfirmed`: settled by a status webhook carrying its key, or, once the webhook
    # pipeline has shown it delivers statuses of later sends of the same number and this grace
    # has passed, by the task's policy. Without any such proof, the policy decides after
    # WHATSAPP_UNCONFIRMED_MAX_WAIT_S: Meta retries a webhook for up to 7 days, never longer.
    whatsapp_unconfirmed_grace_s: float = 900.0
    whatsapp_unconfirmed_max_wait_s: float = 7 * 24 * 3600.0
    # Statuses of unknown wamids wait this long for their send to be recorded.
    whatsapp_inbox_retention_s: float = 7 * 24 * 3600.0

    # Worker tuning: a page is one activity; `window` pages run at once per task.
    broadcast_page_size: int = 500
    page_window: int = 4
    send_concurrency: int = 64
    max_concurrent_activities: int = 32
    cancel_poll_interval_s: float = 0.2
    heartbeat_timeout_s: float = 20.0
    # Pages a workflow run may schedule before it continues-as-new even if the server has not
    # suggested it yet (keeps each run's history small and bounded).
    pages_per_run: int = 400

    # Gmail API (the sandbox by default; https://gmail.googleapis.com for the real service)
    gmail_api_base: str = "http://127.0.0.1:8090"
    # The OAuth token endpoint; unset: `{gmail_api_base}/oauth2/token` (the sandbox's).
    # Real service: https://oauth2.googleapis.com/token
    gmail_token_url: str | None = None
    gmail_client_id: str = "sandbox-client"
    gmail_client_secret: str = "sandbox-secret"  # noqa: S105
    gmail_request_timeout_s: float = 30.0
    # Gmail's per-user quota is 250 units/s; each worker paces every mailbox below it.
    gmail_quota_units_per_s: float = 200.0
    gmail_fetch_concurrency: int = 16
    # Ids per users.messages.list / history.list page (Gmail allows up to 500).
    gmail_list_page_size: int = 500
    # Messages fetched and parsed per page activity.
    gmail_fetch_page_size: int = 100
    # The per-business Temporal Schedule's interval between incremental syncs.
    gmail_sync_interval_s: int = 3600
    # A page is one DELETE statement: ~20 ms for 50,000 receipts here. Much smaller pages spend
    # more on the ~50 ms an activity costs, and on pages starting a few ms apart, than on
    # deleting; cancel still takes effect between pages within a fraction of a second.
    receipt_delete_page_size: int = 50_000
    max_receipt_ids_per_delete: int = 100_000

    # Sandbox providers (`longtasks sandbox`)
    sandbox_host: str = "127.0.0.1"
    sandbox_port: int = 8090
    sandbox_whatsapp_latency_ms: float = 0.0
    sandbox_whatsapp_failure_rate: float = 0.0
    sandbox_whatsapp_rate_limit: float = 0.0  # messages/s per phone number id; 0 = unlimited
    sandbox_whatsapp_lost_response_rate: float = 0.0  # accepted, answer never reaches the caller
    sandbox_whatsapp_status_delay_ms: float = 500.0  # mean delay of each status step
    sandbox_whatsapp_async_failure_rate: float = 0.0  # accepted, later failed (131026/49/50)
    sandbox_whatsapp_read_rate: float = 0.5
    sandbox_whatsapp_webhook_drop_rate: float = 0.0  # 1 = the webhook pipeline is down
    sandbox_gmail_mailbox_size: int = 2000  # messages per sandbox mailbox
    sandbox_gmail_quota_units_per_s: float = 250.0  # Gmail's per-user quota, in the sandbox

    # Ops: cleanup schedule, notifications, metrics, logs, tracing (README "Operations")
    cleanup_retention_days: int = 30
    cleanup_batch_size: int = 1000
    cleanup_cron: str = "17 3 * * *"  # daily, UTC
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_from: str = "longtasks@localhost"
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: str | None = None
    webhook_timeout_s: float = 10.0
    # Networks a business's URL may reach although they are not public (longtasks.outbound).
    # Unset: loopback in development (a local receiver), none otherwise.
    outbound_allowed_networks: list[str] | None = None
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = 9464  # Temporal SDK + longtasks_ metrics; 0 = off
    metrics_token: str | None = None  # when set, the API's /metrics wants this bearer token
    log_format: Literal["json", "text"] | None = None  # default: json unless development
    log_level: str = "INFO"
    otel_exporter_otlp_endpoint: str | None = None  # tracing is on when set
    otel_service_name: str = "longtasks"

    @property
    def effective_log_format(self) -> str:
        if self.log_format is not None:
            return self.log_format
        return "text" if self.environment is Environment.development else "json"

    @property
    def whatsapp_webhook_endpoint(self) -> str:
        base = self.public_base_url.rstrip("/")
        return self.whatsapp_webhook_url or f"{base}/webhooks/whatsapp"

    @property
    def gmail_token_endpoint(self) -> str:
        return self.gmail_token_url or f"{self.gmail_api_base.rstrip('/')}/oauth2/token"

    @property
    def effective_outbound_allowed_networks(self) -> list[str]:
        if self.outbound_allowed_networks is not None:
            return self.outbound_allowed_networks
        if self.environment is Environment.development:
            return ["127.0.0.0/8", "::1/128"]
        return []

    @property
    def encryption_keys(self) -> list[str]:
        """Newest first: the first encrypts and signs, every one decrypts and verifies."""
        return [self.encryption_key, *self.encryption_old_keys]

    @property
    def hs256_enabled(self) -> bool:
        if self.jwt_hs256 is not None:
            return self.jwt_hs256
        return self.environment is not Environment.production or not self.jwt_public_keys

    @model_validator(mode="after")
    def _refuse_placeholders_outside_development(self) -> Settings:
        if not self.hs256_enabled and not self.jwt_public_keys:
            raise ValueError("JWT_HS256 is off and JWT_PUBLIC_KEYS is empty: no token can verify")
        if self.environment is Environment.production:
            if self.hs256_enabled and (
                self.jwt_secret == PLACEHOLDER_JWT_SECRET or len(self.jwt_secret) < 32
            ):
                raise ValueError(
                    "JWT_SECRET must be set to a secret of 32+ characters in production"
                    " (or configure JWT_PUBLIC_KEYS, which turns HS256 off)"
                )
            if self.encryption_key == PLACEHOLDER_ENCRYPTION_KEY:
                raise ValueError("ENCRYPTION_KEY must be set in production")
            if not self.database_url:
                # Never an embedded database of its own: a fleet would write to N of them.
                raise ValueError("DATABASE_URL must be set in production")
            if self.whatsapp_app_secret == PLACEHOLDER_WHATSAPP_APP_SECRET:
                raise ValueError("WHATSAPP_APP_SECRET must be set in production")
            if self.whatsapp_verify_token == PLACEHOLDER_WHATSAPP_VERIFY_TOKEN:
                raise ValueError("WHATSAPP_VERIFY_TOKEN must be set in production")
        return self

    def require_database_url(self) -> str:
        """The Postgres URL of a service process (the API, the worker), which never starts a
        database itself: the CLI resolves one first (`cli.database`)."""
        if not self.database_url:
            raise RuntimeError(
                "DATABASE_URL is not set; `longtasks api|worker|migrate` start an embedded"
                " Postgres in development, a service built directly needs the URL"
            )
        return self.database_url
