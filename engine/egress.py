"""Outbound HTTP to addresses brands chose (webhooks), kept away from the server's own network (no SSRF).

A URL is allowed only if its host resolves to public addresses: loopback, private (RFC 1918), link-local
(cloud metadata at ``169.254.169.254``), shared/CGNAT (``100.64.0.0/10``), multicast, unspecified, reserved
and IPv6 unique-local/link-local/site-local addresses are refused, also when written as a number
(``2130706433``, ``0x7f.1``) or wrapped in IPv6 (``::ffff:127.0.0.1``, NAT64, 6to4). Plain ``http`` is
refused unless the policy allows it (the embedded development default does). The check runs when an
endpoint is registered and again at every delivery; :func:`pinned_client` connects only to the very
address that passed the check (the name is resolved once per connection, inside the connection, so a
DNS answer that changes between check and connect cannot reach an internal address), while TLS still
verifies the certificate for the URL's host name (SNI and ``Host`` are unchanged).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpcore
import httpx
import msgspec

from engine.aio import within
from engine.errors import ValidationError

if TYPE_CHECKING:
    from httpcore import AsyncNetworkStream

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: ``await resolver(host, port)``: the addresses a host name resolves to (tests inject a fake one).
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

#: Seconds a name may take to resolve before the URL is refused.
RESOLVE_TIMEOUT = 10.0
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_ULA = ipaddress.ip_network("fc00::/7")


class EgressRefused(ValidationError):
    """A URL whose scheme or address the egress policy does not allow."""


class EgressPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """What outbound URLs may look like."""

    allow_http: bool = False
    """Accept plain ``http://`` (development only)."""
    allow_private: bool = False
    """Accept any address, internal ones included (development against a local receiver only)."""


def refusal(address: IPAddress) -> str | None:
    """Why ``address`` may not be contacted (``"loopback"``, ``"private"``…), or ``None`` if it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return refusal(embedded)
    checks: tuple[tuple[bool, str], ...] = (
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (isinstance(address, ipaddress.IPv4Address) and address in _CGNAT, "shared (CGNAT)"),
        (isinstance(address, ipaddress.IPv6Address) and address in _ULA, "unique-local"),
        (isinstance(address, ipaddress.IPv6Address) and address.is_site_local, "site-local"),
        (address.is_private, "private"),
        (address.is_reserved, "reserved"),
        (not address.is_global, "not public"),
    )
    return next((reason for hit, reason in checks if hit), None)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, NAT64, 6to4, Teredo client), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64 or address in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def literal_address(host: str) -> IPAddress | None:
    """``host`` as an IP address if it is one in any spelling a resolver accepts (``0x7f.1``, ``2130706433``)."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    try:  # the legacy numeric forms inet_aton (and so getaddrinfo) accepts
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """Resolve ``host`` with the operating system's resolver."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


class EgressGuard:
    """Checks outbound URLs against a policy, resolving names with an injected resolver."""

    def __init__(self, policy: EgressPolicy | None = None, *, resolver: Resolver | None = None) -> None:
        self.policy = policy or EgressPolicy()
        self._resolve = resolver or system_resolver

    async def addresses(self, host: str, port: int, *, field: str = "$.url") -> list[IPAddress]:
        """The addresses of ``host``, each allowed by the policy.

        Raises:
            EgressRefused: the host does not resolve, or one of its addresses is not allowed.
        """
        literal = literal_address(host)
        if literal is not None:
            found = [literal]
        else:
            try:
                found = await within(self._resolve(host, port), RESOLVE_TIMEOUT)
            except (OSError, UnicodeError, TimeoutError) as exc:
                raise EgressRefused(f"the host {host!r} does not resolve", field=field) from exc
            if not found:
                raise EgressRefused(f"the host {host!r} does not resolve", field=field)
        if not self.policy.allow_private:
            for address in found:
                reason = refusal(address)
                if reason is not None:
                    raise EgressRefused(
                        f"the host {host!r} points to a {reason} address, which webhooks may not reach", field=field
                    )
        return found

    async def check_url(self, url: str, *, field: str = "$.url") -> list[IPAddress]:
        """Check a whole URL: its scheme and every address of its host; returns the addresses.

        Raises:
            EgressRefused: a scheme, host or address the policy does not allow.
        """
        try:
            parts = urlsplit(url)
        except ValueError as exc:  # e.g. an unbalanced "[" in the host
            raise EgressRefused("the URL is not well formed", field=field) from exc
        allowed = {"https", "http"} if self.policy.allow_http else {"https"}
        if parts.scheme not in allowed:
            raise EgressRefused("the URL must use https", field=field)
        try:
            host, port = parts.hostname, parts.port
        except ValueError as exc:
            raise EgressRefused("the URL has an invalid port", field=field) from exc
        if not host:
            raise EgressRefused("the URL has no host", field=field)
        if parts.username is not None or parts.password is not None:
            raise EgressRefused("the URL may not carry credentials", field=field)
        return await self.addresses(host, port or (443 if parts.scheme == "https" else 80), field=field)


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to addresses the guard allowed, resolved inside the connect itself."""

    def __init__(self, guard: EgressGuard) -> None:
        self._guard = guard
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> AsyncNetworkStream:
        """Resolve and check ``host`` once, then connect to a checked address (never to the name again)."""
        addresses = await self._guard.addresses(host, port)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure or httpcore.ConnectError(f"no address for {host}")

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None
    ) -> AsyncNetworkStream:
        """Unix sockets are local by definition: never."""
        raise httpcore.ConnectError("unix sockets are not allowed for webhooks")

    async def sleep(self, seconds: float) -> None:
        """Sleep (httpcore's retry back-off)."""
        await self._inner.sleep(seconds)


class _PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with its connection pool on the guarded network backend."""

    def __init__(self, guard: EgressGuard) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=50,
            max_keepalive_connections=10,
            keepalive_expiry=5.0,
            network_backend=_GuardedBackend(guard),
        )


def pinned_client(guard: EgressGuard) -> httpx.AsyncClient:
    """An HTTP client that reaches only addresses ``guard`` allows (no redirects, no proxy from the environment)."""
    return httpx.AsyncClient(transport=_PinnedTransport(guard), follow_redirects=False, trust_env=False)
