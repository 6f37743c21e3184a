"""Health probes: liveness (the process answers) apart from readiness (its dependencies answer).

``/health/live`` touches nothing: a load balancer or Kubernetes restarts the process only when it stops
answering. ``/health/ready`` checks the database and Redis, each with a short timeout, and answers 503
naming what is down (``Retry-After`` set), so traffic goes elsewhere until they answer. ``/health`` is
kept as an alias of readiness for older probes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from litestar import Response, get
from sqlalchemy import text

from web.deps import ServicesDep

log = logging.getLogger("questline.health")
CHECK_SECONDS = 2.0
"""Longest the readiness check waits for Redis (the database gets `QUESTLINE_DATABASE_TIMEOUT_S`)."""
RETRY_AFTER_SECONDS = 5


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else ""


async def _database_ok(services: ServicesDep) -> bool:
    try:
        async with asyncio.timeout(services.settings.database_timeout_s):
            async with services.db.read() as session:
                await session.execute(text("SELECT 1"))
    except Exception as exc:  # whatever the failure, the database cannot serve requests now
        log.warning("readiness: the database does not answer (%s: %s)", type(exc).__name__, _first_line(exc))
        return False
    return True


async def _redis_ok(services: ServicesDep) -> bool:
    try:
        async with asyncio.timeout(CHECK_SECONDS):
            return bool(await services.redis.ping())
    except Exception as exc:  # refused, timed out, circuit open
        log.warning("readiness: Redis does not answer (%s: %s)", type(exc).__name__, _first_line(exc))
        return False


def health_routes(version: str) -> list[Any]:
    """The probe handlers (``version`` is reported by both)."""

    @get("/health/live", tags=["operations"], summary="Liveness: the process answers")
    async def live() -> dict[str, str]:
        """Answers 200 as long as the process serves requests; checks no dependency."""
        return {"status": "ok", "version": version}

    @get(["/health/ready", "/health"], tags=["operations"], summary="Readiness: the database and Redis answer")
    async def ready(services: ServicesDep) -> Response[dict[str, Any]]:
        """200 when the database and Redis answer; 503 naming the one that does not (``down``)."""
        database, redis = await asyncio.gather(_database_ok(services), _redis_ok(services))
        down = [name for name, ok in (("database", database), ("redis", redis)) if not ok]
        boards = services.leaderboards
        body: dict[str, Any] = {
            "status": "unavailable" if down else "ok",
            "database": "ok" if database else "down",
            "redis": "ok" if redis else "down",
            "down": down,
            "redis_circuit": boards.breaker.state,
            "stale_boards": len(boards.catch_up.stale),
            "dialect": services.db.dialect,
            "version": version,
        }
        if down:
            return Response(body, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        return Response(body)

    return [live, ready]
