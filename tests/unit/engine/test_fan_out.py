"""engine.redisconn.queue_messages: many channels, one payload, one command; every subscriber still hears it."""

from __future__ import annotations

import asyncio

import pytest

from engine.redisconn import FAN_OUT_AT, is_cluster, queue_messages
from tests.helpers import listening

pytestmark = pytest.mark.redis_cluster


class _Recording:
    """The pipeline, noting the name of each command queued on it."""

    def __init__(self, pipe, sent: list[bytes]) -> None:
        self._pipe, self._sent = pipe, sent

    def __getattr__(self, name: str):
        method = getattr(self._pipe, name)

        def queued(*args, **kwargs):
            self._sent.append(name.upper().encode())
            return method(*args, **kwargs)

        return queued


async def _heard(
    redis, channels: list[str], messages: list[tuple[str, bytes]]
) -> tuple[list[tuple[str, bytes]], list[bytes]]:
    async with listening(redis, *channels) as hear:
        sent: list[bytes] = []
        async with redis.pipeline(transaction=False) as pipe:
            queue_messages(_Recording(pipe, sent), redis, messages)
            await pipe.execute()
        heard: list[tuple[str, bytes]] = []
        for _ in range(50):
            message = await hear(0.2)
            if message is None:
                if len(heard) >= len(messages):
                    break
                await asyncio.sleep(0.01)
                continue
            channel = message["channel"]
            heard.append((channel.decode() if isinstance(channel, bytes) else channel, message["data"]))
        return heard, sent


async def test_a_payload_shared_by_many_channels_is_one_command_and_every_channel_hears_it(redis, redis_namespace):
    members = [f"{redis_namespace}:{{b1}}:live:m{n}" for n in range(FAN_OUT_AT + 5)]
    brand = f"{redis_namespace}:{{b1}}:live:brand"
    rank = f"{redis_namespace}:{{b1}}:lb:live"
    messages = [(channel, b'{"at":1}') for channel in members]
    messages.insert(3, (rank, b'{"type":"rank_changed"}'))
    messages.append((brand, b'{"at":1}'))
    heard, sent = await _heard(redis, [*members, brand, rank], messages)
    assert sorted(heard) == sorted(messages)  # each channel heard its message once
    if is_cluster(redis):
        assert sent == [b"SPUBLISH"] * len(messages)  # a script cannot reach other shards' channels
    else:
        # the shared payload as one script where its first message was, the other message in its place
        assert sent == [b"EVAL", b"PUBLISH"], sent


async def test_few_channels_keep_one_publish_each(redis, redis_namespace):
    channels = [f"{redis_namespace}:{{b1}}:live:m{n}" for n in range(FAN_OUT_AT - 1)]
    messages = [(channel, b"x") for channel in channels]
    heard, sent = await _heard(redis, channels, messages)
    assert heard == messages  # in order
    assert sent == [b"SPUBLISH" if is_cluster(redis) else b"PUBLISH"] * len(messages)
