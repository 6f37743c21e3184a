"""Settings, read from the environment by :func:`load_settings` (never at import time).

Every variable is prefixed ``QUESTLINE_``; e.g. ``QUESTLINE_DATABASE_URL``. Unset variables take the
embedded defaults: a SQLite file and an in-process fake Redis. Outside that embedded default (PostgreSQL or
a real Redis) :func:`refuse_unsafe` stops the server from starting with the default or a short secret, or
with the demo brand's well-known keys.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

import msgspec

from engine.egress import EgressPolicy
from engine.errors import ValidationError

if TYPE_CHECKING:
    from collections.abc import Mapping

PREFIX = "QUESTLINE_"
RESERVED = ("QUESTLINE_TEST_", "QUESTLINE_BENCH_")
"""Variables of the test suite and the benchmarks, never settings."""
DEFAULT_SECRET = "dev-only-change-me"
#: Shortest secret accepted outside the embedded default (bytes of its UTF-8 form).
MIN_SECRET_BYTES = 32


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Runtime configuration of one Questline process."""

    database_url: str = "sqlite+aiosqlite:///./questline.db"
    """``postgresql+asyncpg://user@host/db`` in production; a SQLite file by default."""
    redis_url: str = "memory://"
    """``redis://host:6379/0`` in production; ``memory://`` runs an in-process fake Redis."""
    redis_namespace: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_\-]{1,32}$")] = "ql"
    """Prefix of every Redis key, so several deployments (or test runs) can share one server."""
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 8000
    workers: Annotated[int, msgspec.Meta(ge=1, le=64)] = 1
    log_format: Literal["console", "json"] = "console"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024, le=64 * 1024 * 1024)] = 1024 * 1024
    max_batch: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 1000
    auto_migrate: bool = True
    """Upgrade the schema at start (the embedded default relies on it)."""
    demo: bool = False
    """Seed the demo brand at start when it does not exist yet."""
    secret: str = DEFAULT_SECRET
    """Signs member links, portal sessions, widget tokens and CSRF tokens: at least 32 random bytes in production
    (the server refuses to start on PostgreSQL or a real Redis with the default or a shorter one)."""
    public_url: str = "http://127.0.0.1:8000"
    """The origin members and widgets reach this server at (hosted badge URLs, links); defaults to
    ``http://<host>:<port>``."""
    key_cache_seconds: Annotated[float, msgspec.Meta(ge=0, le=300)] = 5.0
    webhooks_allow_http: bool = False
    """Accept plain ``http://`` webhook URLs (always accepted in the embedded development default)."""
    webhooks_allow_private: bool = False
    """Accept webhook URLs on loopback, private, link-local… addresses (local development only)."""
    webhook_rank_interval_seconds: Annotated[float, msgspec.Meta(ge=0, le=86400)] = 60.0
    """Throttle of the ``rank.changed`` webhook: at most one message per member, board and scope in this time."""
    hsts_seconds: Annotated[int, msgspec.Meta(ge=0, le=2 * 365 * 86400)] = 0
    """``Strict-Transport-Security: max-age=…`` on every response when above 0 and the public URL is https."""
    rate_limit: Annotated[float, msgspec.Meta(ge=0, le=1_000_000)] = 100.0
    """Default API rate limit per key, in requests per second refilled into its token bucket (0: no limit);
    a brand's ``rate_limit`` setting overrides it."""
    rate_limit_burst: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 1000
    """Default token bucket size per key: how many requests may come at once before the rate applies."""
    metrics_token: str = ""
    """Bearer token a Prometheus scraper presents to ``GET /metrics``; empty disables the endpoint (404)."""
    metrics_brand_labels: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 20
    """Brands with an id up to this number get their own ``brand`` label on metrics; others are ``other``."""
    otlp_endpoint: str = ""
    """OTLP/HTTP traces endpoint (``http://collector:4318/v1/traces``); empty turns tracing off."""
    service_name: str = "questline"
    """The ``service.name`` resource attribute of exported traces."""
    event_max_future_seconds: Annotated[int, msgspec.Meta(ge=0, le=366 * 86400)] = 300
    """How far ahead of this server's clock an event's ``occurred_at`` may be (clock skew); later is refused."""
    event_max_age_days: Annotated[int, msgspec.Meta(ge=1, le=36_500)] = 365
    """How old an event may be, unless the brand's ``event_max_age_days`` setting says otherwise."""
    redis_timeout_ms: Annotated[int, msgspec.Meta(ge=10, le=60_000)] = 1000
    """Connect and socket timeout of every Redis command; a command is never retried with back-off."""
    redis_breaker_failures: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 3
    """Failed Redis connects in a row that open the circuit breaker (Redis calls then fail at once)."""
    redis_breaker_cooldown_s: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 5.0
    """Seconds the breaker stays open before one connect probes Redis again."""
    database_read_url: str = ""
    """An optional PostgreSQL read replica (``postgresql+asyncpg://…``) for console statistics and data exports.
    Writes, the ingest path and every read that must see a member's own just-written state stay on
    ``database_url``; a replica that does not answer is skipped (the primary serves the read)."""
    database_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 5.0
    """Connect timeout of a new PostgreSQL connection (a server that does not answer fails the request: 503)."""
    database_pre_ping: bool = False
    """Check each pooled PostgreSQL connection with a round trip before use. Off by default: event ingestion
    retries on a connection the server dropped, and the first such error discards every pooled connection
    (after a PostgreSQL restart a worker may fail one other request). On, a restart fails no request but
    every checkout costs a round trip."""
    points_jobs_seconds: Annotated[float, msgspec.Meta(ge=0, le=86400)] = 60.0
    """How often the background jobs release pending points and expire due lots (0: off; the CLI can run them)."""
    smtp_url: str = ""
    """``smtp://host:port`` (``smtps://user:password@host:port`` for implicit TLS) members' mail goes through;
    empty: mails are logged and kept in an in-memory outbox the console shows (development)."""
    mail_from: str = "Questline <no-reply@questline.local>"
    """The ``From`` of mail to members (magic links, double opt-in)."""
    coalesce_ms: Annotated[float, msgspec.Meta(ge=0, le=50)] = 3.0
    """Single events of one brand arriving this close together in one worker share one unit of work; 0 is off.
    It also bounds how long, after a batch, the next one waits for the requests it expects (the clients just
    answered coming back), so it is the most a request waits before it leaves."""
    prefold_min_events: Annotated[int, msgspec.Meta(ge=0, le=100_000)] = 64
    """Units of work with at least this many new events have their challenges folded before the members' locks
    (``engine.pipeline.Prefolds``); 0 is off. Below the default a unit's extra reads cost more than its wait
    for the locks saves."""
    coalesce_inflight: Annotated[int, msgspec.Meta(ge=1, le=64)] = 1
    """How many coalesced batches of one brand a worker runs at a time; single events arriving meanwhile wait
    and leave together as the next batch when one finishes (group commit)."""
    wallet_web_service_url: Annotated[str, msgspec.Meta(pattern=r"^(https?://[^\s?#]+)?$")] = ""
    """The ``webServiceURL`` of Apple passes (the PassKit web service is mounted at its path); empty:
    ``<public_url>/passkit``. Apple requires https in production."""
    wallet_refresh_seconds: Annotated[float, msgspec.Meta(ge=0, le=86400)] = 30.0
    """How often passes that devices registered for are compared with their members' state and changed ones
    pushed through APNs (0: off; devices still get the right list when they ask)."""

    @property
    def passkit_url(self) -> str:
        """The Apple passes' ``webServiceURL`` (no trailing slash)."""
        return (self.wallet_web_service_url or f"{self.public_url.rstrip('/')}/passkit").rstrip("/")

    @property
    def uses_fake_redis(self) -> bool:
        """Whether Redis is the in-process fake."""
        return self.redis_url.startswith("memory://")

    @property
    def uses_sqlite(self) -> bool:
        """Whether the database is a SQLite file."""
        return self.database_url.startswith("sqlite")

    @property
    def embedded(self) -> bool:
        """Whether this is the embedded development default (SQLite and the in-process fake Redis)."""
        return self.uses_sqlite and self.uses_fake_redis

    @property
    def egress_policy(self) -> EgressPolicy:
        """Which webhook URLs are allowed: https to public addresses, plain http too in the embedded default."""
        return EgressPolicy(
            allow_http=self.webhooks_allow_http or self.embedded, allow_private=self.webhooks_allow_private
        )


