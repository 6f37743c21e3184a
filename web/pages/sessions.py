"""Server-side session state in Redis: console sessions, sign-in throttling, portal links and sessions.

Console: the browser holds only a random token (HttpOnly, SameSite=Lax cookie); Redis maps its SHA-256
to the admin's id with a sliding expiry of 12 hours, capped at an absolute lifetime of 7 days from sign-in,
so signing out (or an expiry) ends the session on every worker at once. Losing Redis signs everybody out
and loses nothing else. Failed sign-ins are counted per email address *and* per client address in fixed
windows, so neither guessing one admin's password nor spraying one password over many admins goes fast.

Portal: a link's nonce is claimed once (``SET NX`` for the link's remaining lifetime), so a link opens
the portal once; a portal session's nonce is a key that exists while the session is open, so signing
out ends it even for a copied cookie.

Why not Litestar's ``ServerSideSessionConfig`` + ``RedisStore`` for the console: its backend keeps the
session id the browser sends when it signs in (a cookie planted before sign-in would become the session:
fixation), stores that id itself as the Redis key (a Redis dump or ``MONITOR`` would hand out live
sessions, where we store only a SHA-256), and has no absolute lifetime. Why not its ``RateLimitConfig``
for sign-in throttling: it counts every request rather than failures, cannot forget them after a
successful sign-in, knows nothing of the email in the form body, answers a bare 429 instead of the form,
and its read-modify-write is serialised only per process (``INCR`` here is atomic across workers).
"""

from __future__ import annotations

import hashlib
import secrets
import time

from redis.asyncio import Redis

from engine import keys
from web.names import CONSOLE_COOKIE

COOKIE = CONSOLE_COOKIE
TTL_SECONDS = 12 * 3600
#: A console session ends this long after sign-in, however active it has been.
MAX_LIFETIME_SECONDS = 7 * 86400
MAX_FAILURES = 8
#: Failures from one client address (many emails: password spraying) before it is paused.
MAX_CLIENT_FAILURES = 30
FAILURE_WINDOW_SECONDS = 15 * 60


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _session_key(namespace: str, token: str) -> str:
    return keys.console_session(namespace, _digest(token))


def _failures_key(namespace: str, email: str) -> str:
    return keys.sign_in_failures(namespace, _digest(email.strip().lower()))


def _client_failures_key(namespace: str, client: str) -> str:
    return f"{namespace}:console:failures:client:{_digest(client)}"


def _link_key(namespace: str, nonce: str) -> str:
    return f"{namespace}:portal:link:{_digest(nonce)}"


def _member_session_key(namespace: str, nonce: str) -> str:
    return f"{namespace}:portal:session:{_digest(nonce)}"


async def open_session(redis: Redis, *, namespace: str, admin_id: int, now: float | None = None) -> str:
    """Start a session for ``admin_id``; returns the token for the cookie (a new one at every sign-in)."""
    token = secrets.token_urlsafe(32)
    deadline = int((time.time() if now is None else now) + MAX_LIFETIME_SECONDS)
    await redis.set(_session_key(namespace, token), f"{admin_id}:{deadline}", ex=TTL_SECONDS)
    return token


async def session_admin(redis: Redis, *, namespace: str, token: str, now: float | None = None) -> int | None:
    """The admin id behind ``token`` (and the expiry pushed back), or ``None`` if signed out or expired.

    The sliding expiry never reaches past the absolute deadline set at sign-in.
    """
    if not token or len(token) > 128:
        return None
    key = _session_key(namespace, token)
    value = await redis.get(key)
    if value is None:
        return None
    admin_id, _, deadline = (value.decode() if isinstance(value, bytes) else str(value)).partition(":")
    left = int(deadline or 0) - int(time.time() if now is None else now)
    if left <= 0:
        await redis.delete(key)
        return None
    await redis.expire(key, min(TTL_SECONDS, left))
    return int(admin_id)


async def close_session(redis: Redis, *, namespace: str, token: str) -> None:
    """End the session behind ``token``."""
    if token:
        await redis.delete(_session_key(namespace, token))


async def throttled(redis: Redis, *, namespace: str, email: str, client: str = "") -> bool:
    """Whether sign-ins for ``email``, or from ``client``, are paused after too many failures."""
    email_count, client_count = await redis.mget(
        [_failures_key(namespace, email), _client_failures_key(namespace, client)]
    )
    return (email_count is not None and int(email_count) >= MAX_FAILURES) or (
        bool(client) and client_count is not None and int(client_count) >= MAX_CLIENT_FAILURES
    )


async def record_failure(redis: Redis, *, namespace: str, email: str, client: str = "") -> None:
    """Count one failed sign-in for ``email`` and ``client`` (each window starts at its first failure)."""
    keys = [_failures_key(namespace, email)] + ([_client_failures_key(namespace, client)] if client else [])
    async with redis.pipeline(transaction=True) as pipe:
        for key in keys:
            pipe.incr(key)
            pipe.expire(key, FAILURE_WINDOW_SECONDS, nx=True)
        await pipe.execute()


async def clear_failures(redis: Redis, *, namespace: str, email: str) -> None:
    """Forget failed sign-ins for ``email`` after a successful one.

    The client's count stays: one valid account must not reset the counter of a spraying client.
    """
    await redis.delete(_failures_key(namespace, email))


async def consume_link(redis: Redis, *, namespace: str, nonce: str, seconds_left: int) -> bool:
    """Claim a portal link's nonce; ``False`` if the link was used before (or carries no nonce)."""
    if not nonce:
        return False
    return bool(await redis.set(_link_key(namespace, nonce), b"1", nx=True, ex=max(1, seconds_left)))


async def open_member_session(redis: Redis, *, namespace: str, nonce: str, seconds: int) -> None:
    """Record an open portal session for ``seconds`` (its cookie's lifetime)."""
    await redis.set(_member_session_key(namespace, nonce), b"1", ex=max(1, seconds))


async def member_session_open(redis: Redis, *, namespace: str, nonce: str) -> bool:
    """Whether the portal session with ``nonce`` is still open (not signed out)."""
    return bool(nonce) and bool(await redis.exists(_member_session_key(namespace, nonce)))


async def close_member_session(redis: Redis, *, namespace: str, nonce: str) -> None:
    """End the portal session with ``nonce`` for every copy of its cookie."""
    if nonce:
        await redis.delete(_member_session_key(namespace, nonce))
