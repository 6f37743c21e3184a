"""How the store's read scripts are sent: the calls in flight together in one write (:class:`ScriptBatch`).

Under load many reads are in flight at once. :class:`ScriptBatch` sends the calls made in one event-loop
turn together, as ``EVALSHA`` commands packed by hiredis, on a connection it keeps (:class:`_Lane`: one
reader hands the replies back in order) or, while no lane is open, on a pooled connection.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import hiredis
from redis._parsers import BaseParser
from redis.asyncio import Redis as PlainRedis
from redis.asyncio.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

if TYPE_CHECKING:
    from redis.asyncio import ConnectionPool, Redis
    from redis.asyncio.connection import AbstractConnection
    from redis.commands.core import AsyncScript

log = logging.getLogger(__name__)

Call = tuple[Sequence[str], Sequence[Any]]
"""One script call: (keys, args)."""


class ScriptBatch:
    """Auto-pipelining of one registered script: the calls made in one event-loop turn go in one pipeline.

    Under load many reads are in flight at once; sending them together costs one write and one read
    on the socket (and one Redis event) instead of one each, which is most of a call's client-side cost.
    Each call is still its own ``EVALSHA``: one consistent snapshot per read. A call alone is sent at the
    end of the current loop turn, so it waits for nothing.

    The script is a redis-py :class:`~redis.commands.core.AsyncScript`. A batch is a pipeline of its
    ``EVALSHA`` alone: one round trip. On a plain client (not a cluster, and not traced by OpenTelemetry's
    redis-py instrumentation), the batch is packed by hiredis and written on a pooled connection at once,
    and the replies read back in order under one timeout: the same bytes on the wire as redis-py's
    pipeline, without its per-command bookkeeping and timeout per reply (together a fifth of a board read's
    in-process CPU in a profile). The calls Redis answers ``NOSCRIPT`` (first use, restart, ``SCRIPT
    FLUSH``, a replica just promoted in a cluster) load it with ``SCRIPT LOAD`` on the client (every master
    of a cluster) and run once more. ``SCRIPT`` commands cannot be pipelined on a cluster,
    so loading is never queued on the batch's pipeline.

    On such a plain client the batches then go through a :class:`_Lane`, once it is open: one pooled
    connection the batch keeps, each loop turn's calls written on it at once and the replies read back in
    order by one reader, so several batches are in flight on it without a pool checkout, a task or a
    timeout context each (measured in the README's "Benchmarks"). Until the lane is open, and after it
    failed, the batches take the pooled connection as above; a lane that fails fails the calls waiting on
    it, as a failed batch does.
    """

    def __init__(self, redis: Redis, script: AsyncScript) -> None:
        self._redis = redis
        self._script = script
        self._pending: list[tuple[Call, asyncio.Future[Any]]] = []
        self._running: set[asyncio.Task[None]] = set()
        self._direct = isinstance(redis, PlainRedis)  # a cluster client is not one: it keeps the pipeline
        self._evalsha = (b"EVALSHA", script.sha.encode())
        self._lane: _Lane | None = None
        self._lanes = self._direct
        """Whether to try a lane: not on a cluster, nor on a connection that is not a socket (fakeredis)."""
        self._opening: asyncio.Task[None] | None = None

    async def __call__(self, *, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run the script (``EVALSHA``) with the next batch; returns its reply or raises its error."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append(((keys, args), future))
        reply = await future
        if isinstance(reply, RedisError):  # an error reply read by the lane
            if not isinstance(reply, NoScriptError):
                raise reply
            (reply,) = await self._run([(keys, args)])  # Redis had no script: load it, run once more
            if isinstance(reply, Exception):
                raise reply
        return reply

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        loop = asyncio.get_running_loop()
        lane = self._lane
        if lane is not None and (lane.closed or lane.loop is not loop):
            lane = self._lane = None  # failed, or opened by an event loop that is gone (tests)
        traced = _traced()
        if lane is not None and not traced:
            lane.send(self._packed([call for call, _future in batch]), [future for _call, future in batch])
            return
        if lane is None and self._lanes and not traced and self._opening is None:
            self._opening = loop.create_task(self._open())
        task = loop.create_task(self._send(batch))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _open(self) -> None:
        """Open the lane (the batches meanwhile take the pooled connection); a failure leaves it to a later batch."""
        try:
            self._lane = await _Lane.open(self._redis.connection_pool)
            self._lanes = self._lane is not None
        except RedisError:
            pass  # Redis is down: the batches fail on their own; the next one tries again
        except Exception:  # a fault of this code: no lane, the batches take the pooled connection
            self._lanes = False
            log.exception("could not open a script lane; batches take a pooled connection each")
        finally:
            self._opening = None

    async def _send(self, batch: list[tuple[Call, asyncio.Future[Any]]]) -> None:
        try:
            replies = await self._run([call for call, _future in batch])
        except RedisError as exc:
            # The connection failed (or timed out): every call of the batch fails, as it would alone.
            replies = [exc] * len(batch)
        except BaseException:
            # Cancelled (or a fault of this code): no caller is left waiting, and the error propagates.
            for _call, future in batch:
                future.cancel()
            raise
        for (_call, future), reply in zip(batch, replies, strict=True):
            if future.done():  # the caller gave up (a cancelled request)
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def _run(self, calls: list[Call]) -> list[Any]:
        """One pipeline of the calls' ``EVALSHA``; the calls Redis had no script for run again, after loading it."""
        replies = await self._pipeline(calls)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            await self._redis.script_load(self._script.script)
            for index, reply in zip(missing, await self._pipeline([calls[i] for i in missing]), strict=True):
                replies[index] = reply
        return replies

    async def _pipeline(self, calls: list[Call]) -> list[Any]:
        if self._direct and not _traced():
            return await self._written(calls)
        async with self._redis.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.evalsha(self._script.sha, len(keys), *keys, *args)
            return list(await pipe.execute(raise_on_error=False))

    def _packed(self, calls: list[Call]) -> bytes:
        """The calls' ``EVALSHA`` commands, packed by hiredis into one write."""
        evalsha, sha = self._evalsha
        return b"".join(hiredis.pack_command((evalsha, sha, len(keys), *keys, *args)) for keys, args in calls)

    async def _written(self, calls: list[Call]) -> list[Any]:
        """The calls packed into one write on a pooled connection; each reply (or error reply) in order."""
        pool = self._redis.connection_pool
        packed = self._packed(calls)
        connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            await connection.send_packed_command(packed)
            replies: list[Any] = []
            # One timeout for the whole batch (the client's socket timeout), not one per reply: redis-py's
            # own per-read timeout costs about as much as decoding the reply.
            try:
                async with asyncio.timeout(connection.socket_timeout):
                    for _call in calls:
                        try:
                            replies.append(await connection.read_response(timeout=math.inf))
                        except ResponseError as exc:
                            replies.append(exc)
            except TimeoutError as exc:
                raise RedisTimeoutError(f"Timeout reading {len(calls)} script replies") from exc
        except BaseException:
            # The rest of the replies may still be on the socket: the connection is not handed on like that.
            await connection.disconnect(nowait=True)
            raise
        finally:
            await pool.release(connection)
        return replies


class _Lane:
    """One pooled connection a :class:`ScriptBatch` keeps: batches written on it at once, replies read in order.

    Each reply goes to the next caller waiting, as Redis answers commands in the order they were written.
    Error replies are handed back as the exceptions redis-py's parser makes of them, as values, for the
    caller to raise (or, ``NOSCRIPT``, to run again after loading the script). When the connection fails, or a
    batch has no reply within the client's socket timeout, every call still waiting fails with the error,
    and the connection goes back to the pool disconnected (the pool connects it again when next used).
    """

    __slots__ = ("_error", "_parser", "_pool", "_reader", "_task", "_timeout", "_waiting", "_writer", "closed",
                 "connection", "loop")  # fmt: skip

    def __init__(
        self, pool: ConnectionPool, connection: AbstractConnection, reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:  # fmt: skip
        self.loop = asyncio.get_running_loop()
        self.connection = connection
        self.closed = False
        self._pool, self._reader, self._writer = pool, reader, writer
        encoder = connection.encoder
        decoding = {"encoding": encoder.encoding, "errors": encoder.encoding_errors} if encoder.decode_responses else {}
        # Error replies become redis-py's own exceptions (NoScriptError, ReadOnlyError…), as on a pooled connection.
        self._parser = hiredis.Reader(replyError=BaseParser.parse_error, **decoding)
        self._waiting: deque[asyncio.Future[Any]] = deque()
        self._timeout = connection.socket_timeout
        self._error: RedisError | None = None
        self._task = self.loop.create_task(self._read())

    @classmethod
    async def open(cls, pool: ConnectionPool) -> _Lane | None:
        """A lane on a connection of ``pool``; ``None`` when its connections are not sockets (fakeredis).

        Raises:
            RedisError: no connection (Redis down, the circuit breaker open).
        """
        connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        reader, writer = getattr(connection, "_reader", None), getattr(connection, "_writer", None)
        if not isinstance(reader, asyncio.StreamReader) or not isinstance(writer, asyncio.StreamWriter):
            await pool.release(connection)
            return None
        return cls(pool, connection, reader, writer)

    def send(self, packed: bytes, futures: list[asyncio.Future[Any]]) -> None:
        """Write a batch; its replies go to ``futures``, in order."""
        self._writer.write(packed)
        self._waiting.extend(futures)
        if self._timeout:
            self.loop.call_later(self._timeout, self._expire, futures[-1])

    def _expire(self, last: asyncio.Future[Any]) -> None:
        if not last.done() and not self.closed:
            self._error = RedisTimeoutError(f"no script reply within {self._timeout}s")
            self._task.cancel()

    async def _read(self) -> None:
        parser, waiting = self._parser, self._waiting
        cancelled = False
        try:
            while True:
                data = await self._reader.read(1 << 16)
                if not data:
                    raise RedisConnectionError("Redis closed the connection")
                parser.feed(data)
                while (reply := parser.gets()) is not False:
                    future = waiting.popleft()
                    if not future.done():  # the caller gave up (a cancelled request)
                        future.set_result(reply)
        except asyncio.CancelledError:
            cancelled = self._error is None  # not a timeout of ours: the loop is going away
            self._error = self._error or RedisConnectionError("the connection was closed")
        except (RedisError, OSError, hiredis.ProtocolError, IndexError) as exc:  # IndexError: a reply no one sent
            self._error = exc if isinstance(exc, RedisError) else RedisConnectionError(f"script lane: {exc!r}")
        self.closed = True
        for future in waiting:
            if not future.done():
                future.set_exception(self._error)
        waiting.clear()
        try:
            await self.connection.disconnect(nowait=True)
        finally:
            await self._pool.release(self.connection)
        if cancelled:
            raise asyncio.CancelledError


def _traced() -> bool:
    """Whether OpenTelemetry's redis-py instrumentation wraps pipelines: then each batch is one (and its span)."""
    return hasattr(Pipeline.execute, "__wrapped__")
