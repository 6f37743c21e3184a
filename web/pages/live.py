"""Live updates for open pages: Redis pub/sub in, Server-Sent Events out.

After a unit of work commits, a tiny "something changed" message goes out on each touched member's channel
and on the brand's channel (queued by :class:`LivePublisher`, the last pipeline step, and sent with the
board writes when a board changed). The portal
listens on its member's channel; widgets listen on the leaderboards package's rank-change channel and on
the brand channel. Messages carry no personal data: a page that hears one fetches what it shows again,
through the same authorised route it was rendered by.

On a Redis Cluster the messages are sharded pub/sub (``SPUBLISH``, :func:`engine.redisconn.queue_publish`)
and a stream listens with ``SSUBSCRIBE``: each message goes to the shard owning its channel's slot, not
over the whole cluster bus, and redis-py's cluster pub/sub follows a channel to its new master after a
failover.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec
from litestar.response import ServerSentEventMessage
from redis.asyncio import Redis
from redis.exceptions import RedisError

from engine.keys import brand_channel as brand_channel
from engine.keys import member_channel as member_channel
from engine.pipeline import UnitOfWork
from engine.redisconn import is_cluster

log = logging.getLogger(__name__)

#: A stream ends after this long; ``EventSource`` reconnects by itself (bounded server resources).
STREAM_SECONDS = 120.0
#: Comment lines keep proxies from closing an idle stream.
HEARTBEAT_SECONDS = 15.0
#: Bursts of messages (a batch of events) are folded into one update this many seconds apart at most.
COALESCE_SECONDS = 0.25


class LivePublisher:
    """Pipeline step (last) that announces committed changes to open portal pages and widgets."""

    name = "live"

    def __init__(self, redis: Redis, *, namespace: str) -> None:
        self.redis = redis
        self.namespace = namespace

    async def process(self, uow: UnitOfWork) -> None:
        """Queue one message per touched member and one for the brand (idempotent: a repeat only refreshes).

        Queued while the unit runs, they are sent only once it committed (a unit tried again is a new one):
        with the board writes, in their round trip, when a board changed (``LeaderboardsProcessor``), else
        with the unit's other messages.
        """
        brand_id = uow.brand.id
        members = sorted({ctx.member_id for ctx in uow.events})
        if not members:
            return
        payload = msgspec.json.encode({"at": uow.now.isoformat()})
        for member_id in members:
            uow.publish(self.redis, member_channel(self.namespace, brand_id, member_id), payload)
        uow.publish(self.redis, brand_channel(self.namespace, brand_id), payload)

    async def after_commit(self, uow: UnitOfWork) -> None:
        """Nothing more: the messages were queued with the unit."""


async def updates(
    redis: Redis,
    channels: Sequence[str],
    *,
    event: str = "update",
    stream_seconds: float = STREAM_SECONDS,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
) -> AsyncIterator[ServerSentEventMessage]:
    """Server-Sent Events for ``channels``: ``ready`` once, then ``update`` per (coalesced) message.

    Ends after ``stream_seconds`` with a ``retry`` hint, so no stream lives forever; a closed connection
    cancels the iterator and the subscription is released in ``finally``.
    """
    pubsub: Any = redis.pubsub()
    sharded = is_cluster(redis)
    subscribe = pubsub.ssubscribe if sharded else pubsub.subscribe
    receive = pubsub.get_sharded_message if sharded else pubsub.get_message
    try:
        await subscribe(*channels)
    except RedisError:
        log.warning("live updates unavailable: cannot subscribe", exc_info=True)
        await pubsub.aclose()
        yield ServerSentEventMessage(event="unavailable", data="{}", retry=30_000)
        return
    deadline = time.monotonic() + stream_seconds
    try:
        yield ServerSentEventMessage(event="ready", data="{}", retry=3_000)
        last_beat = time.monotonic()
        while (left := deadline - time.monotonic()) > 0:
            message = await receive(ignore_subscribe_messages=True, timeout=min(1.0, left))
            if message is not None and message.get("type") in {"message", "pmessage", "smessage"}:
                await asyncio.sleep(COALESCE_SECONDS)
                while await receive(ignore_subscribe_messages=True, timeout=0.01) is not None:
                    pass  # fold a burst into one update
                yield ServerSentEventMessage(event=event, data=msgspec.json.encode({"t": time.time()}).decode())
                last_beat = time.monotonic()
            elif time.monotonic() - last_beat >= heartbeat_seconds:
                yield ServerSentEventMessage(comment="keep-alive")
                last_beat = time.monotonic()
    except RedisError:
        log.warning("live updates interrupted", exc_info=True)
    finally:
        try:
            await (pubsub.sunsubscribe() if sharded else pubsub.unsubscribe())
        except RedisError:
            log.debug("unsubscribe failed on a broken connection", exc_info=True)
        await pubsub.aclose()
