"""Console sign-in sessions and sign-in throttling, kept in Redis.

The browser holds only a random token (HttpOnly, SameSite=Lax cookie); Redis maps its SHA-256 to the
admin's id with a sliding expiry, so signing out (or an expiry) ends the session on every worker at once.
Losing Redis signs everybody out and loses nothing else. Failed sign-ins are counted per email address in
a fixed window to slow down password guessing.
"""

from __future__ import annotations

import hashlib
import secrets

from redis.asyncio import Redis

from engine import keys

COOKIE = "ql_console"
TTL_SECONDS = 12 * 3600
MAX_FAILURES = 8
FAILURE_WINDOW_SECONDS = 15 * 60


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _session_key(namespace: str, token: str) -> str:
    return keys.console_session(namespace, _digest(token))


def _failures_key(namespace: str, email: str) -> str:
    return keys.sign_in_failures(namespace, _digest(email.strip().lower()))


async def open_session(redis: Redis, *, namespace: str, admin_id: int) -> str:
    """Start a session for ``admin_id``; returns the token for the cookie (a new one at every sign-in)."""
    token = secrets.token_urlsafe(32)
    await redis.set(_session_key(namespace, token), str(admin_id), ex=TTL_SECONDS)
    return token


async def session_admin(redis: Redis, *, namespace: str, token: str) -> int | None:
    """The admin id behind ``token`` (and the expiry pushed back), or ``None`` if signed out or expired."""
    if not token or len(token) > 128:
        return None
    key = _session_key(namespace, token)
    value = await redis.get(key)
    if value is None:
        return None
    await redis.expire(key, TTL_SECONDS)
    return int(value)


async def close_session(redis: Redis, *, namespace: str, token: str) -> None:
    """End the session behind ``token``."""
    if token:
        await redis.delete(_session_key(namespace, token))


async def throttled(redis: Redis, *, namespace: str, email: str) -> bool:
    """Whether sign-ins for ``email`` are paused after too many failures."""
    count = await redis.get(_failures_key(namespace, email))
    return count is not None and int(count) >= MAX_FAILURES


async def record_failure(redis: Redis, *, namespace: str, email: str) -> None:
    """Count one failed sign-in for ``email`` (the window starts at the first failure)."""
    key = _failures_key(namespace, email)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, FAILURE_WINDOW_SECONDS, nx=True)
        await pipe.execute()


async def clear_failures(redis: Redis, *, namespace: str, email: str) -> None:
    """Forget failed sign-ins for ``email`` after a successful one."""
    await redis.delete(_failures_key(namespace, email))
