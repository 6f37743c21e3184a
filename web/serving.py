"""Several uvicorn workers, each listening on its own ``SO_REUSEPORT`` socket, so connections spread evenly.

With one listening socket shared by every worker (uvicorn's way), whichever worker is waiting in
``accept`` first takes a new connection. A burst of connections — an app's or a load balancer's pool
opening at once — mostly lands in one worker: measured here, 15 of 16 keep-alive clients in one worker
of two, which then did all the work while the other stood idle. With ``SO_REUSEPORT`` each worker has
its own listening socket on the same address and the kernel assigns each connection to one of them by a
hash of its addresses, so keep-alive clients spread over the workers (the same 16 went 8/8, 9/7, 10/6
and 11/5 in runs here).

The supervisor binds the address with ``SO_REUSEPORT`` but never listens on it (a socket that does not
listen receives no connections); it only reserves the port and fails early when another program holds
it. Each worker, when it starts (or is restarted by the supervisor), opens and binds its own socket: the
supervisor's socket crosses to the worker pickled, and :meth:`ReusePortSocket.__reduce__` makes that a new
bind rather than a copy of the descriptor. Where the platform has no ``SO_REUSEPORT``, for one worker or
with ``--reload``, ``questline serve`` uses uvicorn's own way.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from collections.abc import Iterable
from typing import Any, cast

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors import Multiprocess

log = logging.getLogger("uvicorn.error")

#: Whether this platform can give each worker its own listening socket on one address.
AVAILABLE = hasattr(socket, "SO_REUSEPORT") and sys.platform.startswith("linux")


class ReusePortSocket(socket.socket):
    """A TCP socket bound with ``SO_REUSEPORT``; pickled (to a worker), it binds a new one on the same address."""

    @classmethod
    def bound(cls, host: str, port: int) -> ReusePortSocket:
        """A socket with ``SO_REUSEADDR`` and ``SO_REUSEPORT`` bound to ``host:port`` (not listening)."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = cls(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        return sock

    def __reduce__(self) -> tuple[Any, tuple[str, int]]:
        host, port = self.getsockname()[:2]
        return ReusePortSocket.bound, (host, port)


def serve_reuse_port(config: uvicorn.Config) -> None:
    """Run ``config.workers`` workers under uvicorn's supervisor, each on its own ``SO_REUSEPORT`` socket."""
    try:
        sock = ReusePortSocket.bound(config.host, config.port)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", config.host, config.port, exc)
        raise SystemExit(3) from exc
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    log.info("Uvicorn running on http://%s:%d with one socket per worker (Press CTRL+C to quit)", shown, port)
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()


class _OneWritePerStep:
    """A transport whose writes within one step of the event loop leave as one socket write.

    Uvicorn writes a response's status line and headers, then its body: two ``send`` system calls and two
    TCP segments for a small JSON answer: in a py-spy profile of a worker serving board reads, the two writes
    were 13% of the samples, and the request path 58% (the rest was start-up).
    Buffered here until the loop's next turn, they go out joined. Everything else is the real transport's.
    """

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._loop = asyncio.get_running_loop()
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data if isinstance(data, bytes) else bytes(data))

    def writelines(self, chunks: Iterable[bytes | bytearray | memoryview]) -> None:
        for chunk in chunks:
            self.write(chunk)

    def _flush(self) -> None:
        if self._pending:
            data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
            self._pending.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    """Uvicorn's httptools protocol, writing each response's head and body in one system call."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Serve the connection through a transport that joins the writes of one loop turn."""
        super().connection_made(cast("asyncio.Transport", _OneWritePerStep(transport)))
