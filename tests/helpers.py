"""Helpers shared by tests: brands with keys, event bodies."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from engine.clock import Clock
from engine.db import Database
from engine.redisconn import is_cluster
from engine.tenants import Brand, KeyKind, create_brand


@dataclass
class BrandKeys:
    """A brand created for one test, with its keys."""

    brand: Brand
    secret: str
    publishable: str

    @property
    def headers(self) -> dict[str, str]:
        """Authorization headers with the secret key."""
        return {"Authorization": f"Bearer {self.secret}"}

    @property
    def public_headers(self) -> dict[str, str]:
        """Authorization headers with the publishable key."""
        return {"Authorization": f"Bearer {self.publishable}"}


async def make_brand(
    db: Database, clock: Clock, *, timezone: str = "Europe/Rome", name: str | None = None
) -> BrandKeys:
    """Create a brand with a unique slug."""
    slug = f"t-{uuid.uuid4().hex[:12]}"
    brand, keys = await create_brand(db, name=name or slug, slug=slug, timezone=timezone, now=clock.now())
    by_kind = {k.kind: k.key for k in keys}
    return BrandKeys(brand=brand, secret=by_kind[KeyKind.SECRET], publishable=by_kind[KeyKind.PUBLISHABLE])


def event(event_id: str, member: str, type_: str, at: str, **properties: Any) -> dict[str, Any]:
    """An event body."""
    return {"id": event_id, "member": member, "type": type_, "occurred_at": at, "properties": properties}


async def row_counts(db: Database, brand_id: int) -> dict[str, int]:
    """How many rows the brand has in the engine's tables (to prove that bad input changed nothing)."""
    from sqlalchemy import func, select

    from engine.orm import EventRow, LedgerRow, MemberRow, OutboxRow

    counts: dict[str, int] = {}
    async with db.read() as session:
        for name, table in (("members", MemberRow), ("events", EventRow), ("ledger", LedgerRow), ("outbox", OutboxRow)):
            counts[name] = int(
                await session.scalar(select(func.count()).select_from(table).where(table.brand_id == brand_id)) or 0
            )
    return counts


@asynccontextmanager
async def listening(redis: Any, *channels: str) -> AsyncIterator[Callable[[float], Awaitable[dict[str, Any] | None]]]:
    """Subscribed to ``channels`` (sharded on a Redis Cluster, where messages go out with ``SPUBLISH``).

    The subscribe confirmations are read; yields ``heard(timeout)``: the next message, or ``None``.
    """
    pubsub = redis.pubsub()
    sharded = is_cluster(redis)
    receive = pubsub.get_sharded_message if sharded else pubsub.get_message
    await (pubsub.ssubscribe if sharded else pubsub.subscribe)(*channels)
    try:
        for _ in channels:
            await receive(timeout=1.0)

        async def heard(timeout: float) -> dict[str, Any] | None:
            message: dict[str, Any] | None = await receive(ignore_subscribe_messages=True, timeout=timeout)
            return message

        yield heard
    finally:
        await pubsub.aclose()


async def first_message(heard: Callable[[float], Awaitable[dict[str, Any] | None]]) -> dict[str, Any] | None:
    """The first message heard within about ten seconds."""
    for _ in range(20):
        if (message := await heard(0.5)) is not None:
            return message
    return None


async def settle(client: Any) -> None:
    """Let the app's background board work end: its start-up check (which rebuilds the brands of the shared
    test database whose boards are missing, the test's own included) and rebuilds it scheduled since."""
    import asyncio

    services = client.app.state.services
    await asyncio.to_thread(client.blocking_portal.call, services.leaderboards.settled)