def unsafe_reasons(settings: Settings) -> list[str]:
    """What makes ``settings`` unfit to serve outside the embedded default (empty when fine)."""
    if settings.embedded:
        return []
    reasons: list[str] = []
    if settings.secret == DEFAULT_SECRET:
        reasons.append("QUESTLINE_SECRET is the default; set at least 32 random bytes (e.g. `openssl rand -hex 32`)")
    elif len(settings.secret.encode()) < MIN_SECRET_BYTES:
        reasons.append(f"QUESTLINE_SECRET is shorter than {MIN_SECRET_BYTES} bytes")
    if settings.demo and not settings.uses_sqlite:
        reasons.append("QUESTLINE_DEMO seeds a brand with well-known keys; it is refused on PostgreSQL")
    return reasons


def refuse_unsafe(settings: Settings) -> None:
    """Stop a start outside the embedded default with a guessable secret or the demo brand.

    Raises:
        ValidationError: the first reason, naming the setting.
    """
    reasons = unsafe_reasons(settings)
    if reasons:
        field = "QUESTLINE_DEMO" if reasons[0].startswith("QUESTLINE_DEMO") else "QUESTLINE_SECRET"
        raise ValidationError("refusing to start: " + "; ".join(reasons), field=field)


def load_settings(env: Mapping[str, str], **overrides: object) -> Settings:
    """Build :class:`Settings` from ``QUESTLINE_*`` variables in ``env`` plus explicit overrides.

    An unknown ``QUESTLINE_*`` variable is refused (a typo must not pass silently); ``QUESTLINE_TEST_*`` and
    ``QUESTLINE_BENCH_*`` belong to the test suite and the benchmarks and are not settings.

    Raises:
        ValidationError: a variable has a value of the wrong type or out of range (named in ``field``).
    """
    raw: dict[str, object] = {
        name[len(PREFIX) :].lower(): value
        for name, value in env.items()
        if name.startswith(PREFIX) and not name.startswith(RESERVED)
    }
    known = set(Settings.__struct_fields__)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValidationError(f"unknown setting {PREFIX}{unknown[0].upper()}", field=f"{PREFIX}{unknown[0].upper()}")
    raw.update(overrides)
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise ValidationError(f"bad setting: {exc}", field="settings") from exc
    if settings.database_read_url and not (
        settings.database_read_url.startswith("postgresql") and not settings.uses_sqlite
    ):
        raise ValidationError(
            "QUESTLINE_DATABASE_READ_URL is a PostgreSQL replica of a PostgreSQL QUESTLINE_DATABASE_URL",
            field="QUESTLINE_DATABASE_READ_URL",
        )
    if "public_url" not in raw:  # follow the bind address unless told where the public reaches us
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
        settings = msgspec.structs.replace(settings, public_url=f"http://{host}:{settings.port}")
    return settings
